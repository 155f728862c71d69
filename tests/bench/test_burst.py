"""The burst benchmark, run short: ten times the rate for half a second, then the rate; every acceptance reconciled.

Speed is not judged here: the test checks what a burst row holds and that nothing acknowledged was lost.
"""

from __future__ import annotations

import pytest

from bench.burst import run_burst

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("transport", ["inproc", "zmq"])
def test_a_burst_is_measured_and_reconciled_with_the_server(transport: str) -> None:
    result = run_burst(
        [transport], {transport: 300.0}, repeats=1, burst_s=0.5, after_s=1.0, before_s=0.5, burst_workers=16, log=lambda _: None
    )
    row = result["transports"][transport]
    assert row["failure"] is None, row["failure"]
    assert row["rate"] == 300.0 and row["burst_rate"] == 3000.0
    (run,) = row["runs"]
    assert run["peak_latency_us"]["orders"] > 0  # orders intended inside the burst window were answered and placed in time
    assert 0 < run["peak_latency_us"]["p99"] <= run["peak_latency_us"]["max"]
    assert run["accepted"] > 0
    assert run["sent_in_burst_per_s"] > 300.0  # the burst processes sent inside the burst window, beside the base load
    assert row["lost"] == 0
    assert row["reconciled"], run["reconciliation_diff"]
    assert (row["drain_s"] is None) == (not row["drained"])
    starts = [point[0] for point in run["timeline"]]  # p99 per 100 ms of intended send time, burst included
    assert starts == sorted(starts) and starts[0] < 0 < starts[-1]
    assert sum(point[2] for point in run["timeline"]) >= run["peak_latency_us"]["orders"]
