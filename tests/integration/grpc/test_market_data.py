"""``MarketData``: a snapshot per symbol, then sequenced updates that rebuild exactly the book ``GetBook`` shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from engine import BookDelta, BookDepth, MalformedMessage, NotConnected, PlaceOrder, RejectReason, Side
from tests.integration.grpc.helpers import BTC, Exchange, error_of, run_exchange
from transports.codec.proto_codec import pb
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.marketdata import BookSnapshot, Gap, MarketData, MarketUpdate, PublicTrade
from transports.core.workload import OrderFlow
from transports.grpc.client import GrpcClient
from transports.grpc.server import serve_grpc
from transports.grpc.settings import GrpcServerSettings
from transports.instruments import DEFAULT_INSTRUMENTS

p, q = BTC.parse_price, BTC.parse_qty


class Book:
    """A level-2 book rebuilt from a snapshot and deltas, the way a market-data consumer does it."""

    def __init__(self, snapshot: BookSnapshot) -> None:
        self.md_seq = snapshot.md_seq
        self.levels = {Side.BUY: {lv.price: (lv.qty, lv.order_count) for lv in snapshot.depth.bids}}
        self.levels[Side.SELL] = {lv.price: (lv.qty, lv.order_count) for lv in snapshot.depth.asks}
        self.last_price = snapshot.depth.last_price

    def apply(self, update: MarketUpdate) -> None:
        assert update.md_seq == self.md_seq + 1, "md_seq must have no gaps"
        self.md_seq = update.md_seq
        event = update.event
        if isinstance(event, BookDelta):
            side = self.levels[event.side]
            if event.qty:
                side[event.price] = (event.qty, event.order_count)
            else:
                side.pop(event.price, None)
        else:
            assert isinstance(event, PublicTrade)
            self.last_price = event.price

    def matches(self, depth: BookDepth) -> bool:
        bids = sorted(self.levels[Side.BUY].items(), reverse=True)
        asks = sorted(self.levels[Side.SELL].items())
        return (
            [(lv.price, lv.qty, lv.order_count) for lv in depth.bids] == [(pr, qc[0], qc[1]) for pr, qc in bids[: len(depth.bids)]]
            and [(lv.price, lv.qty, lv.order_count) for lv in depth.asks] == [(pr, qc[0], qc[1]) for pr, qc in asks[: len(depth.asks)]]
            and len(depth.bids) == min(len(bids), 1000)
            and len(depth.asks) == min(len(asks), 1000)
            and depth.last_price == self.last_price
        )


async def next_item(stream: AsyncIterator[MarketData]) -> MarketData:
    return await asyncio.wait_for(anext(stream), 10)


def test_snapshot_then_updates_rebuild_the_book_that_get_book_shows() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice, ex.client("bob") as bob, ex.client("watcher") as watcher:
            # Some state before subscribing, so the snapshot is not empty.
            await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.SELL, q("1"), p("30010.00"))])
            stream = watcher.market_data(["BTC-USD", "ETH-USD"])
            books: dict[str, Book] = {}
            for _ in range(2):
                snapshot = await next_item(stream)
                assert isinstance(snapshot, BookSnapshot)
                books[snapshot.symbol] = Book(snapshot)
            assert books["BTC-USD"].levels[Side.SELL] == {p("30010.00"): (q("1"), 1)}

            instruments = await alice.instruments()
            flows = {c.trader: OrderFlow(7, c.trader, instruments[:2]) for c in (alice, bob)}
            for _ in range(5):
                for client in (alice, bob):
                    await client.submit(flows[client.trader].batch(200))
            published = ex.gateway.marketdata.md_seq
            while any(books[s].md_seq < published.get(s, 0) for s in books):
                item = await next_item(stream)
                assert isinstance(item, MarketUpdate), item
                books[item.symbol].apply(item)
            assert ex.gateway.stats.trades > 0
            for symbol, book in books.items():
                assert book.matches(await watcher.book(symbol, 1000)), symbol
            await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        assert ex.gateway.marketdata.subscriber_count == 0  # the server let go of the subscription

    run_exchange(scenario)


def test_a_subscriber_that_falls_behind_gets_a_gap_then_a_fresh_snapshot() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice, ex.client("watcher") as watcher:
            stream = watcher.market_data(["BTC-USD"])
            first = await next_item(stream)
            assert isinstance(first, BookSnapshot)
            # One batch publishes 400 updates at once: twice what the subscriber's queue holds.
            await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, q("0.1"), p("29000.00") - i) for i in range(400)])
            seen: list[MarketData] = []
            while not any(isinstance(item, Gap) for item in seen):
                seen.append(await next_item(stream))
            gap = seen[-1]
            assert isinstance(gap, Gap) and gap.dropped > 0
            fresh = await next_item(stream)
            assert isinstance(fresh, BookSnapshot) and fresh.md_seq == 400
            assert Book(fresh).matches(await watcher.book("BTC-USD", 1000))  # a snapshot holds the whole book
            await stream.aclose()  # type: ignore[attr-defined]

    run_exchange(scenario, config=GatewayConfig(journal=None, md_queue=200))


def test_batched_stream_carries_what_waited_in_few_messages_and_the_plain_stream_one_per_message() -> None:
    """``MarketDataBatched`` (our client's) and ``MarketData`` (foreign clients') deliver the same sequence."""

    async def read(call: grpc.aio.UnaryStreamCall[pb.MarketDataRequest, Any], want: int) -> list[list[int]]:
        messages: list[list[int]] = []  # per stream message: the md_seq of each update in it (snapshots: -1)
        async for message in call:
            items = list(message.items) if isinstance(message, pb.MarketDataBatch) else [message]
            messages.append([m.update.md_seq if m.HasField("update") else -1 for m in items])
            if sum(len(m) for m in messages) >= want:
                break
        call.cancel()
        return messages

    async def scenario(ex: Exchange) -> None:
        request = pb.MarketDataRequest(symbols=["BTC-USD"])
        path = "/exchange.v1.Exchange/"
        ask = pb.MarketDataRequest.SerializeToString
        batched = ex.channel().unary_stream(path + "MarketDataBatched", ask, pb.MarketDataBatch.FromString)
        plain = ex.channel().unary_stream(path + "MarketData", ask, pb.MarketDataMessage.FromString)
        calls = [batched(request), plain(request)]
        for call in calls:  # subscribed: the snapshot is there before any order
            await call.wait_for_connection()
        await asyncio.sleep(0.2)
        async with ex.client("alice") as alice:  # 100 updates published at once, while nobody reads
            await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, q("0.1"), p("29000.00") - i) for i in range(100)])
        got_batched, got_plain = [await asyncio.wait_for(read(call, 101), 10) for call in calls]
        expected = [-1, *range(1, 101)]
        assert [seq for message in got_batched for seq in message] == expected
        assert [seq for message in got_plain for seq in message] == expected
        assert all(len(message) == 1 for message in got_plain)
        assert len(got_batched) < 20  # the backlog came in a few writes, not a hundred

    run_exchange(scenario)


@pytest.mark.parametrize(
    ("symbols", "code", "reason"),
    [
        ([], grpc.StatusCode.INVALID_ARGUMENT, RejectReason.MALFORMED_MESSAGE),
        (["BTC-USD", "NOPE"], grpc.StatusCode.NOT_FOUND, RejectReason.UNKNOWN_SYMBOL),
    ],
)
def test_a_bad_subscription_is_refused(symbols: list[str], code: grpc.StatusCode, reason: RejectReason) -> None:
    async def scenario(ex: Exchange) -> None:
        call = ex.channel().unary_stream(
            "/exchange.v1.Exchange/MarketData", pb.MarketDataRequest.SerializeToString, pb.MarketDataMessage.FromString
        )
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            async for _ in call(pb.MarketDataRequest(symbols=symbols)):
                pass
        assert failed.value.code() == code and error_of(failed.value).reason == reason
        async with ex.client("watcher") as watcher:
            with pytest.raises(MalformedMessage) as raised:
                await anext(watcher.market_data(symbols))
            assert raised.value.reason is reason

    run_exchange(scenario)


def test_market_data_ends_with_not_connected_when_the_server_stops() -> None:
    async def scenario() -> None:
        gateway = Gateway(config=GatewayConfig(journal=None))
        await gateway.start(DEFAULT_INSTRUMENTS)
        server = serve_grpc(gateway, GrpcServerSettings(port=0, graceful_shutdown_s=2.0))
        url = await server.__aenter__()
        try:
            async with GrpcClient("watcher", url) as watcher:
                stream = watcher.market_data(["SOL-USD"])
                assert isinstance(await next_item(stream), BookSnapshot)
                stopping = asyncio.get_running_loop().create_task(server.__aexit__(None, None, None))
                with pytest.raises(NotConnected):
                    await next_item(stream)
                await stopping
                assert gateway.marketdata.subscriber_count == 0
        finally:
            await gateway.stop()

    asyncio.run(scenario())
