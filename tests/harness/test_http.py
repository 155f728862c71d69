"""``dex-trader`` as a user runs it: a subprocess against a real ``turbo-dex`` subprocess.

Each test that needs a server shares one started for this module (127.0.0.1,
a free port, a journal in a temporary directory), stopped by its PID at the
end. Runs use distinct ``--trader-prefix``es, as separate users would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from traders.harness.server import LocalServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DEX_TRADER = Path(sys.executable).parent / "dex-trader"


@pytest.fixture(scope="module")
def turbo_dex(tmp_path_factory):
    server = LocalServer(tmp_path_factory.mktemp("turbo-dex")).start()
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, server.log_tail()


def dex_trader(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [str(DEX_TRADER)] if DEX_TRADER.exists() else [sys.executable, "-m", "traders.harness"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_a_run_over_http_reconciles_with_the_server(turbo_dex, tmp_path):
    out = tmp_path / "run.json"
    done = dex_trader(
        "--transport", "http", "--server", turbo_dex.url, "--workers", "3", "--batch", "50", "--duration", "3s",
        "--warmup", "500ms", "--trader-prefix", "single", "--json", str(out), "--strict-reconcile",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["transport"] == "http"
    assert report["orders_sent"] > 0
    assert report["errors"] == 0
    rec = report["reconciliation"]
    assert rec["ok"], rec
    assert rec["harness"]["commands"] == report["total"]["sent"]
    assert report["server_stats"]["by_transport"].get("http", 0) >= rec["harness"]["commands"]
    assert "reconciled" in done.stdout  # the summary a user reads


def test_procs_merge_into_one_reconciled_report(turbo_dex, tmp_path):
    out = tmp_path / "procs.json"
    done = dex_trader(
        "--server", turbo_dex.url, "--procs", "2", "--workers", "2", "--batch", "20", "--duration", "2s",
        "--warmup", "500ms", "--trader-prefix", "multi", "--json", str(out), "--quiet", "--strict-reconcile",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert (report["procs"], report["workers"], report["traders"]) == (2, 2, 4)
    assert report["latency_histogram"]["count"] == report["requests"]
    assert report["reconciliation"]["ok"], report["reconciliation"]
    assert done.stdout == ""  # --quiet


def test_an_unreachable_server_is_one_line_and_exit_code_2():
    done = dex_trader("--server", f"http://127.0.0.1:{free_port()}", "--duration", "1s", timeout=30)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "unreachable" in lines[0]


def test_a_server_lost_mid_run_ends_it_with_one_line_and_exit_code_2(tmp_path):
    server = LocalServer(tmp_path).start()
    command = [str(DEX_TRADER)] if DEX_TRADER.exists() else [sys.executable, "-m", "traders.harness"]
    run = subprocess.Popen(
        [*command, "--server", server.url, "--duration", "30s", "--warmup", "0s", "--workers", "2", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2.0)
    finally:
        server.stop()
    _, err = run.communicate(timeout=30)
    assert run.returncode == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "unreachable" in err
