"""``dex-bench``: the transport comparison report.

The quick run goes over every registered transport with real servers and
brokers, so the report can never silently break: a transport that joins the
registry without a working benchmark fails this test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.comparison import MODES, efficiency, summarize
from bench.comparison_report import _auth_lines, findings, markdown, percentile_curves
from bench.report_decision import rows
from transports.core.histogram import Histogram
from transports.registry import TRANSPORTS

ROOT = Path(__file__).resolve().parents[2]


def _point(mode: str, repeat: int, throughput: float, p50: int, p99: int, reconciled: bool = True) -> dict[str, Any]:
    hist = Histogram()
    hist.record(p50, 50)
    hist.record(p99, 50)
    return {
        "mode": mode,
        "repeat": repeat,
        "throughput_per_s": throughput,
        "latency_us": {"p50": p50, "p90": p99, "p99": p99, "p999": p99, "max": p99},
        "latency_histogram": hist.to_dict(),
        "errors": 0,
        "reconciled": reconciled,
    }


def _result(points: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary = {name: summarize(runs) for name, runs in points.items()}
    return {
        "transports": list(points),
        "summary": summary,
        "efficiency": efficiency(summary),
        "runs": points,
        "parameters": {"rate": 1000.0},
    }


def test_summary_reports_min_median_max_and_efficiency_against_the_in_process_ceiling() -> None:
    points = {
        "inproc": [_point("batch", r, t, 10, 20) for r, t in enumerate((100_000.0, 90_000.0, 110_000.0))],
        "zmq": [_point("batch", r, t, 500, 900) for r, t in enumerate((40_000.0, 20_000.0, 30_000.0))],
    }
    result = _result(points)
    spread = result["summary"]["zmq"]["batch"]["throughput_per_s"]
    assert spread == {"min": 20_000.0, "median": 30_000.0, "max": 40_000.0}
    assert result["efficiency"] == {"inproc": 1.0, "zmq": 0.3}
    assert result["summary"]["zmq"]["single"]["runs"] == 0  # no single runs: nothing invented


def _report_context() -> dict[str, Any]:
    return {
        "machine": {"cpu": "test", "cores": 2, "memory_bytes": 2**30, "platform": "linux", "load_average_at_start": [0.0]},
        "load_average_at_end": [0.0],
        "versions": {"python": "CPython 3.11", "libraries": {"grpcio": "1"}, "brokers": {"nats-server": "2"}},
        "parameters": {"repeat": 1, "duration_s": 1.0, "warmup_s": 0.1, "seed": 1, "quick": True, "rate": 1000.0},
        "elapsed_s": 1.0,
    }


def test_findings_name_the_measured_winners_and_skip_unreconciled_runs() -> None:
    points = {
        "inproc": [_point(m, 0, 100_000.0, 10, 20) for m in MODES],
        "grpc": [_point("single", 0, 900, 900, 2_000), _point("rate", 0, 1000, 1_200, 2_400), _point("batch", 0, 40_000, 0, 0)],
        "zmq": [_point("single", 0, 1200, 700, 2_500), _point("rate", 0, 1000, 800, 1_600), _point("batch", 0, 45_000, 0, 0)],
        # fastest on paper, but its figures did not reconcile with the server: never named a winner
        "http": [_point(m, 0, 999_999.0, 1, 1, reconciled=False) for m in MODES],
    }
    lines = findings(_result(points))
    text = "\n".join(lines)
    assert "**Lowest latency, one order at a time:** zmq: median p50 700 µs" in text
    assert "**Highest throughput:** zmq: 45,000 orders/s" in text
    assert "45% of the in-process ceiling" in text
    winners = [line for line in lines if line.startswith(("**Lowest", "**Highest"))]
    assert len(winners) == 3 and not any("http" in line for line in winners)
    md = markdown({**_result(points), **_report_context()}, {"throughput": "t.png", "latency": "l.png"})
    assert "| http |" in md and "| NO |" in md  # the unreconciled transport is shown, and flagged


def test_the_auth_table_shows_hmac_columns_beside_ed25519_when_the_run_has_them() -> None:
    runs = [
        _point("batch", 0, 100_000, 0, 0),
        _point("single", 0, 1_000, 400, 900),
        _point("batch_auth", 0, 80_000, 0, 0),  # Ed25519: -20% of batched throughput, out of bounds
        _point("single_auth", 0, 1_000, 520, 900),
        _point("batch_auth_hmac", 0, 95_000, 0, 0),  # HMAC: -5% and +10 µs, within bounds
        _point("single_auth_hmac", 0, 1_000, 410, 900),
    ]
    result = {**_result({"http": runs}), "modes": ["single", "batch", "single_auth", "batch_auth", "single_auth_hmac", "batch_auth_hmac"]}
    (row,) = [line for line in _auth_lines(result) if line.startswith("| http |")]
    assert row == "| http | 100,000 | 400 | 80,000 | -20.0% | 520 | +120 | NO | 95,000 | -5.0% | 410 | +10 | yes |"
    without = {**result, "modes": ["single", "batch", "single_auth", "batch_auth"]}
    assert not any("hmac" in line for line in _auth_lines(without) if line.startswith("|"))


@pytest.mark.timeout(300)  # about 25 s here: two RabbitMQ nodes start, each point is half a second
def test_nats_and_rabbitmq_run_authenticated_on_brokers_with_the_keyrings_users(tmp_path: Path) -> None:
    workload = tmp_path / "keyed.yaml"
    workload.write_text(
        "name: keyed\nmode: closed\ntransports: [nats, amqp]\nauth: keys\nbatch: 10\ntraders: 2\n"
        "duration_s: 0.5\nwarmup_s: 0.2\nrepeats: 1\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--workload", str(workload), "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "workload-keyed.json").read_text())
    assert report["order_workloads"]["keyed"]["server_args"][:2] == ["--auth", "keys"]  # dex-nats/dex-amqp refuse an open broker
    for name in ("nats", "amqp"):
        point = report["summary"][name]["keyed"]
        assert point["runs"] == 1 and point["failed_runs"] == 0 and point["all_reconciled"], (name, point)
        assert point["throughput_per_s"]["median"] > 0


def test_the_decision_table_names_a_fanout_failure_by_its_whole_first_clause() -> None:
    failure = "997 of 1000 subscribers missed updates (74.8% of 474,000 delivered; 0 gaps); 1000 subscribers had not caught up"
    summary = {"1000": {"failure": failure}, "100": {"latency_us": {"p99": {"median": 9_000}}, "complete": True}}
    result = {"transports": ["nats", "zmq"], "sections": {"fanout": {"mode": "fanout", "transports": {"nats": {"summary": summary}}}}}
    nats, zmq = rows(result)
    assert nats["fanout_1000"] == "fails: 997 of 1000 subscribers missed updates"  # not cut mid-word
    assert zmq["fanout_1000"] == "-"  # not in the fan-out section


def test_percentile_curves_come_from_the_merged_histograms() -> None:
    points = {"zmq": [_point("single", 0, 1, 100, 1_000), _point("single", 1, 1, 100, 1_000)]}
    curves = percentile_curves(_result(points), "single")
    (zmq,) = curves.values()
    assert zmq[0] <= 101  # p50: half the samples at 100 µs (bucket precision 1/64)
    assert 1_000 <= zmq[-1] <= 1_016  # p99.9 at the slow half


@pytest.mark.slow
@pytest.mark.timeout(1500)  # about 6 minutes on a quiet 2-core machine: every mode, every transport, the whole report
def test_quick_run_of_the_default_suite_covers_every_mode_and_transport_and_writes_the_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--quick", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "transport-comparison.json").read_text())
    assert report["transports"][0] == "inproc"
    assert set(report["transports"]) == set(TRANSPORTS)
    assert report["modes"] == ["single", "batch", "single_fsync_off", "batch_fsync_off", "single_auth", "batch_auth"]
    authenticated = {w["name"]: w for w in report["workloads"]}["batch_auth"]["transports"]
    for name in TRANSPORTS:
        for mode in report["modes"]:
            if mode.endswith("_auth") and name not in authenticated and name != "inproc":
                assert mode not in report["summary"][name], (name, mode)  # left out of the workload file (docs there)
                continue
            point = report["summary"][name][mode]
            if "skipped" in point:  # --fsync off without a journal fsync to turn off; --auth keys without a wire
                assert mode.endswith(("_fsync_off", "_auth")) and point["skipped"], (name, mode)
                continue
            assert point["runs"] == 1 and point["failed_runs"] == 0, (name, mode, point)
            assert point["all_reconciled"], (name, mode)
            assert point["throughput_per_s"]["median"] > 0
    assert report["efficiency"]["inproc"] == 1.0
    for wire, ceiling in report["wire_ceilings"].items():  # every wire's echo, measured in the same run
        assert ceiling["runs"] == 1 and ceiling["batch_orders_per_s"]["median"] > 0, (wire, ceiling)
    assert {"tcp", "zmq", "grpc", "http", "nats", "amqp"} <= set(report["wire_ceilings"])
    assert report["engine_alone"]["per_s"]["median"] > 0
    assert all(report["wire_efficiency"][n] > 0 for n in TRANSPORTS if n != "inproc")
    assert all(report["efficiency"][n] > 0 for n in TRANSPORTS)
    assert report["versions"]["libraries"]["grpcio"] != "not installed"
    assert report["machine"]["cores"] >= 1
    md = (tmp_path / "transport-comparison.md").read_text()
    assert "## Which transport for what" in md and "**Highest throughput:**" in md
    for name in TRANSPORTS:
        assert f"| {name} |" in md
    _check_sections(report, md)
    page = (tmp_path / "transport-comparison.html").read_text()
    charts = ("throughput", "latency", "rate_rate_search", "fanout_fanout", "cost")
    assert page.count('src="data:image/png;base64,') == len(charts)
    for chart in charts:
        assert (tmp_path / f"transport-comparison-{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _check_sections(report: dict[str, Any], md: str) -> None:
    """Every mode beyond the order path ran over every transport it names, reconciled, and is in the Markdown."""
    wired = [n for n in TRANSPORTS if n != "inproc"]
    sections = report["sections"]
    assert {s["mode"] for s in sections.values()} == {"rate-search", "fanout", "burst", "recovery"}
    assert not any(s.get("failure") for s in sections.values()), {k: s.get("failure") for k, s in sections.items()}
    search = sections["rate_search"]["transports"]
    assert set(search) == set(TRANSPORTS)
    assert all(row["curve"] and all(p["reconciled"] for p in row["curve"]) for row in search.values())
    fanout = sections["fanout"]["transports"]
    assert set(fanout) == set(wired)
    for name, data in fanout.items():
        for count in ("1", "10"):
            assert data["summary"][count]["complete"], (name, count, data["summary"][count])
    burst = sections["burst"]["transports"]
    assert set(burst) == set(TRANSPORTS) and all(row["lost"] == 0 and row["reconciled"] for row in burst.values())
    recovery = sections["recovery"]
    for name, row in recovery["deployments"].items():
        assert row["lost"] == 0 and row["doubled"] == 0 and row["recovery_s"]["median"] > 0, (name, row)
    assert recovery["journal_1gb"]["restart_s"]["median"] > 0
    for name in TRANSPORTS:
        assert report["cost_summary"][name]["batch"]["server_cpu_s_per_1000"]["median"] > 0, name
    for heading in ("## Sustainable rate", "## Market-data fan-out", "## Cost per order", "## Bursts", "## Recovery"):
        assert heading in md, heading
