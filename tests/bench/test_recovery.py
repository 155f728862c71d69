"""The recovery benchmark, run short: every deployment is killed once and comes back with nothing lost or doubled.

One kill per deployment and an 8 MiB journal history (``make test``'s quick variant); the times are
reported, never judged here (speed belongs to the benchmark's own run).
"""

from __future__ import annotations

import pytest

from bench.recovery import run_recovery, summary_lines

pytestmark = pytest.mark.slow


def test_each_deployment_recovers_from_kill_9_with_no_order_lost_or_doubled() -> None:
    result = run_recovery(
        ("single", "nats-auto", "dht"), kills=1, journal_bytes=8 << 20, restarts=1, snapshot_every=50_000, log=lambda _: None
    )
    for name, row in result["deployments"].items():
        assert row["failure"] is None, f"{name}: {row['failure']}"
        assert row["kills"] == 1
        spread = row["recovery_s"]
        assert spread is not None and 0 < spread["min"] <= spread["median"] <= spread["max"], name
        assert row["lost"] == 0, name
        assert row["doubled"] == 0, name
    # The stream kept sending through each kill: acknowledged orders exist to lose.
    assert result["deployments"]["single"]["acknowledged"] > 0
    assert result["deployments"]["dht"]["acknowledged"] > 0
    assert result["deployments"]["nats-auto"]["acknowledged"] > 0
    history = result["journal_1gb"]
    assert history["failure"] is None, history["failure"]
    assert history["history_bytes"] >= 8 << 20
    assert history["snapshots_written"] >= 1  # the history was truncated by snapshots: a restart replays only the tail
    assert history["journal_file_bytes"] < history["history_bytes"]
    assert history["restart_s"] is not None and history["restart_s"]["median"] > 0
    assert history["lost"] == 0 and history["doubled"] == 0
    assert history["target_s"] == 2.0 and isinstance(history["target_met"], bool)
    worst = history["worst_tail"]  # the same history just before its next snapshot: the longest replay
    assert history["tail_commands"] <= worst["tail_commands"] < history["snapshot_every"]
    assert worst["restart_s"] is not None and worst["lost"] == 0 and worst["doubled"] == 0
    assert len(summary_lines(result)) == 5
