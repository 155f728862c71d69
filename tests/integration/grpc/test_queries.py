"""``GetBook``, ``GetOrder``, ``GetInstruments``, ``GetStats`` through ``GrpcClient``, and the same answers as in-process."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from engine import (
    CancelOrder,
    MalformedMessage,
    OrderStatus,
    OrderType,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from tests.integration.grpc.helpers import BTC, Exchange, error_of, run_exchange
from transports.codec.proto_codec import pb
from transports.core.gateway import Gateway
from transports.grpc.client import GrpcClient
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import make_client, serve

p, q = BTC.parse_price, BTC.parse_qty


def workload(trader: str) -> list[PlaceOrder | CancelOrder | ReplaceOrder]:
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
        PlaceOrder(trader, "e1", "ETH-USD", Side.BUY, 1500, 199_000),
        CancelOrder(trader, 0, "nope"),
    ]


def test_the_grpc_client_sees_exactly_what_the_inproc_client_sees() -> None:
    async def scenario(ex: Exchange) -> None:
        reference = Gateway()
        await reference.start(DEFAULT_INSTRUMENTS)
        try:
            async with serve("inproc", reference) as inproc_url:
                pairs = [(make_client("inproc", t, inproc_url), make_client("grpc", t, ex.url)) for t in ("alice", "bob")]
                (alice_inproc, alice), (bob_inproc, bob) = pairs
                assert isinstance(alice, GrpcClient)
                for inproc, over_grpc in pairs:
                    await inproc.connect()
                    await over_grpc.connect()
                    assert await over_grpc.submit(workload(over_grpc.trader)) == await inproc.submit(workload(inproc.trader))
                assert reference.stats.trades > 0
                for symbol in ("BTC-USD", "ETH-USD", "SOL-USD"):
                    assert await alice.book(symbol, 50) == await alice_inproc.book(symbol, 50)
                for oid in range(1, reference.engine.last_order_id + 2):
                    assert await alice.order(oid) == await alice_inproc.order(oid)
                    assert await bob.order(oid) == await bob_inproc.order(oid)
                assert await alice.instruments() == await alice_inproc.instruments() == list(DEFAULT_INSTRUMENTS)
                assert await alice.cancel(1) == await alice_inproc.cancel(1)
                assert await bob.mass_cancel() == await bob_inproc.mass_cancel()
                assert await alice.book("BTC-USD", 50) == await alice_inproc.book("BTC-USD", 50)
                stats = await alice.stats()
                assert stats["by_transport"]["grpc"] == 2 * len(workload("alice")) + 2
                assert stats["engine_seq"] == reference.engine.seq
                timing = ("by_transport", "latency_us", "fsync_us", "batches", "process_cpu_us", "peak_rss_bytes")
                assert {k: v for k, v in stats.items() if k not in timing} == {
                    k: v for k, v in reference.stats_dict().items() if k not in timing
                }
                for inproc, over_grpc in pairs:
                    await inproc.close()
                    await over_grpc.close()
        finally:
            await reference.stop()

    run_exchange(scenario)


def test_an_order_view_follows_the_order_and_only_its_trader_sees_it() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice, ex.client("bob") as bob:
            (placed,) = await alice.submit([PlaceOrder("alice", "a1", "BTC-USD", Side.SELL, q("1"), p("30000.00"))])
            order_id = placed[0].order_id  # type: ignore[attr-defined]
            view = await alice.order(order_id)
            assert view is not None and view.status is OrderStatus.NEW and view.client_order_id == "a1"
            await bob.submit([PlaceOrder("bob", "", "BTC-USD", Side.BUY, q("0.25"), p("30000.00"))])
            view = await alice.order(order_id)
            assert (
                view is not None and view.status is OrderStatus.PARTIALLY_FILLED and (view.filled, view.remaining) == (q("0.25"), q("0.75"))
            )
            assert await bob.order(order_id) is None
            assert await alice.order(987654) is None

    run_exchange(scenario)


def test_an_unknown_symbol_is_not_found_for_the_book() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice:
            with pytest.raises(MalformedMessage) as raised:
                await alice.book("DOGE-USD")
            assert raised.value.reason is RejectReason.UNKNOWN_SYMBOL
        get_book = ex.unary(ex.channel(), "GetBook", pb.BookDepth)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await get_book(pb.BookRequest(symbol="DOGE-USD"))
        assert failed.value.code() == grpc.StatusCode.NOT_FOUND and error_of(failed.value).reason == RejectReason.UNKNOWN_SYMBOL

    run_exchange(scenario)


def test_book_depth_defaults_to_ten_levels_and_is_capped() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice:
            await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, q("0.1"), p("29000.00") - i) for i in range(30)])
            get_book = ex.unary(ex.channel(), "GetBook", pb.BookDepth)
            assert len((await get_book(pb.BookRequest(symbol="BTC-USD"))).bids) == 10
            assert len((await get_book(pb.BookRequest(symbol="BTC-USD", depth=5))).bids) == 5
            assert len((await get_book(pb.BookRequest(symbol="BTC-USD", depth=20))).bids) == 20
            assert len((await get_book(pb.BookRequest(symbol="BTC-USD", depth=10**9))).bids) == 25

    run_exchange(scenario, max_book_depth=25)
