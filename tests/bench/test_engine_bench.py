"""Smoke test of the engine benchmark: it runs, and its report is complete and sane.

Speed is shown by the benchmark itself (``make bench-engine``), never asserted
by a test: nothing here compares a timing with a threshold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ("mixed", "add_only", "exchange_core")
PEERS = ("lightmatchingengine", "limit_order_book")


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench-engine.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.engine_bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ops/s" in proc.stdout  # the readable summary table
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_top_level_keys(report):
    for key in ("machine", "engine_compiled", "seed", "repeat", "workloads", "memory", "targets", "notes"):
        assert key in report, key
    machine = report["machine"]
    for key in ("cpu", "cores", "memory_bytes", "python"):
        assert key in machine, key
    assert isinstance(report["engine_compiled"], bool)
    assert report["quick"] is True
    assert report["gc_freeze_after_generation"] is True
    assert isinstance(report["notes"], list) and report["notes"]
    assert all(isinstance(note, str) and note for note in report["notes"])


@pytest.mark.slow
def test_workloads(report):
    assert set(report["workloads"]) == set(WORKLOADS)
    for name, w in report["workloads"].items():
        for key in ("ops", "ops_per_s", "ops_per_s_min", "ops_per_s_max", "p50_us", "p99_us", "p999_us"):
            assert _positive(w[key]), (name, key, w[key])
        assert w["ops_per_s_min"] <= w["ops_per_s"] <= w["ops_per_s_max"]
        assert w["p50_us"] <= w["p99_us"] <= w["p999_us"]
        assert len(w["runs_ops_per_s"]) == report["repeat"]
        assert sum(w["mix"].values()) == w["ops"]
        assert set(w["peers"]) == set(report["peers_measured"])
        for peer, p in w["peers"].items():
            assert _positive(p["ops_per_s"]), (name, peer)
            assert p["book_check"] == "same book as ours", (name, peer, p["book_check"])


@pytest.mark.slow
def test_workload_mixes(report):
    mixed = report["workloads"]["mixed"]["mix"]
    places = mixed["place"] + mixed["place_crossing"]
    assert 0.5 < places / report["workloads"]["mixed"]["ops"] < 0.7
    assert 0.1 < mixed["place_crossing"] / places < 0.25
    ec = report["workloads"]["exchange_core"]["mix"]
    replaces = ec["replace_price"] + ec["replace_price_qty"] + ec["replace_qty_up"]
    assert 0.75 < replaces / report["workloads"]["exchange_core"]["ops"] < 0.9
    assert set(report["workloads"]["add_only"]["mix"]) == {"place"}


@pytest.mark.slow
def test_peers_installed(report):
    # The bench extra pins both peers; a missing one would silently shrink the comparison.
    assert set(report["peers_measured"]) == set(PEERS)


@pytest.mark.slow
def test_memory(report):
    mem = report["memory"]
    assert mem["resting_orders"] == 50_000
    assert _positive(mem["bytes_per_resting_order"])
    assert _positive(mem["tracemalloc_peak_bytes"])
    assert mem["tracemalloc_peak_bytes"] >= mem["traced_bytes"]
    for peer in report["peers_measured"]:
        assert _positive(mem["peers"][peer]["rss_bytes_per_resting_order"])


@pytest.mark.slow
def test_targets(report):
    targets = report["targets"]
    assert targets["mixed_ops_per_s"] == 500_000
    assert targets["bytes_per_resting_order"] == 300
    assert isinstance(targets["faster_than_every_peer"], bool)
    expected = all(w["ops_per_s"] > p["ops_per_s"] for w in report["workloads"].values() for p in w["peers"].values())
    assert targets["faster_than_every_peer"] is expected
