"""``make demo``: a real turbo-dex, a short HTTP run, the summary and the books, and the server stopped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_trades_over_http_and_stops_its_server():
    done = subprocess.run(
        [sys.executable, "-m", "traders.demo", "--seconds", "3"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "reconciled with the server" in out
    assert "top of the books:" in out
    assert "What runs: turbo-dex" in out  # says what the user is looking at, before and after
    screen = re.search(r"Watch it live in a browser: (http://127\.0\.0\.1:\d+)/ ", out)  # printed before the traders start
    assert screen and out.index(screen.group(0)) < out.index("top of the books:"), out[:2000]
    assert "rejected, by reason" in out or "cancelled, by reason" in out
    assert "Authentication is on (--auth keys)" in out  # the demo runs as a user should: every trader signs
    assert "an order sent without a key, as 'mallory': refused: UNAUTHENTICATED: missing_credentials" in out
    assert "Next (README.md" in out and "make dex-trader" in out
    for symbol in ("BTC-USD", "ETH-USD", "SOL-USD"):
        assert symbol in out
    stopped = re.search(r"turbo-dex pid (\d+) stopped \(exit code 0\)", out)
    assert stopped, out[-2000:]
    assert not Path(f"/proc/{stopped.group(1)}").exists()  # gone, not left running


def test_engine_only_demo_still_runs():
    done = subprocess.run(
        [sys.executable, "-m", "traders.demo", "--engine-only", "--seconds", "0.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "state hash" in done.stdout
