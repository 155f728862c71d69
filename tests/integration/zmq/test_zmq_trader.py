"""``zmq-trader``, the old tool's command line, against a real ``dex-zmq`` started with old spellings too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from transports.zmq.local import LocalZmqServer

ZMQ_TRADER = Path(sys.executable).with_name("zmq-trader")


def test_the_old_zmq_trader_command_line_trades_and_reconciles(tmp_path: Path) -> None:
    with LocalZmqServer(tmp_path, ("-buffer", "50000", "--log-level", "warning")) as server:
        assert server.orders_endpoint.startswith("tcp://127.0.0.1:")
        old = ["-server", server.orders_endpoint, "-traders", "4", "-rate", "200", "-duration", "1s"]
        done = subprocess.run(
            [str(ZMQ_TRADER), *old, "--warmup", "0", "--quiet", "--json", str(tmp_path / "run.json")],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "run.json").read_text())
    assert (report["transport"], report["workers"], report["rate"], report["requested_duration_s"]) == ("zmq", 4, 200.0, 1.0)
    assert report["accepted"] > 0 and report["errors"] == 0
    assert report["reconciliation"]["ok"], report["reconciliation"]


def test_zmq_trader_says_what_it_is_and_keeps_its_transport() -> None:
    help_text = subprocess.run([str(ZMQ_TRADER), "--help"], check=False, capture_output=True, text=True, timeout=60)
    assert help_text.returncode == 0 and help_text.stdout.startswith("zmq-trader is dex-trader --transport zmq")
    other = subprocess.run([str(ZMQ_TRADER), "--transport", "http"], check=False, capture_output=True, text=True, timeout=60)
    assert other.returncode == 2 and "always zmq" in other.stderr
