"""Market data over PUB/SUB: a snapshot plus the sequenced updates after it equal the book, and a gap heals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import zmq

from engine import Side
from tests.integration.zmq.conftest import LiveZmqServer, StartServer, run
from tests.integration.zmq.helpers import SYMBOL, RebuiltBook, depth_levels, order
from transports.codec.proto_codec import pb
from transports.core.client import TraderClient
from transports.core.marketdata import BookSnapshot, Gap, MarketData, MarketUpdate
from transports.registry import make_client
from transports.zmq.client import ZmqClient
from transports.zmq.protocol import topic


async def trade_a_while(client: TraderClient, n: int, prefix: str) -> None:
    """Resting orders on both sides, some crossing: deltas and trades."""
    for i in range(n):
        side = Side.BUY if i % 2 else Side.SELL
        price = f"{29990 + (i * 7) % 20}.00"
        await client.submit([order(client.trader, f"{prefix}{i}", side, f"0.{1 + i % 9}", price)])


async def follow_until_equal(
    stream: AsyncIterator[MarketData], book: RebuiltBook, client: TraderClient, timeout: float = 15.0
) -> list[MarketData]:
    """Read the stream into ``book`` until it equals the server's book; returns what was read.

    A task reads the stream (cancelling ``__anext__`` itself would close the generator).
    """
    seen: list[MarketData] = []
    queue: asyncio.Queue[MarketData] = asyncio.Queue()

    async def pump() -> None:
        async for item in stream:
            await queue.put(item)

    reader = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            while not queue.empty():
                item = queue.get_nowait()
                seen.append(item)
                if isinstance(item, BookSnapshot):
                    book.reset(item)
                elif isinstance(item, MarketUpdate):
                    book.apply(item)
            want = depth_levels(await client.book(SYMBOL, 1000))
            if book.levels() == want and queue.empty():
                return seen
            assert not reader.done(), reader
            assert loop.time() < deadline, f"market data never caught up: {book.levels()} != {want}"
            await asyncio.sleep(0.05)
    finally:
        reader.cancel()


def test_snapshot_and_updates_equal_the_book(server: LiveZmqServer) -> None:
    async def scenario() -> None:
        async with make_client("zmq", "maker", server.url) as maker, make_client("zmq", "watcher", server.url) as watcher:
            await trade_a_while(maker, 20, "pre")  # the snapshot has something in it
            stream = watcher.market_data([SYMBOL])
            first = await stream.__anext__()
            assert isinstance(first, BookSnapshot) and first.md_seq > 0
            book = RebuiltBook()
            book.reset(first)
            await trade_a_while(maker, 60, "live")
            await watcher.submit([order("watcher", "take", Side.BUY, "0.5", "30010.00")])  # trades against maker's asks
            seen = await follow_until_equal(stream, book, watcher)
            updates = [m for m in seen if isinstance(m, MarketUpdate)]
            assert updates and not [m for m in seen if isinstance(m, Gap)]
            assert [u.md_seq for u in updates] == list(range(first.md_seq + 1, first.md_seq + 1 + len(updates)))
            assert any(type(u.event).__name__ == "PublicTrade" for u in updates)

    run(scenario)


def test_a_gap_is_detected_and_healed_by_a_snapshot(start_server: StartServer) -> None:
    # A PUB queue of 1 message per subscriber, a SUB queue of 1, small kernel
    # buffers and a subscriber that does not read while the market moves: ZeroMQ drops.
    server = start_server(pub_sndhwm=1)

    async def scenario() -> None:
        async with make_client("zmq", "maker", server.url) as maker, make_client("zmq", "taker", server.url) as taker:
            watcher = ZmqClient("watcher", server.url, sub_rcvhwm=1)
            async with watcher:
                stream = watcher.market_data([SYMBOL])
                first = await stream.__anext__()
                assert isinstance(first, BookSnapshot)
                book = RebuiltBook()
                book.reset(first)
                await asyncio.sleep(0.2)  # the subscription reaches the server
                # Paused: the subscriber reads nothing while ~8,000 updates go out. Prices
                # stay within the 50 levels a snapshot carries, so snapshot + updates is the whole book.
                for round_ in range(4):
                    await maker.submit([order("maker", f"m{round_}-{i}", Side.BUY, "0.02", f"{29000 + i % 40}.00") for i in range(1000)])
                    await taker.submit([order("taker", f"t{round_}-{i}", Side.SELL, "0.01", f"{29000 + i % 40}.00") for i in range(1000)])
                seen = await follow_until_equal(stream, book, watcher, timeout=60)
                gaps = [m for m in seen if isinstance(m, Gap)]
                assert gaps, "no gap: the test did not overflow the queues"
                assert all(g.symbol == SYMBOL and g.dropped > 0 for g in gaps)
                after_gap = seen[seen.index(gaps[0]) + 1]
                assert isinstance(after_gap, BookSnapshot) and after_gap.md_seq > gaps[0].last_md_seq

    run(scenario)


def test_a_server_side_gap_message_resyncs_the_subscriber(server: LiveZmqServer) -> None:
    """The publisher itself fell behind: it sends Gap on the topic, the client takes a fresh snapshot."""

    async def scenario() -> None:
        async with make_client("zmq", "watcher", server.url) as watcher:
            stream = watcher.market_data([SYMBOL])
            first = await stream.__anext__()
            assert isinstance(first, BookSnapshot)
            await asyncio.sleep(0.2)
            assert server.server is not None and server.server._publisher is not None
            xpub = server.server._publisher._xpub
            gap = pb.MarketDataMessage(gap=pb.Gap(symbol=SYMBOL, last_md_seq=first.md_seq, dropped=3)).SerializeToString()
            assert server.loop is not None
            server.loop.call_soon_threadsafe(lambda: xpub.send_multipart([topic(SYMBOL), gap], zmq.NOBLOCK))
            item = await asyncio.wait_for(stream.__anext__(), 5)
            assert isinstance(item, Gap) and item.dropped == 3
            resync = await asyncio.wait_for(stream.__anext__(), 5)
            assert isinstance(resync, BookSnapshot) and resync.symbol == SYMBOL

    run(scenario)


def test_nothing_is_encoded_for_symbols_nobody_reads(server: LiveZmqServer) -> None:
    async def scenario() -> None:
        async with make_client("zmq", "maker", server.url) as maker:
            await trade_a_while(maker, 10, "a")
            assert server.server is not None and server.server._publisher is not None
            assert server.server._publisher.sent == 0
            assert (await maker.stats())["market_data_subscribers"] == 0

    run(scenario)
