"""``HttpClient`` (through the transport registry) gives the same answers as the in-process client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from engine import (
    AddInstrument,
    BookDelta,
    CancelOrder,
    ExchangeError,
    Instrument,
    MalformedMessage,
    NotConnected,
    OrderAccepted,
    OrderType,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from tests.integration.http.conftest import LiveServer, StartServer
from transports.core.client import TraderClient
from transports.core.gateway import Gateway
from transports.core.marketdata import BookSnapshot, MarketUpdate
from transports.http.client import HttpClient, error_from_reply
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import TRANSPORTS, make_client, serve

T = TypeVar("T")
BTC = DEFAULT_INSTRUMENTS[0]


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()

    return asyncio.run(main())


def workload(trader: str) -> list[PlaceOrder | CancelOrder | ReplaceOrder]:
    p = BTC.parse_price
    q = BTC.parse_qty
    return [
        PlaceOrder(trader, "s1", "BTC-USD", Side.SELL, q("1.5"), p("30000.00")),
        PlaceOrder(trader, "s2", "BTC-USD", Side.SELL, q("0.25"), p("30000.50")),
        PlaceOrder(trader, "b1", "BTC-USD", Side.BUY, q("0.1"), p("29999.99"), tif=TimeInForce.IOC),
        PlaceOrder(trader, "b2", "BTC-USD", Side.BUY, q("2"), p("30000.50"), stp=SelfTradePrevention.DECREMENT),
        PlaceOrder(trader, "m1", "BTC-USD", Side.BUY, q("0.0001"), 0, OrderType.MARKET),
        PlaceOrder(trader, "x", "BTC-USD", Side.BUY, q("1"), p("1.00")),  # out of band
        ReplaceOrder(trader, 0, p("29000.00"), 0, "BTC-USD", "b2"),
        PlaceOrder(trader, "s3", "BTC-USD", Side.SELL, q("0.7"), p("30100.00")),
        PlaceOrder(trader, "st", "BTC-USD", Side.SELL, q("0.1"), 0, OrderType.STOP_MARKET, stop_price=p("29500.00")),
        CancelOrder(trader, 0, "nope"),
    ]


def test_the_http_client_sees_exactly_what_the_inproc_client_sees(server: LiveServer) -> None:
    async def scenario() -> None:
        reference = Gateway()
        await reference.start(DEFAULT_INSTRUMENTS)
        try:
            async with serve("inproc", reference) as inproc_url:
                pairs = [(make_client("inproc", t, inproc_url), make_client("http", t, server.url)) for t in ("alice", "bob")]
                (alice_inproc, alice), (bob_inproc, bob) = pairs
                assert isinstance(alice, HttpClient)
                for inproc, over_http in pairs:
                    await inproc.connect()
                    await over_http.connect()
                    # bob's copy of the workload trades against alice's resting orders.
                    assert await over_http.submit(workload(over_http.trader)) == await inproc.submit(workload(inproc.trader))
                assert reference.stats.trades > 0
                assert await alice.book("BTC-USD", 50) == await alice_inproc.book("BTC-USD", 50)
                for oid in range(1, reference.engine.last_order_id + 2):
                    assert await alice.order(oid) == await alice_inproc.order(oid)
                    assert await bob.order(oid) == await bob_inproc.order(oid)
                assert await alice.open_orders() == reference.open_orders("alice")
                assert await alice.instruments() == await alice_inproc.instruments() == list(DEFAULT_INSTRUMENTS)
                assert await alice.cancel(1) == await alice_inproc.cancel(1)
                assert await bob.mass_cancel() == await bob_inproc.mass_cancel()
                assert await alice.book("BTC-USD", 50) == await alice_inproc.book("BTC-USD", 50)
                stats = await alice.stats()
                assert stats["by_transport"]["http"] == 2 * len(workload("alice")) + 2
                assert stats["engine_seq"] == reference.engine.seq
                for inproc, over_http in pairs:
                    await inproc.close()
                    await over_http.close()
        finally:
            await reference.stop()

    run(scenario)


def test_market_data_arrives_as_engine_objects(server: LiveServer) -> None:
    async def scenario() -> None:
        async with HttpClient("alice", server.url) as client:
            assert isinstance(client, HttpClient)
            stream = client.market_data(["BTC-USD"])
            snapshot = await anext(stream)
            assert isinstance(snapshot, BookSnapshot) and snapshot.depth.bids == [] and snapshot.md_seq == 0
            await client.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, BTC.parse_qty("1"), BTC.parse_price("29000.00"))])
            update = await anext(stream)
            assert isinstance(update, MarketUpdate) and update.md_seq == 1
            assert update.event == BookDelta(update.event.seq, "BTC-USD", Side.BUY, BTC.parse_price("29000.00"), BTC.parse_qty("1"), 1)
            await stream.aclose()  # type: ignore[attr-defined]

    run(scenario)


def test_client_errors_are_engine_errors(start_server: StartServer) -> None:
    server = start_server()

    async def scenario() -> None:
        async with HttpClient("alice", server.url) as client:
            with pytest.raises(MalformedMessage) as unknown:
                await client.book("DOGE-USD")
            assert unknown.value.reason is RejectReason.UNKNOWN_SYMBOL
            with pytest.raises(MalformedMessage) as unknown_order_symbol:
                await client.submit([PlaceOrder("alice", "", "DOGE-USD", Side.BUY, 1, 1)])
            assert unknown_order_symbol.value.reason is RejectReason.UNKNOWN_SYMBOL
            with pytest.raises(ExchangeError) as refused:
                await client.submit([AddInstrument(Instrument.create("DOGE-USD", "0.0001", "1"))])
            assert refused.value.reason is RejectReason.UNAUTHORIZED
            with pytest.raises(MalformedMessage) as bad_stream:
                await anext(client.market_data(["NOPE"]))
            assert bad_stream.value.reason is RejectReason.UNKNOWN_SYMBOL
            assert server.gateway is not None
            server.call(server.gateway.stop)
            with pytest.raises(Overloaded):
                await client.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, 1, 2_900_000)])

    run(scenario)


def test_an_unreachable_server_is_not_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("DEX_SERVER", url)

    async def scenario() -> None:
        client = make_client("http", "alice")
        assert isinstance(client, HttpClient) and client.url == url
        with pytest.raises(NotConnected) as refused:
            await client.connect()
        assert str(refused.value).startswith(f"UNAVAILABLE: not connected to turbo-dex at {url}")
        with pytest.raises(NotConnected):
            await anext(client.market_data(["BTC-USD"]))

    run(scenario)


def test_a_server_that_goes_away_mid_session_is_not_connected(start_server: StartServer) -> None:
    server = start_server()

    async def scenario() -> None:
        async with HttpClient("alice", server.url) as client:
            await client.stats()
            stream = client.market_data(["BTC-USD"])
            assert isinstance(await anext(stream), BookSnapshot)
            await asyncio.to_thread(server.stop)
            with pytest.raises(NotConnected):
                await client.stats()
            with pytest.raises(NotConnected):
                await anext(stream)  # the server closed the socket (1012, going away)

    run(scenario)


def test_adding_an_instrument_teaches_the_client_its_tick_and_lot(start_server: StartServer) -> None:
    server = start_server(allow_admin=True)
    doge = Instrument.create("DOGE-USD", "0.0001", "1")

    async def scenario() -> None:
        async with HttpClient("alice", server.url) as client:
            # A batch is decoded whole before it is applied, so orders on a new symbol go in a later batch.
            (added,) = await client.submit([AddInstrument(doge)])
            assert added[0].seq > 0
            (placed,) = await client.submit([PlaceOrder("alice", "", "DOGE-USD", Side.BUY, 100, 712)])
            assert isinstance(placed[0], OrderAccepted) and placed[0].price == 712
            assert (await client.book("DOGE-USD")).bids[0].price == 712

    run(scenario)


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (503, b'{"type":"error","reason":"OVERLOADED","code":500,"message":"full"}', Overloaded, RejectReason.OVERLOADED),
        (503, b"<html>bad gateway</html>", Overloaded, RejectReason.OVERLOADED),
        (400, b'{"type":"error","reason":"INVALID_PRICE","code":101,"message":"off tick"}', MalformedMessage, RejectReason.INVALID_PRICE),
        (413, b"", MalformedMessage, RejectReason.MALFORMED_MESSAGE),
        (401, b'{"type":"error","reason":"UNAUTHORIZED","code":502,"message":"who?"}', ExchangeError, RejectReason.UNAUTHORIZED),
        (500, b"", ExchangeError, RejectReason.INTERNAL_ERROR),
    ],
)
def test_error_replies_map_to_the_engine_hierarchy(status: int, body: bytes, kind: type[ExchangeError], reason: RejectReason) -> None:
    error = error_from_reply(status, body)
    assert type(error) is kind and error.reason is reason


def test_the_registry_knows_inproc_and_http() -> None:
    assert {"inproc", "http"} <= set(TRANSPORTS)
    with pytest.raises(ValueError, match="unknown transport"):
        make_client("carrier-pigeon", "alice")
    with pytest.raises(ValueError, match="no in-process gateway"):
        make_client("inproc", "alice", "inproc://nothing")
    client = make_client("http", "alice", "http://127.0.0.1:1/")
    assert isinstance(client, HttpClient) and isinstance(client, TraderClient) and client.url == "http://127.0.0.1:1"
