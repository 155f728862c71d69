"""``FixClient`` (the ``TraderClient`` of the FIX wire) against dex-fix: in this event loop and as a real process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine import (
    CancelReason,
    ExchangeError,
    NotConnected,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TimeInForce,
    TradeExecuted,
)
from tests.fix.conftest import fix_exchange
from transports.codec import lean
from transports.codec.market_messages import BookSnapshot, MarketUpdate
from transports.fix.client import FixClient
from transports.fix.local import LocalFixServer
from transports.fix.probe import send_malformed
from transports.fix.settings import Passwords
from transports.fix.store import SequenceStore

BTC = "BTC-USD"


def test_the_client_trades_replaces_cancels_and_reads_books_orders_and_market_data(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, gateway), FixClient("alice", url) as alice, FixClient("bob", url) as bob:
            assert {i.symbol for i in await alice.instruments()} == {i.symbol for i in gateway.instruments}
            ((accepted,),) = await alice.submit([PlaceOrder("alice", "a1", BTC, Side.SELL, 5000, 3_000_000)])
            assert isinstance(accepted, OrderAccepted) and accepted.qty == 5000 and accepted.price == 3_000_000
            stream = alice.market_data([BTC]).__aiter__()
            snapshot = await stream.__anext__()
            assert isinstance(snapshot, BookSnapshot) and snapshot.depth.asks[0].qty == 5000

            crossing, ioc = await bob.submit(
                [
                    PlaceOrder("bob", "b1", BTC, Side.BUY, 2000, 3_000_000),
                    PlaceOrder("bob", "b2", BTC, Side.BUY, 2000, 2_900_000, tif=TimeInForce.IOC),
                ]
            )
            assert [type(e) for e in crossing] == [OrderAccepted, TradeExecuted]
            trade = crossing[1]
            assert isinstance(trade, TradeExecuted) and (trade.qty, trade.price, trade.taker_remaining) == (2000, 3_000_000, 0)
            assert isinstance(ioc[-1], OrderCancelled) and ioc[-1].reason is CancelReason.IOC_REMAINDER and ioc[-1].qty == 2000
            update = await stream.__anext__()
            assert isinstance(update, MarketUpdate) and update.md_seq == snapshot.md_seq + 1

            book = await bob.book(BTC)
            assert [(level.price, level.qty) for level in book.asks] == [(3_000_000, 3000)]
            (replaced,) = await alice.replace(accepted.order_id, BTC, 3_000_100, 4000)
            assert isinstance(replaced, OrderReplaced) and (replaced.price, replaced.qty) == (3_000_100, 4000)
            view = await alice.order(accepted.order_id)
            assert view is not None and (view.filled, view.remaining, view.status) == (2000, 4000, OrderStatus.PARTIALLY_FILLED)
            (cancelled,) = await alice.cancel(accepted.order_id)
            assert isinstance(cancelled, OrderCancelled) and cancelled.qty == 4000
            (unknown,) = await alice.cancel(accepted.order_id)
            assert isinstance(unknown, OrderRejected) and unknown.reason is RejectReason.UNKNOWN_ORDER
            assert await alice.order(999_999) is None

            # The harness's lean path: each command's outcome, through the same session.
            batch = lean.encode_orders([PlaceOrder("alice", "", BTC, Side.BUY, 1000, 2_800_000)])
            outcomes = await alice.submit_orders(batch)
            assert len(outcomes) == 1
            assert [type(e) for e in await alice.mass_cancel(BTC)] == [OrderCancelled]

    asyncio.run(scenario())


def test_a_wrong_password_is_unauthorized_and_an_unreachable_server_not_connected(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path, passwords=Passwords(shared="pw")) as (url, _):
            try:
                await FixClient("alice", url, password="nope", timeout=5).connect()
            except ExchangeError as exc:
                assert exc.reason is RejectReason.UNAUTHORIZED and "Password" in str(exc)
            else:
                raise AssertionError("a wrong password logged on")
            async with FixClient("alice", url, password="pw") as ok:
                assert await ok.instruments()
            assert await send_malformed(url) is RejectReason.MALFORMED_MESSAGE
        try:
            await FixClient("alice", url, timeout=2).connect()
        except NotConnected:
            pass
        else:
            raise AssertionError("connected to a stopped server")

    asyncio.run(scenario())


def test_the_server_process_keeps_orders_and_sequence_numbers_across_a_restart(tmp_path: Path) -> None:
    server = LocalFixServer(tmp_path).start()
    carol = FixClient("carol", server.url, reset=False)  # keeps its sequence numbers across connections
    try:

        async def place() -> int:
            async with carol:
                ((accepted,),) = await carol.submit([PlaceOrder("carol", "c1", BTC, Side.BUY, 1000, 2_900_000)])
                assert isinstance(accepted, OrderAccepted)
                return accepted.order_id

        order_id = asyncio.run(place())
        server.stop()
        stored = SequenceStore(tmp_path / "fix-sessions").load("carol")
        assert (stored.next_in, stored.next_out) == (carol.next_out, carol.next_in)
        server.start()

        async def after_restart() -> None:
            async with carol:  # a Logon in sequence: no reset, no gap
                view = await carol.order(order_id)
                assert view is not None and view.remaining == 1000

        asyncio.run(after_restart())
        assert SequenceStore(tmp_path / "fix-sessions").load("carol").next_in == carol.next_out
    finally:
        server.stop()


def test_stats_cancel_on_disconnect_and_retried_request_ids(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _), FixClient("watcher", url) as watcher:
            alice = FixClient("alice", url)
            await alice.connect()
            ((accepted,),) = await alice.submit([PlaceOrder("alice", "a1", BTC, Side.BUY, 1000, 2_900_000)])
            assert isinstance(accepted, OrderAccepted)
            first = await alice.cancel(accepted.order_id, request_id=7)
            again = await alice.cancel(accepted.order_id, request_id=7)  # a retry: answered, not applied twice
            assert [type(e) for e in first] == [OrderCancelled] and [type(e) for e in again] == [OrderCancelled]
            stats = await watcher.stats()
            assert stats["repeated_requests"] == 1 and stats["by_transport"]["fix"] >= 3

            try:
                await alice.cancel_on_disconnect(5)  # below the minimum grace
            except ExchangeError as exc:
                assert exc.reason is RejectReason.MALFORMED_MESSAGE
            else:
                raise AssertionError("a 5 ms grace was armed")
            await alice.submit([PlaceOrder("alice", f"r{i}", BTC, Side.BUY, 1000, 2_900_000 - i) for i in range(3)])
            assert await alice.cancel_on_disconnect(200) == 200
            alice.writer_abort()  # the connection dies without a Logout and without heartbeats
            for _ in range(100):
                if (await watcher.stats())["cancelled_by_reason"].get(CancelReason.CANCEL_ON_DISCONNECT.name) == 3:
                    break
                await asyncio.sleep(0.05)
            assert (await watcher.stats())["cancelled_by_reason"][CancelReason.CANCEL_ON_DISCONNECT.name] == 3
            assert (await watcher.book(BTC)).bids == []
            await alice.close()

    asyncio.run(scenario())


def test_a_batch_is_applied_whole_or_refused_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path, buffer=20) as (url, gateway), FixClient("alice", url) as alice:
            too_many = [PlaceOrder("alice", f"a{i}", BTC, Side.BUY, 1000, 2_900_000 - i) for i in range(50)]
            try:
                await alice.submit(too_many)
            except ExchangeError as exc:
                assert exc.reason is RejectReason.LIMIT_EXCEEDED
            else:
                raise AssertionError("a batch larger than the gateway's queue was applied")
            assert gateway.stats_dict()["orders"] == 0 and (await alice.book(BTC)).bids == []
            gateway._queued = gateway.config.buffer  # the queue is full: others' work in flight
            try:
                await alice.submit(too_many[:3])
            except Overloaded:
                pass
            else:
                raise AssertionError("a full gateway took a batch")
            finally:
                gateway._queued = 0
            replies = await alice.submit(too_many[:20])  # exactly what the queue holds: applied whole, in order
            assert [r[0].client_order_id for r in replies if isinstance(r[0], OrderAccepted)] == [f"a{i}" for i in range(20)]

    asyncio.run(scenario())


def test_instruments_carry_their_limits_and_replaces_by_client_order_id_reach_the_engine(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, gateway), FixClient("alice", url) as alice:
            assert {i.symbol: i for i in await alice.instruments()} == {i.symbol: i for i in gateway.instruments}
            await alice.submit([PlaceOrder("alice", "a1", BTC, Side.BUY, 1000, 2_900_000)])
            (moved,) = (await alice.submit([ReplaceOrder("alice", 0, 2_900_100, 0, BTC, "a1")]))[0]
            assert isinstance(moved, OrderReplaced) and (moved.price, moved.qty) == (2_900_100, 1000)
            (gone,) = (await alice.submit([ReplaceOrder("alice", 424242, 2_900_200, 0, BTC)]))[0]
            assert isinstance(gone, OrderRejected) and gone.reason is RejectReason.UNKNOWN_ORDER
            assert gateway.stats_dict()["rejected_by_reason"] == {"UNKNOWN_ORDER": 1}  # judged by the engine, as on every wire

    asyncio.run(scenario())
