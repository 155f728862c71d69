"""The ``turbo-dex`` command as a process: start-up line, kill -9 under load, clean SIGTERM.

The crash test is the durability promise seen from outside: with
``--fsync batch`` a reply is sent only after its command is on disk, so every
order a client saw ``accepted`` is there, exactly once, after ``kill -9`` and
a restart on the same journal.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine import NotConnected, OrderAccepted, PlaceOrder, Side
from transports.http.client import HttpClient
from transports.instruments import DEFAULT_INSTRUMENTS

TURBO_DEX = Path(sys.executable).with_name("turbo-dex")
BTC = DEFAULT_INSTRUMENTS[0]


class TurboDex:
    """One ``turbo-dex`` process on a free port; stopped by PID."""

    def __init__(self, workdir: Path, *args: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = workdir / f"stdout-{time.monotonic_ns()}.log"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen([str(TURBO_DEX), "--port", "0", "--log-level", "warning", *args], stdout=out, stderr=err)
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", self.stdout_path.read_text())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"turbo-dex did not start: {self.stdout_path.read_text()} {self.stderr_path.read_text()}")

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(20)


@pytest.fixture
def processes() -> Iterator[list[TurboDex]]:
    started: list[TurboDex] = []
    yield started
    for process in started:
        process.kill()


def test_the_command_line_has_no_flags_that_do_nothing() -> None:
    out = subprocess.run([str(TURBO_DEX), "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--host", "--port", "--buffer", "--journal", "--no-journal", "--fsync", "--symbols", "--allow-admin", "--log-level"):
        assert flag in out
    assert "--shards" in out and "--fronts" in out  # real (docs/shards.md): -workers is the old spelling of --fronts
    bad = subprocess.run([str(TURBO_DEX), "--symbols", "BTC-USD,NOPE"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "unknown symbol(s) NOPE" in bad.stderr


def test_a_journal_it_cannot_replay_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    journal.write_bytes(b"not a journal at all")
    result = subprocess.run(
        [str(TURBO_DEX), "--port", "0", "--journal", str(journal)], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 1
    assert "turbo-dex: cannot start:" in result.stderr and "bad magic" in result.stderr
    assert "listening" not in result.stdout


def test_start_up_line_symbols_and_sigterm(tmp_path: Path, processes: list[TurboDex]) -> None:
    server = TurboDex(tmp_path, "--no-journal", "--symbols", "ETH-USD")
    processes.append(server)
    assert server.url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=server.url) as http:
        assert [i["symbol"] for i in http.get("/instruments").json()["instruments"]] == ["ETH-USD"]
    assert server.kill(signal.SIGTERM) == 0
    lines = server.stdout_path.read_text().splitlines()
    assert lines[0].startswith(f"turbo-dex listening on {server.url} (no journal; symbols ETH-USD;")
    assert lines[-1].startswith("turbo-dex stopped")


def _order(trader: str, n: int) -> PlaceOrder:
    """A resting order that never crosses: buys below 30000, sells above (all inside the 10% band)."""
    side = Side.BUY if n % 2 else Side.SELL
    ticks = BTC.parse_price("29000.00" if side is Side.BUY else "31000.00") + (n % 997) * (-1 if side is Side.BUY else 1)
    return PlaceOrder(trader, f"{trader}-{n}", BTC.symbol, side, BTC.parse_qty("0.0001") * (1 + n % 7), ticks)


async def _load_until_killed(url: str, server: TurboDex, kill_after: int) -> dict[int, tuple[str, str, int]]:
    """Three traders send batches until ``kill_after`` orders were accepted; then the server gets kill -9."""
    accepted: dict[int, tuple[str, str, int]] = {}  # order_id -> (trader, client_order_id, seq)

    async def trader_loop(trader: str) -> None:
        async with HttpClient(trader, url) as client:
            n = 0
            while True:
                batch = [_order(trader, n + k) for k in range(50)]
                n += len(batch)
                try:
                    replies = await client.submit(batch)
                except NotConnected:
                    return
                for events in replies:
                    for event in events:
                        if isinstance(event, OrderAccepted):
                            assert event.order_id not in accepted, "the engine gave out one order id twice"
                            accepted[event.order_id] = (trader, event.client_order_id, event.seq)

    async def killer() -> None:
        while len(accepted) < kill_after:
            await asyncio.sleep(0.001)
        server.kill(signal.SIGKILL)  # mid-load: other batches are in flight

    await asyncio.gather(killer(), *(trader_loop(t) for t in ("alice", "bob", "carol")))
    return accepted


@pytest.mark.slow
def test_every_accepted_order_survives_kill_9_exactly_once(tmp_path: Path, processes: list[TurboDex]) -> None:
    journal = tmp_path / "journal.log"
    first = TurboDex(tmp_path, "--journal", str(journal), "--fsync", "batch")
    processes.append(first)
    accepted = asyncio.run(_load_until_killed(first.url, first, kill_after=3000))
    assert first.proc.returncode == -signal.SIGKILL
    assert len(accepted) >= 3000

    second = TurboDex(tmp_path, "--journal", str(journal), "--fsync", "batch")
    processes.append(second)
    with httpx.Client(base_url=second.url, timeout=10) as http:
        stats = http.get("/stats").json()
        assert stats["engine_seq"] >= max(seq for _, _, seq in accepted.values())
        assert stats["recovered_commands"] >= len(accepted) + len(DEFAULT_INSTRUMENTS)
        assert [i["symbol"] for i in http.get("/instruments").json()["instruments"]] == [i.symbol for i in DEFAULT_INSTRUMENTS]

        open_by_trader: dict[str, list[dict[str, object]]] = {}
        for trader in ("alice", "bob", "carol"):
            orders = http.get("/orders", headers={"X-Trader": trader}).json()["orders"]
            client_ids = [o["client_order_id"] for o in orders]
            assert len(client_ids) == len(set(client_ids)), f"{trader} has an order twice"
            open_by_trader[trader] = orders
        all_ids = [o["order_id"] for orders in open_by_trader.values() for o in orders]
        assert len(all_ids) == len(set(all_ids))
        assert set(accepted) <= set(all_ids)

        for oid, (trader, client_order_id, _) in accepted.items():
            view = http.get(f"/orders/{oid}", headers={"X-Trader": trader})
            assert view.status_code == 200, (oid, view.text)
            assert (view.json()["client_order_id"], view.json()["status"]) == (client_order_id, "new")
        some_id, (owner, _, _) = next(iter(accepted.items()))
        stranger = "bob" if owner != "bob" else "alice"
        assert http.get(f"/orders/{some_id}", headers={"X-Trader": stranger}).status_code == 404
        before = (http.get("/stats").json()["engine_seq"], {t: http.get("/orders", headers={"X-Trader": t}).json() for t in open_by_trader})

    # A clean stop writes a checkpoint; the next start replays to the same state and verifies its hash.
    assert second.kill(signal.SIGTERM) == 0, second.output()
    third = TurboDex(tmp_path, "--journal", str(journal))
    processes.append(third)
    with httpx.Client(base_url=third.url, timeout=10) as http:
        after = (http.get("/stats").json()["engine_seq"], {t: http.get("/orders", headers={"X-Trader": t}).json() for t in open_by_trader})
    assert after == before
