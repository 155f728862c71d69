"""Property tests: the engine's invariants hold after every command of any command stream."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Command, restore, snapshot, state_hash
from tests.property.ledger import Ledger
from tests.property.strategies import command_streams, new_engine

# Reproducible in CI; the whole property suite stays well under a minute on two cores.
PROPERTY_SETTINGS = settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(command_streams())
def test_invariants_hold_after_every_command(stream: list[Command]) -> None:
    ledger = Ledger(new_engine())
    for command in stream:
        ledger.run(command)


@PROPERTY_SETTINGS
@given(command_streams())
def test_replay_in_a_fresh_engine_gives_identical_events_and_hash(stream: list[Command]) -> None:
    first, second = new_engine(), new_engine()
    for command in stream:
        assert first.handle(command) == second.handle(command), command
    assert state_hash(first) == state_hash(second)


@PROPERTY_SETTINGS
@given(command_streams(), st.data())
def test_snapshot_then_restore_gives_the_same_hash_and_identical_later_events(stream: list[Command], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(stream)), label="snapshot after")
    original = new_engine()
    for command in stream[:cut]:
        original.handle(command)
    restored = restore(json.loads(json.dumps(snapshot(original))))
    assert state_hash(restored) == state_hash(original)
    for command in stream[cut:]:
        assert restored.handle(command) == original.handle(command), command
    assert state_hash(restored) == state_hash(original)


@PROPERTY_SETTINGS
@given(command_streams(), st.data())
def test_restored_engine_keeps_every_invariant(stream: list[Command], data: st.DataObject) -> None:
    # The ledger follows the original up to the cut, then carries on against a restored copy.
    cut = data.draw(st.integers(0, len(stream)), label="snapshot after")
    ledger = Ledger(new_engine())
    for command in stream[:cut]:
        ledger.run(command)
    ledger.engine = restore(snapshot(ledger.engine))
    for command in stream[cut:]:
        ledger.run(command)


def test_generated_streams_exercise_every_path() -> None:
    # Guards the strategy: if the streams stopped trading, triggering or replacing,
    # the properties above would pass while saying little.
    seen: Counter[str] = Counter()

    @settings(max_examples=50, derandomize=True, deadline=None, database=None)
    @given(command_streams())
    def run(stream: list[Command]) -> None:
        engine = new_engine()
        for command in stream:
            for event in engine.handle(command):
                seen[type(event).__name__] += 1
                reason = getattr(event, "reason", None)
                if reason is not None:
                    seen[reason.name] += 1

    run()
    assert seen["TradeExecuted"] >= 100, seen
    for name in (
        "StopTriggered",
        "OrderReplaced",
        "SELF_TRADE",
        "FOK_NOT_FILLED",
        "IOC_REMAINDER",
        "MARKET_REMAINDER",
        "MASS_CANCEL",
        "USER",
        "DUPLICATE_CLIENT_ORDER_ID",
        "UNKNOWN_ORDER",
        "POST_ONLY_WOULD_TAKE",
        "RISK_MAX_ORDER_QTY",
    ):
        assert seen[name] > 0, f"the streams never produce {name}: {seen}"
