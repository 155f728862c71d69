"""Merging processes' results and reconciling with the server's counters (no server needed)."""

from __future__ import annotations

import json

from traders.harness.config import HarnessConfig
from traders.harness.results import build_report, merge, reconcile
from traders.harness.runner import Counts
from transports.core.histogram import Histogram


def _result(proc: int, latencies: range, sent: int) -> dict:
    latency = Histogram()
    for value in latencies:
        latency.record(value)
    counts = Counts(requests=len(latencies), sent=sent, orders=sent // 2, accepted=sent // 2, rejected=3, trades=7, errors=1, overloaded=1)
    result = {
        "proc": proc,
        "total": counts.to_dict(),
        "measured": counts.to_dict(),
        "latency_us": latency.to_dict(),
        "service_latency_us": latency.to_dict(),
        "measured_elapsed_s": 2.0 + proc / 10,
        "first_error": "",
    }
    return json.loads(json.dumps(result))  # what crosses the process boundary


def test_procs_merge_histograms_as_if_one_process_had_recorded_everything():
    merged = merge([_result(0, range(1, 1001), 4000), _result(1, range(1001, 3001), 6000)])
    alone = Histogram()
    for value in range(1, 3001):
        alone.record(value)
    assert merged.latency_us.count == 3000
    assert merged.latency_us.summary() == alone.summary()
    assert merged.latency_us.min == 1
    assert merged.latency_us.max == 3000
    assert merged.measured.sent == 10_000
    assert merged.measured.requests == 3000
    assert merged.total.trades == 14
    assert merged.measured_elapsed_s == 2.1  # the slowest process


def _stats(orders: int, accepted: int, rejected: int, trades: int, cancels: int) -> dict:
    return {
        "orders": orders,
        "commands": {"place": orders, "cancel": cancels, "add_instrument": 3},
        "accepted": accepted,
        "rejected": rejected,
        "rejected_by_reason": {"UNKNOWN_ORDER": rejected},
        "trades": trades,
    }


def test_a_server_with_earlier_traffic_still_reconciles():
    before = _stats(orders=1000, accepted=990, rejected=10, trades=300, cancels=50)
    after = _stats(orders=1600, accepted=1580, rejected=30, trades=420, cancels=90)
    ours = Counts(sent=640, orders=600, accepted=590, rejected=20, trades=120)
    rec = reconcile(ours, before, after)
    assert rec["ok"], rec
    assert rec["diff"] == {}
    assert rec["server"] == {"commands": 640, "orders": 600, "accepted": 590, "rejected": 20, "trades": 120}
    assert rec["server_rejected_by_reason"] == {"UNKNOWN_ORDER": 20}


def test_a_difference_is_reported_per_counter():
    before = _stats(orders=0, accepted=0, rejected=0, trades=0, cancels=0)
    after = _stats(orders=100, accepted=100, rejected=0, trades=40, cancels=0)
    rec = reconcile(Counts(sent=99, orders=99, accepted=99, trades=40), before, after)
    assert not rec["ok"]
    assert rec["diff"] == {"commands": -1, "orders": -1, "accepted": -1}


def test_report_has_the_documented_keys_and_json_round_trips():
    merged = merge([_result(0, range(1, 101), 1000)])
    before = _stats(0, 0, 0, 0, 0)
    after = _stats(500, 500, 3, 7, 500)
    report = build_report(HarnessConfig(transport="http"), merged, before, after, "http://127.0.0.1:8080")
    assert json.loads(json.dumps(report)) == report
    for key in (
        "transport", "workers", "batch", "rate", "duration_s", "orders_sent", "accepted", "rejected",
        "trades", "errors", "throughput_per_s", "latency_us", "server_stats",
    ):  # fmt: skip
        assert key in report
    assert set(report["latency_us"]) == {"p50", "p90", "p99", "p999", "max"}
    assert report["throughput_per_s"] == 500.0  # 1,000 commands in 2 s
