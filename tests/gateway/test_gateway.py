"""The gateway: one writer, write-ahead journal, backpressure, market data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine import (
    AddInstrument,
    BookDelta,
    CancelOrder,
    Engine,
    Instrument,
    OrderAccepted,
    OrderRejected,
    Overloaded,
    PlaceOrder,
    RejectReason,
    Side,
    TradeExecuted,
)
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import MAGIC, JournalCorrupt, frame, journal_commands, read_records
from transports.core.marketdata import BookSnapshot, Gap, MarketUpdate
from transports.core.workload import OrderFlow

T = TypeVar("T")
INSTRUMENT = Instrument.create("BTC-USD", "0.01", "0.001")
SYM = INSTRUMENT.symbol


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]


async def started(tmp_path: Path | None = None, **config: Any) -> Gateway:
    journal = str(tmp_path / "journal.log") if tmp_path is not None else None
    gateway = Gateway(config=GatewayConfig(journal=journal, **config))
    await gateway.start([INSTRUMENT])
    return gateway


def limit(trader: str, coid: str, side: Side, qty: int, price: int) -> PlaceOrder:
    return PlaceOrder(trader, coid, SYM, side, qty, price)


def test_batches_are_applied_in_arrival_order_and_each_submitter_gets_its_own_replies() -> None:
    async def scenario() -> None:
        gateway = await started()
        first = asyncio.ensure_future(gateway.submit([limit("carol", "c1", Side.SELL, 5, 100)], "grpc"))
        second = asyncio.ensure_future(gateway.submit([limit("alice", "a1", Side.BUY, 5, 100)], "zmq"))
        carol, alice = await asyncio.gather(first, second)
        accepted_carol = carol[0][0]
        assert isinstance(accepted_carol, OrderAccepted) and accepted_carol.trader == "carol"
        # alice arrived second, so she is the taker and her reply holds the trade.
        trades = [e for e in alice[0] if isinstance(e, TradeExecuted)]
        assert [(t.maker_trader, t.taker_trader, t.qty, t.price) for t in trades] == [("carol", "alice", 5, 100)]
        assert not any(isinstance(e, TradeExecuted) for e in carol[0])
        assert max(e.seq for e in carol[0]) < min(e.seq for e in alice[0])
        stats = gateway.stats_dict()
        assert stats["by_transport"] == {"config": 1, "grpc": 1, "zmq": 1}
        assert (stats["orders"], stats["accepted"], stats["trades"]) == (2, 2, 1)
        await gateway.stop()

    run(scenario)


def test_concurrent_submitters_see_a_single_total_order() -> None:
    async def scenario() -> None:
        gateway = await started()
        flows = [OrderFlow(7, f"t{i}", [INSTRUMENT]) for i in range(4)]

        async def trader(flow: OrderFlow) -> list[int]:
            seqs: list[int] = []
            for _ in range(20):
                for reply in await gateway.submit(flow.batch(50)):
                    seqs.extend(e.seq for e in reply)
            return seqs

        results = await asyncio.gather(*(trader(f) for f in flows))
        everything = sorted(s for r in results for s in r)
        # Every event of every command went to exactly one submitter; none lost, none doubled.
        assert everything == list(range(2, gateway.engine.seq + 1))
        await gateway.stop()

    run(scenario)


def test_journal_replay_rebuilds_the_live_state(tmp_path: Path) -> None:
    async def scenario() -> None:
        gateway = await started(tmp_path)
        flow = OrderFlow(3, "alice", [INSTRUMENT])
        other = OrderFlow(4, "bob", [INSTRUMENT])
        for _ in range(10):
            await asyncio.gather(gateway.submit(flow.batch(200)), gateway.submit(other.batch(200)))
        live_hash = gateway.engine.state_hash()
        live_seq = gateway.engine.seq
        await gateway.stop()

        again = await started(tmp_path)
        assert again.recovered_commands == 4001  # the instrument + 4,000 commands
        assert again.engine.seq == live_seq
        assert again.engine.state_hash() == live_hash
        # The instrument is not listed twice on restart.
        assert again.stats_dict()["commands"] == {}
        await again.stop()

    run(scenario)


def test_every_reply_is_already_in_the_journal_when_it_arrives(tmp_path: Path) -> None:
    async def scenario() -> None:
        gateway = await started(tmp_path)
        for i in range(5):
            await gateway.submit([limit("alice", f"a{i}", Side.BUY, 1, 100 + i)])
            on_disk = list(journal_commands(read_records(tmp_path / "journal.log").records))
            assert on_disk[-1] == limit("alice", f"a{i}", Side.BUY, 1, 100 + i)
        assert gateway.stats_dict()["fsyncs"] >= 5
        await gateway.stop()

    run(scenario)


def test_a_crash_without_shutdown_loses_nothing_that_was_replied(tmp_path: Path) -> None:
    async def scenario() -> str:
        gateway = await started(tmp_path)
        await gateway.submit(OrderFlow(9, "alice", [INSTRUMENT]).batch(500))
        state = gateway.engine.state_hash()
        # Simulate a crash: no stop(), no checkpoint; just drop everything.
        for task in gateway._tasks:
            task.cancel()
        assert gateway.journal is not None
        gateway.journal.close()
        return state

    state = run(scenario)

    async def restart() -> None:
        gateway = await started(tmp_path)
        assert gateway.engine.state_hash() == state
        await gateway.stop()

    run(restart)


def test_a_torn_last_record_is_truncated_not_half_applied(tmp_path: Path) -> None:
    async def scenario() -> str:
        gateway = await started(tmp_path)
        await gateway.submit([limit("alice", "a1", Side.BUY, 1, 100), limit("bob", "b1", Side.SELL, 1, 101)])
        state = gateway.engine.state_hash()
        await gateway.stop()
        return state

    state = run(scenario)
    path = tmp_path / "journal.log"
    good = path.read_bytes()
    torn = frame(b"C" + b'["P","eve","e1","BTC-USD",1,1,99,1,1,false,0,1]')
    path.write_bytes(good + torn[:-7])  # the crash hit in the middle of the payload

    async def restart() -> None:
        gateway = await started(tmp_path)
        assert gateway.truncated_bytes == len(torn) - 7
        assert gateway.engine.state_hash() == state
        assert gateway.engine.open_orders("eve") == []
        await gateway.stop()

    run(restart)
    assert path.read_bytes().startswith(good)


def test_a_torn_checksum_at_the_end_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    record = frame(b"C" + b'["M","alice",""]')
    broken = bytearray(record)
    broken[-1] ^= 0xFF
    path.write_bytes(MAGIC + frame(b"C" + b'["M","bob",""]') + bytes(broken))
    recovery = read_records(path)
    assert len(recovery.records) == 1
    assert recovery.truncated_bytes == len(record)


def test_corruption_in_the_middle_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    first = bytearray(frame(b"C" + b'["M","alice",""]'))
    first[-2] ^= 0xFF
    path.write_bytes(MAGIC + bytes(first) + frame(b"C" + b'["M","bob",""]'))
    with pytest.raises(JournalCorrupt):
        read_records(path)


def test_a_checkpoint_that_replay_does_not_reproduce_refuses_to_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        gateway = await started(tmp_path)
        await gateway.submit([limit("alice", "a1", Side.BUY, 1, 100)])
        assert gateway.journal is not None
        gateway.journal.checkpoint(gateway.engine.seq, "0" * 64)
        await gateway.stop()

    run(scenario)

    async def restart() -> None:
        with pytest.raises(JournalCorrupt):
            await started(tmp_path)

    run(restart)


def test_a_full_queue_answers_overloaded_and_applies_nothing() -> None:
    async def scenario() -> None:
        gateway = await started(buffer=10)
        seq_before = gateway.engine.seq
        with pytest.raises(Overloaded) as info:
            await gateway.submit([limit("alice", f"a{i}", Side.BUY, 1, 100) for i in range(11)])
        assert info.value.reason is RejectReason.OVERLOADED
        assert gateway.engine.seq == seq_before
        # Fill the queue without letting the writer run, then overflow it.
        held = asyncio.ensure_future(gateway.submit([limit("alice", f"h{i}", Side.BUY, 1, 100) for i in range(8)]))
        await asyncio.sleep(0)  # held is queued; the writer has not run yet
        with pytest.raises(Overloaded):
            await gateway.submit([limit("bob", f"b{i}", Side.SELL, 1, 200) for i in range(3)])
        replies = await held
        assert all(isinstance(r[0], OrderAccepted) for r in replies)
        assert gateway.stats_dict()["overloaded"] == 2
        assert gateway.engine.open_orders("bob") == []
        # After the queue drains, the retry goes through.
        retry = await gateway.submit([limit("bob", f"b{i}", Side.SELL, 1, 200) for i in range(3)])
        assert all(isinstance(r[0], OrderAccepted) for r in retry)
        await gateway.stop()

    run(scenario)


def _apply(book: dict[tuple[Side, int], int], update: MarketUpdate) -> None:
    event = update.event
    if isinstance(event, BookDelta):
        if event.qty:
            book[(event.side, event.price)] = event.qty
        else:
            book.pop((event.side, event.price), None)


def _from_snapshot(snapshot: BookSnapshot) -> dict[tuple[Side, int], int]:
    book = {(Side.BUY, lvl.price): lvl.qty for lvl in snapshot.depth.bids}
    book.update({(Side.SELL, lvl.price): lvl.qty for lvl in snapshot.depth.asks})
    return book


def _engine_book(engine: Engine) -> dict[tuple[Side, int], int]:
    depth = engine.depth(SYM, 10_000)
    assert depth is not None
    book = {(Side.BUY, lvl.price): lvl.qty for lvl in depth.bids}
    book.update({(Side.SELL, lvl.price): lvl.qty for lvl in depth.asks})
    return book


def test_snapshot_then_deltas_equal_the_book_with_contiguous_md_seq() -> None:
    async def scenario() -> None:
        gateway = await started()
        await gateway.submit(OrderFlow(1, "early", [INSTRUMENT]).batch(300))
        sub = gateway.subscribe([SYM])
        first = await sub.next()
        assert isinstance(first, BookSnapshot)
        book = _from_snapshot(first)
        expected = first.md_seq + 1
        for flow in (OrderFlow(2, "alice", [INSTRUMENT]), OrderFlow(3, "bob", [INSTRUMENT])):
            await gateway.submit(flow.batch(400))
        while (item := sub.poll()) is not None:
            assert isinstance(item, MarketUpdate)
            assert item.md_seq == expected
            expected += 1
            _apply(book, item)
        assert book == _engine_book(gateway.engine)
        await gateway.stop()

    run(scenario)


def test_a_slow_subscriber_is_told_of_the_gap_and_resynchronised() -> None:
    async def scenario() -> None:
        gateway = await started(md_queue=20)
        sub = gateway.subscribe([SYM])
        snapshot = await sub.next()
        assert isinstance(snapshot, BookSnapshot)
        await gateway.submit(OrderFlow(5, "alice", [INSTRUMENT]).batch(500))  # far more than 20 updates
        gap = await sub.next()
        assert isinstance(gap, Gap)
        assert gap.last_md_seq == snapshot.md_seq
        fresh = await sub.next()
        assert isinstance(fresh, BookSnapshot)
        book = _from_snapshot(fresh)
        while (item := sub.poll()) is not None:
            assert isinstance(item, MarketUpdate)
            _apply(book, item)
        assert book == _engine_book(gateway.engine)
        assert gateway.stats_dict()["market_data_gaps"] == 1
        await gateway.stop()

    run(scenario)


def test_stop_applies_what_is_queued_before_returning(tmp_path: Path) -> None:
    async def scenario() -> None:
        gateway = await started(tmp_path)
        pending = asyncio.ensure_future(gateway.submit([limit("alice", "a1", Side.BUY, 1, 100)]))
        await asyncio.sleep(0)
        await gateway.stop()
        reply = await pending
        assert isinstance(reply[0][0], OrderAccepted)
        with pytest.raises(Overloaded):
            await gateway.submit([CancelOrder("alice", 1)])

    run(scenario)


def test_rejects_are_counted_by_reason() -> None:
    async def scenario() -> None:
        gateway = await started()
        replies = await gateway.submit([CancelOrder("alice", 12345), limit("alice", "", Side.BUY, 0, 100)])
        assert [type(r[0]) for r in replies] == [OrderRejected, OrderRejected]
        assert gateway.stats_dict()["rejected_by_reason"] == {"UNKNOWN_ORDER": 1, "INVALID_QUANTITY": 1}
        await gateway.stop()

    run(scenario)


def test_instruments_listed_in_the_journal_are_not_listed_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        gateway = await started(tmp_path)
        await gateway.stop()
        again = Gateway(config=GatewayConfig(journal=str(tmp_path / "journal.log")))
        extra = Instrument.create("ETH-USD", "0.01", "0.01")
        await again.start([INSTRUMENT, extra])
        assert [i.symbol for i in again.instruments] == ["BTC-USD", "ETH-USD"]
        assert again.stats_dict()["commands"] == {"add_instrument": 1}
        await again.stop()
        assert isinstance(AddInstrument(extra), AddInstrument)

    run(scenario)


def test_a_second_server_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    from transports.core.journal import JournalInUse

    async def scenario() -> None:
        first = await started(tmp_path)
        with pytest.raises(JournalInUse):
            await started(tmp_path)
        await first.stop()
        again = await started(tmp_path)  # free once the first has stopped
        await again.stop()

    run(scenario)


def test_a_snapshot_holds_the_whole_book_not_just_the_top() -> None:
    async def scenario() -> None:
        gateway = await started()
        await gateway.submit([limit("alice", f"a{i}", Side.BUY, 1, 10_000 - i) for i in range(300)])
        snapshot = await gateway.subscribe([SYM]).next()
        assert isinstance(snapshot, BookSnapshot) and len(snapshot.depth.bids) == 300
        await gateway.stop()

    run(scenario)
