"""Cancel on disconnect through the gateway: the guard's mass cancel is a journaled command with its reason.

The contract suite (tests/contract) shows it on every wire; these show the
parts a user meets only across a restart, a DHT log entry, or a bad input.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine import (
    AddInstrument,
    CancelReason,
    Command,
    Engine,
    ExchangeError,
    Instrument,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderStatus,
    PlaceOrder,
    RejectReason,
    Side,
)
from transports.codec.compact import decode_compact, encode_compact, needs_compact
from transports.codec.lean import encode_orders
from transports.core.gateway import Gateway, GatewayConfig, Replies
from transports.core.journal import journal_commands, read_records
from transports.core.requests import RequestHandler
from transports.core.sessions import MAX_GRACE_MS, MIN_GRACE_MS, Heartbeat, SessionGuard, json_grace
from transports.dht.entries import decode_entry, encode_entry

INSTRUMENT = Instrument.create("BTC-USD", "0.01", "0.001")
COD = CancelReason.CANCEL_ON_DISCONNECT


def _orders(trader: str, count: int) -> list[PlaceOrder]:
    return [PlaceOrder(trader, f"{trader}-{i}", "BTC-USD", Side.BUY, 1000, 3_000_000 - i) for i in range(count)]


async def _cancelled_by_guard(gateway: Gateway, trader: str) -> None:
    """Arm ``trader``'s session, send no heartbeat, and wait (bounded) until its orders are gone."""
    requests = RequestHandler(gateway, "zmq")
    assert requests.arm_session(trader, MIN_GRACE_MS) == MIN_GRACE_MS
    async with asyncio.timeout(10):
        while gateway.open_orders(trader):
            await asyncio.sleep(0.01)
    assert requests.sessions.armed(trader) == 0  # fired once, then forgotten


def test_the_guards_mass_cancel_is_journaled_with_its_reason_and_replays_to_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"

    async def first_life() -> tuple[str, list[int]]:
        gateway = Gateway(config=GatewayConfig(journal=str(path)))
        await gateway.start([INSTRUMENT])
        replies = await gateway.submit([*_orders("alice", 3), *_orders("bob", 2)], "zmq")
        await _cancelled_by_guard(gateway, "alice")
        assert len(gateway.open_orders("bob")) == 2
        assert gateway.stats_dict()["cancelled_by_reason"] == {"CANCEL_ON_DISCONNECT": 3}
        state = gateway.engine.state_hash()
        await gateway.stop()
        return state, [accepted.order_id for r in replies[:3] for accepted in r if isinstance(accepted, OrderAccepted)]

    async def second_life() -> tuple[str, list[OrderStatus]]:
        gateway = Gateway(config=GatewayConfig(journal=str(path)))
        await gateway.start([INSTRUMENT])
        views = [gateway.order_status("alice", order_id) for order_id in alices]
        await gateway.stop()
        return gateway.engine.state_hash(), [v.status for v in views if v is not None]

    state, alices = asyncio.run(first_life())
    commands = list(journal_commands(read_records(path).records))
    assert commands[-1] == MassCancel("alice", "", COD)
    restarted, statuses = asyncio.run(second_life())
    assert restarted == state
    assert statuses == [OrderStatus.CANCELLED] * 3


def test_the_engine_cancels_with_the_commands_reason_and_refuses_any_other() -> None:
    engine = Engine()
    engine.handle(AddInstrument(INSTRUMENT))
    for order in _orders("alice", 2):
        engine.handle(order)
    events = engine.handle(MassCancel("alice", "", COD))
    assert [e.reason for e in events if isinstance(e, OrderCancelled)] == [COD, COD]
    refused = engine.handle(MassCancel("alice", "", CancelReason.USER))
    assert [e.reason for e in refused if isinstance(e, OrderRejected)] == [RejectReason.INVALID_ORDER]


def test_the_reason_survives_a_compact_record_and_a_dht_log_entry_and_the_lean_batch_refuses_it() -> None:
    command = MassCancel("alice", "", COD)
    assert decode_compact(encode_compact(command)) == command
    assert decode_compact(encode_compact(MassCancel("bob", "BTC-USD"))) == MassCancel("bob", "BTC-USD")
    assert needs_compact([MassCancel("bob")]) is False and needs_compact([MassCancel("bob"), command]) is True
    origin, groups, commands = decode_entry(encode_entry(b"node0001", [(1, [command])]))
    assert (origin, groups, commands) == (b"node0001", [(1, 1)], [command])
    with pytest.raises(ExchangeError):
        encode_orders([command], with_traders=True)


def test_the_grace_is_bounded_and_the_json_request_takes_only_grace_ms() -> None:
    async def scenario() -> None:
        gateway = Gateway()
        await gateway.start([INSTRUMENT])
        requests = RequestHandler(gateway, "http")
        for wrong in (MIN_GRACE_MS - 1, MAX_GRACE_MS + 1, -1, True, "200", 200.0):
            with pytest.raises(ExchangeError) as info:
                requests.arm_session("alice", wrong)
            assert info.value.reason is RejectReason.MALFORMED_MESSAGE
        with pytest.raises(ExchangeError) as unidentified:
            requests.arm_session(None, MIN_GRACE_MS)
        assert unidentified.value.reason is RejectReason.UNAUTHORIZED
        assert requests.sessions.armed("alice") == 0
        await gateway.stop()

    asyncio.run(scenario())
    assert json_grace({"type": "cancel_on_disconnect", "grace_ms": 250}) == 250
    for wrong in ({}, {"grace_ms": 250, "symbol": "BTC-USD"}):
        with pytest.raises(ExchangeError):
            json_grace(wrong)


class _Recorder:
    """A submit that records when each trader's cancel arrived."""

    def __init__(self) -> None:
        self.cancels: list[tuple[MassCancel, float]] = []

    async def __call__(self, commands: list[Command], transport: str, record: bytes | None) -> Replies:
        for command in commands:
            assert isinstance(command, MassCancel)
            self.cancels.append((command, time.monotonic()))
        return [[] for _ in commands]


def test_heartbeats_keep_a_session_alive_silence_fires_it_once_and_zero_disarms() -> None:
    grace = MIN_GRACE_MS / 1000

    async def scenario() -> None:
        guard, submit = SessionGuard(), _Recorder()
        guard.arm("alice", MIN_GRACE_MS, submit, "zmq")
        guard.arm("bob", MIN_GRACE_MS, submit, "grpc")
        for _ in range(6):  # 1.5 graces of heartbeats, each well inside the grace
            await asyncio.sleep(grace / 4)
            guard.arm("alice", MIN_GRACE_MS, submit, "zmq")
            guard.arm("bob", MIN_GRACE_MS, submit, "grpc")
        assert submit.cancels == []
        silent = time.monotonic()
        assert guard.arm("bob", 0, submit, "grpc") == 0  # bob disarms; alice goes silent
        async with asyncio.timeout(5):
            while not submit.cancels:
                await asyncio.sleep(0.01)
        (cancel, at), *rest = submit.cancels
        assert cancel == MassCancel("alice", "", COD) and rest == []
        assert at - silent >= grace * 0.9  # not before her grace ran out (timers may round a little)
        assert guard.fired == 1 and guard.armed("alice") == 0 and guard.armed("bob") == 0
        await asyncio.sleep(2 * grace)
        assert len(submit.cancels) == 1  # once, and nothing for bob
        guard.close()

    asyncio.run(scenario())


def test_the_number_of_armed_sessions_is_capped_and_a_refresh_is_never_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from transports.core import sessions

    monkeypatch.setattr(sessions, "MAX_SESSIONS", 2)

    async def scenario() -> None:
        guard, submit = SessionGuard(), _Recorder()
        for trader in ("alice", "bob"):
            assert guard.arm(trader, MAX_GRACE_MS, submit, "http") == MAX_GRACE_MS
        with pytest.raises(ExchangeError) as info:
            guard.arm("carol", MAX_GRACE_MS, submit, "http")
        assert info.value.reason is RejectReason.LIMIT_EXCEEDED
        assert guard.arm("alice", MAX_GRACE_MS, submit, "http") == MAX_GRACE_MS  # a heartbeat of an armed session
        assert guard.arm("bob", 0, submit, "http") == 0
        assert guard.arm("carol", MAX_GRACE_MS, submit, "http") == MAX_GRACE_MS  # room again
        guard.close()

    asyncio.run(scenario())


def test_a_clients_disarm_is_never_overtaken_by_a_late_heartbeat_and_a_bad_grace_keeps_the_beat() -> None:
    async def scenario() -> None:
        received: list[int] = []
        in_flight = asyncio.Event()

        async def deliver(grace_ms: int) -> None:
            await asyncio.sleep(0.04 if grace_ms else 0.005)  # a wire that may reorder: a beat is slower than a disarm
            received.append(grace_ms)

        async def arm(grace_ms: int) -> int:
            in_flight.set()
            await asyncio.shield(asyncio.ensure_future(deliver(grace_ms)))  # once sent, it arrives, whatever the client does
            return grace_ms

        beat = Heartbeat(arm)
        assert await beat.set(MIN_GRACE_MS) == MIN_GRACE_MS
        with pytest.raises(ExchangeError):
            await beat.set(MIN_GRACE_MS - 1)  # refused before anything is sent; the beat goes on
        in_flight.clear()
        await asyncio.wait_for(in_flight.wait(), 5)  # a heartbeat is on the wire now
        assert await beat.set(0) == 0
        await asyncio.sleep(4 * MIN_GRACE_MS / 1000)
        assert received[-1] == 0 and set(received[:-1]) == {MIN_GRACE_MS} and len(received) >= 3
        beat.stop()

    asyncio.run(scenario())
