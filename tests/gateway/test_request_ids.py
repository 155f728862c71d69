"""Every command exactly once through the gateway: a retried request id is answered with its first outcome.

Within the window (docs/exactly-once.md) a retried cancel, replace or mass cancel is answered with the events of its
first answer and applied once, also after a restart from the journal or from a snapshot plus the journal's tail; a
retry whose first answer is older than ``dedup_window_s`` is refused ``DUPLICATE_REQUEST_ID`` (nothing applied); one
that left the window's count is a new command.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from engine import (
    AddInstrument,
    CancelOrder,
    Engine,
    Instrument,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TimeInForce,
)
from transports.codec import lean
from transports.core.gateway import Gateway, GatewayConfig

INSTRUMENT = Instrument.create("BTC-USD", "1", "1")
SYMBOL = INSTRUMENT.symbol


async def start(path: Path | None, engine: Engine | None = None, **config: Any) -> Gateway:
    gateway = Gateway(engine, GatewayConfig(journal=str(path) if path else None, **config))
    await gateway.start([INSTRUMENT])
    return gateway


def die(gateway: Gateway) -> None:
    """What the kernel does for a killed process: tasks gone, the journal closed; no checkpoint."""
    for task in gateway._tasks:
        task.cancel()
    gateway._running = False
    assert gateway.journal is not None
    gateway.journal.close()


async def place(gateway: Gateway, coid: str, price: int, qty: int = 5, trader: str = "alice") -> int:
    [events] = await gateway.submit([PlaceOrder(trader, coid, SYMBOL, Side.BUY, qty, price)])
    accepted = events[0]
    assert isinstance(accepted, OrderAccepted)
    return accepted.order_id


def test_retried_replace_and_mass_cancel_are_answered_with_their_first_outcome_and_not_reapplied() -> None:
    async def scenario() -> None:
        gateway = await start(None)
        oid = await place(gateway, "c1", 100)
        [replaced] = await gateway.submit([ReplaceOrder("alice", oid, new_price=101, symbol=SYMBOL, request_id=1)])
        await place(gateway, "c2", 99)
        [swept] = await gateway.submit([MassCancel("alice", request_id=2)])
        await place(gateway, "c3", 98)  # after the mass cancel: its retry must leave this order alone
        seq = gateway.engine.seq
        [replaced_again, swept_again] = await gateway.submit(
            [ReplaceOrder("alice", oid, new_price=101, symbol=SYMBOL, request_id=1), MassCancel("alice", request_id=2)]
        )
        assert replaced_again == replaced and isinstance(replaced[0], OrderReplaced)
        assert swept_again == swept and len([e for e in swept if isinstance(e, OrderCancelled)]) == 2
        assert gateway.engine.seq == seq  # nothing happened
        depth = gateway.depth(SYMBOL)
        assert depth is not None and [(level.price, level.qty) for level in depth.bids] == [(98, 5)]
        stats = gateway.stats_dict()
        assert stats["repeated_requests"] == 2
        assert stats["cancelled_by_reason"] == {"MASS_CANCEL": 2}  # counted once
        await gateway.stop()

    asyncio.run(scenario())


def test_the_lean_path_answers_a_retry_with_the_same_outcome() -> None:
    async def scenario() -> None:
        gateway = await start(None)
        oid = await place(gateway, "c1", 100)
        answers = []
        for _ in range(2):
            outcomes = lean.OutcomeColumns()
            await gateway.submit([CancelOrder("alice", oid, request_id=77)], "test", None, outcomes)
            answers.append(outcomes.to_bytes())
        assert answers[0] == answers[1]
        decoded = lean.decode_outcomes(answers[1])
        assert decoded.outcome == [lean.CANCELLED] and decoded.cancelled == [5]
        await gateway.stop()

    asyncio.run(scenario())


def test_a_retry_after_a_restart_is_answered_from_the_journal_and_from_a_snapshot(tmp_path: Path) -> None:
    async def scenario(path: Path, snapshot_every: int) -> None:
        gateway = await start(path, snapshot_every=snapshot_every)
        oid = await place(gateway, "c1", 100)
        [first] = await gateway.submit([CancelOrder("alice", oid, request_id=5)])
        await place(gateway, "c2", 100)  # a later command, so a snapshot (every 2) falls after the cancel
        die(gateway)
        again = await start(path, snapshot_every=snapshot_every)
        if snapshot_every:
            assert again.recovered_commands < 4  # the cancel came back from the snapshot, not from replay
        seq = again.engine.seq
        [retry] = await again.submit([CancelOrder("alice", oid, request_id=5)])
        assert retry == first
        assert again.engine.seq == seq
        assert again.stats_dict()["repeated_requests"] == 1
        await again.stop()

    asyncio.run(scenario(tmp_path / "replay.journal", 0))
    asyncio.run(scenario(tmp_path / "snapshot.journal", 2))


def test_a_retry_older_than_the_windows_duration_is_refused_and_changes_nothing() -> None:
    async def scenario() -> None:
        gateway = await start(None, dedup_window_s=0.3)
        oid = await place(gateway, "c1", 100)
        [first] = await gateway.submit([CancelOrder("alice", oid, request_id=3)])
        [young] = await gateway.submit([CancelOrder("alice", oid, request_id=3)])
        assert young == first
        await asyncio.sleep(0.6)
        seq = gateway.engine.seq
        [old] = await gateway.submit([CancelOrder("alice", oid, request_id=3)])
        assert [type(e) for e in old] == [OrderRejected]
        assert isinstance(old[0], OrderRejected) and old[0].reason is RejectReason.DUPLICATE_REQUEST_ID
        assert gateway.engine.seq == seq
        assert gateway.stats_dict()["rejected_by_reason"] == {"DUPLICATE_REQUEST_ID": 1}
        await gateway.stop()

    asyncio.run(scenario())


def test_a_request_id_past_the_windows_count_is_a_new_command() -> None:
    async def scenario() -> None:
        engine = Engine(dedup_window=3)
        engine.handle(AddInstrument(INSTRUMENT))
        gateway = await start(None, engine)
        await place(gateway, "c1", 100)
        await gateway.submit([MassCancel("alice", request_id=4)])
        for i in range(3):  # three finished orders push the mass cancel out of a window of 3
            await gateway.submit([PlaceOrder("alice", f"x{i}", SYMBOL, Side.BUY, 1, 100, tif=TimeInForce.IOC)])
        await place(gateway, "c2", 100)
        [again] = await gateway.submit([MassCancel("alice", request_id=4)])
        assert [e.client_order_id for e in again if isinstance(e, OrderCancelled)] == ["c2"]  # applied as new
        assert gateway.stats_dict()["repeated_requests"] == 0
        await gateway.stop()

    asyncio.run(scenario())
