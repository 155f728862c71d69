"""Smoke test of ``make bench-grpc``: it starts real servers, runs both modes, and its report is complete.

Speed is shown by the benchmark itself, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_quick_bench_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "bench-grpc.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.grpc_bench", "--quick", "--seconds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"] == "grpc" and report["machine"]["cores"] >= 1
    assert len(report["runs"]["batch"]) == len(report["runs"]["single"]) == 1
    batch, single = report["runs"]["batch"][0], report["runs"]["single"][0]
    assert (batch["batch"], batch["mode"]) == (1000, "closed")
    assert (single["batch"], single["mode"], single["rate"]) == (1, "open", 1000.0)
    for run in (batch, single):
        assert run["transport"] == "grpc" and run["server"].startswith("grpc://127.0.0.1:")
        assert run["orders_sent"] > 0 and run["errors"] == 0
        assert run["reconciliation"]["ok"], run["reconciliation"]
        assert run["server_stats"]["by_transport"]["grpc"] > 0
        assert "dex-grpc listening on" in run["server_log_tail"]
    summary = report["summary"]
    assert summary["batch"]["median_throughput_per_s"] == batch["throughput_per_s"]
    assert summary["single"]["median_p99_us"] == single["latency_us"]["p99"]
    assert summary["batch"]["target_per_s"] == 150_000 and summary["single"]["target_p99_us"] == 800
    assert summary["all_runs_reconciled"] is True
    assert "median" in done.stdout
