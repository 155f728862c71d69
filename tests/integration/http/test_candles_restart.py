"""Candles survive a restart of a real ``turbo-dex`` process on the same state directory, equal to before.

Trade times come from the journal's clock records (the whole journal replayed)
or from the snapshot's market frame plus the journal's tail (with snapshots
every few commands), after a clean SIGTERM and after kill -9.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.http.test_public_market import as_numbers, recompute
from transports.core.candles import INTERVALS

TURBO_DEX = Path(sys.executable).with_name("turbo-dex")
SYMBOL = "BTC-USD"


class Process:
    """One ``turbo-dex`` on a free port; stopped by PID."""

    def __init__(self, state_dir: Path, *args: str) -> None:
        self.log = state_dir.parent / f"turbo-dex-{time.monotonic_ns()}.log"
        with self.log.open("wb") as out:
            command = [str(TURBO_DEX), "--port", "0", "--log-level", "warning", "--state-dir", str(state_dir), *args]
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            match = re.search(r"listening on (http://\S+)", self.log.read_text())
            if match:
                self.url = match.group(1)
                return
            time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise AssertionError(f"turbo-dex did not start: {self.log.read_text()}")

    def stop(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(20)


@pytest.fixture
def started() -> Iterator[list[Process]]:
    processes: list[Process] = []
    yield processes
    for process in processes:
        process.stop(signal.SIGKILL)


def trade_a_while(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for i in range(30):
            price, qty = f"{30000 + (i * 53) % 300}.00", f"0.{1 + i % 7}"
            for trader, side in (("alice", "sell"), ("bob", "buy")):
                response = http.post(
                    "/orders", json={"symbol": SYMBOL, "side": side, "price": price, "qty": qty}, headers={"X-Trader": trader}
                )
                assert response.status_code == 200, response.text
            if i % 10 == 9:
                time.sleep(0.3)  # groups at a few different times


def market_view(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=10) as http:
        view = {name: http.get(f"/candles/{SYMBOL}", params={"interval": name}).json() for name in INTERVALS}
        view["trades"] = http.get(f"/trades/{SYMBOL}", params={"limit": 1000}).json()
        ticker = http.get(f"/ticker/{SYMBOL}").json()
        view["ticker"] = {k: v for k, v in ticker.items() if k != "time"}
        return view


@pytest.mark.parametrize(
    ("how", "args"),
    [("sigterm", ()), ("kill -9, snapshots every 7 commands", ("--snapshot-every", "7"))],
)
def test_candles_after_a_restart_equal_candles_before_it(tmp_path: Path, started: list[Process], how: str, args: tuple[str, ...]) -> None:
    state = tmp_path / "state"
    first = Process(state, *args)
    started.append(first)
    trade_a_while(first.url)
    before = market_view(first.url)
    assert len(before["trades"]["trades"]) == 30 and before["1m"]["candles"]
    first.stop(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    if args:
        assert (state / "turbo-dex.journal.snapshot").exists()  # the candles came back from a snapshot and a tail

    second = Process(state, *args)
    started.append(second)
    assert market_view(second.url) == before
    trade_a_while(second.url)  # the restored candles go on folding trades: equal to the whole history recomputed
    after = market_view(second.url)
    trades = after["trades"]["trades"]
    assert len(trades) == 60
    for name, width in INTERVALS.items():
        assert as_numbers(after[name]["candles"]) == recompute(trades, width), name
