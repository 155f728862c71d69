"""Smoke test of ``make bench-http``: it starts real servers, runs both modes, and its report is complete.

Speed is shown by the benchmark itself, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_bench_writes_a_complete_report(tmp_path):
    out = tmp_path / "bench-http.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.http_bench", "--quick", "--seconds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    assert len(report["runs"]["batch"]) == len(report["runs"]["single"]) == 1
    batch, single = report["runs"]["batch"][0], report["runs"]["single"][0]
    assert (batch["batch"], batch["mode"]) == (1000, "closed")
    assert (single["batch"], single["mode"], single["rate"]) == (1, "open", 1000.0)
    for run in (batch, single):
        assert run["transport"] == "http"
        assert run["orders_sent"] > 0
        assert run["reconciliation"]["ok"], run["reconciliation"]
    summary = report["summary"]
    assert summary["batch"]["median_throughput_per_s"] == batch["throughput_per_s"]
    assert summary["single"]["median_p99_us"] == single["latency_us"]["p99"]
    assert summary["all_runs_reconciled"] is True
    assert isinstance(summary["batch"]["target_met"], bool)
    assert "median" in done.stdout
