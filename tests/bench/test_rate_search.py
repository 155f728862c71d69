"""The sustainable-rate search (``bench/rate_search.py``).

The quick search runs over every registered transport with real servers and
brokers, so a wire whose rate search breaks fails here. What it asserts is the
report's shape and honesty (reconciled rungs, a sustainable rate that is one
of the rungs run, a cost on every rung), never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.cost import FIELDS
from bench.rate_search import curve, sustained, within
from transports.registry import TRANSPORTS

ROOT = Path(__file__).resolve().parents[2]


def _rung(rate: float, p99_us: int, *, achieved: float | None = None, reconciled: bool = True) -> dict[str, Any]:
    return {
        "offered_per_s": rate,
        "achieved_per_s": rate if achieved is None else achieved,
        "p50_us": p99_us // 2,
        "p99_us": p99_us,
        "reconciled": reconciled,
    }


def test_sustainable_rate_is_the_top_of_the_unbroken_run_of_rungs_within_the_bound() -> None:
    rungs = [_rung(500, 2_000), _rung(1000, 4_000), _rung(2000, 9_000), _rung(4000, 3_000), _rung(8000, 60_000)]
    assert sustained(rungs, 5.0) == 1000  # 4000 within 5 ms after 2000 was not: a lucky rung never counts
    assert sustained(rungs, 50.0) == 4000
    assert sustained(list(reversed(rungs)), 50.0) == 4000  # the order the rungs ran in does not matter


def test_an_unreconciled_or_fallen_behind_rung_is_never_sustained() -> None:
    assert not within(_rung(1000, 100, reconciled=False), 50.0)
    assert not within(_rung(1000, 100, achieved=850), 50.0)
    assert not within({"offered_per_s": 1000.0, "error": "dex-trader exited with 2"}, 50.0)
    assert sustained([_rung(500, 100, reconciled=False), _rung(1000, 100)], 50.0) == 0.0


def test_curve_spreads_each_offered_rate_over_the_repeats_that_reached_it() -> None:
    rows = curve([[_rung(500, 1_000), _rung(1000, 3_000)], [_rung(500, 2_000)], [_rung(500, 4_000, reconciled=False)]])
    assert [r["offered_per_s"] for r in rows] == [500, 1000]
    assert rows[0]["p99_us"] == {"min": 1_000, "median": 2_000, "max": 4_000}
    assert rows[0]["runs"] == 3 and not rows[0]["reconciled"]
    assert rows[1]["runs"] == 1 and rows[1]["reconciled"]


def test_quick_search_over_every_registered_transport(tmp_path: Path) -> None:
    out = tmp_path / "rate.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.rate_search", "--quick", "--transports", ",".join(TRANSPORTS), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["transports"]) == set(TRANSPORTS)
    offered = report["parameters"]["rates"]
    for name, data in report["transports"].items():
        assert data["failure"] is None, (name, data["failure"])
        assert set(data["sustainable_per_s"]) == {"5", "50"}
        run = data["runs"][0]
        assert run and all("error" not in p and p["reconciled"] for p in run), (name, run)
        for bound, spread in data["sustainable_per_s"].items():
            assert set(spread) == {"min", "median", "max"}
            assert spread["median"] == 0.0 or spread["median"] in [p["offered_per_s"] for p in run], (name, bound)
            assert spread["median"] <= max(offered)
        assert data["sustainable_per_s"]["5"]["median"] <= data["sustainable_per_s"]["50"]["median"]
        for row in data["curve"]:
            assert row["reconciled"] and row["achieved_per_s"]["median"] > 0 and row["p99_us"]["median"] >= row["p50_us"]["median"]
        for point in run:
            cost = point["cost"]
            counted = [key for key in FIELDS if not (key.startswith("bytes_") and "bytes_not_counted" in cost)]
            assert all(cost[key] is not None and cost[key] > 0 for key in counted), (name, cost)
