"""Cost per order: the harness report's ``cost`` object and ``bench.cost.cost_of``.

Real runs of ``dex-trader``: in process (the server is the harness's own
process, and the object says so), over a real HTTP server in single and
batch mode, and with two harness processes (whose accounting adds up). The
assertions are that every figure is there, positive and counted from the
right place; no speed is asserted.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.comparison import benchmark_of
from bench.cost import FIELDS, cost_of
from bench.e2e import run_harness

SINGLE = ["--batch", "1", "--workers", "4", "--rate", "400", "--duration", "1s", "--warmup", "0.3s"]
BATCH = ["--batch", "100", "--workers", "2", "--duration", "1s", "--warmup", "0.3s"]


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="dex-test-cost-") as tmp, benchmark_of("http").server(Path(tmp), ()) as server:
        yield server.url


def _check(report: dict[str, Any]) -> dict[str, Any]:
    assert report["reconciliation"]["ok"]
    cost = cost_of(report)
    assert all(cost[key] is not None and cost[key] > 0 for key in FIELDS), cost
    assert cost["server_fields_missing"] == []
    assert cost["commands"] == report["orders_sent"] > 0
    assert cost["client_request_bytes"] > 0
    # The server counted the lean requests it received: about the bytes the harness encoded, per order.
    assert cost["bytes_per_order_out"] == pytest.approx(cost["client_bytes_per_order_out"], rel=0.1)
    return cost


def test_in_process_counts_the_one_process_once(tmp_path: Path) -> None:
    cost = _check(run_harness("inproc", None, SINGLE, tmp_path / "r.json", timeout=60))
    assert cost["same_process"]
    assert cost["total_cpu_s_per_1000"] == cost["client_cpu_s_per_1000"]
    assert cost["server_peak_rss_bytes"] == pytest.approx(cost["client_peak_rss_bytes"], rel=0.05)
    assert cost["broker"] is None


@pytest.mark.parametrize("args", [SINGLE, BATCH], ids=["single", "batch"])
def test_a_server_and_its_client_are_counted_apart(http_url: str, tmp_path: Path, args: list[str]) -> None:
    cost = _check(run_harness("http", http_url, args, tmp_path / "r.json", timeout=60))
    assert not cost["same_process"]
    assert cost["total_cpu_s_per_1000"] == pytest.approx(cost["server_cpu_s_per_1000"] + cost["client_cpu_s_per_1000"])
    assert cost["batch"] == int(args[1])


def test_two_harness_processes_add_up(http_url: str, tmp_path: Path) -> None:
    report = run_harness("http", http_url, [*BATCH, "--procs", "2"], tmp_path / "r.json", timeout=90)
    cost = _check(report)
    assert cost["server_commands"] is not None and cost["server_commands"] > 0


def test_a_report_without_cost_gives_every_field_as_none_and_says_why() -> None:
    cost = cost_of({"transport": "nats", "batch": 1, "mode": "open"})
    assert all(cost[key] is None for key in FIELDS)
    assert "older harness" in cost["missing"]
    assert "nats-server" in cost["broker"]
