"""``dex-trader`` keeps its results when its server dies mid-run, on every wire.

A real server process (one wire of the registry, ``tests/hostile/venue.py``)
is killed with SIGKILL while ``dex-trader`` trades with it. The harness must
end the run within seconds (not at its request timeout, 30 s), print and
write its JSON with what it counted and an ``error``, and exit 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.support import Venue
from transports.nats.settings import URL_ENV as NATS_URL_ENV
from transports.registry import make_client, wired

ROOT = Path(__file__).resolve().parents[2]
DEX_TRADER = Path(sys.executable).parent / "dex-trader"
WIRES = wired()  # every registered transport with a wire
PROMPT_S = 15.0  # from the kill to dex-trader's exit; it waited for its 30 s request timeout before


async def wait_for_orders(wire: str, url: str, trader: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until the server has applied commands (dex-trader started, connected and is trading); bounded."""
    deadline = time.monotonic() + timeout
    async with make_client(wire, "observer", url) as client:
        while time.monotonic() < deadline and trader.poll() is None:
            commands = (await client.stats()).get("commands", {})
            if isinstance(commands, dict) and sum(int(v) for v in commands.values()) >= 200:  # 20 batches
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"dex-trader sent nothing within {timeout:g}s (exit code {trader.poll()})")


@pytest.fixture
def broker_env(request: pytest.FixtureRequest, wire: str) -> dict[str, str]:
    """What the wire's server needs in its environment: the session's broker (a missing one fails)."""
    if wire == "nats":
        return {NATS_URL_ENV: str(request.getfixturevalue("nats_url"))}
    if wire == "amqp":
        request.getfixturevalue("rabbitmq_broker")  # sets $DEX_AMQP_URL for the processes started here
    return {}


@pytest.fixture(params=WIRES)
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_server_killed_mid_run_leaves_the_counts_and_the_error(wire: str, broker_env: dict[str, str], tmp_path: Path) -> None:
    os.environ.update(broker_env)
    try:
        server = Venue(wire, tmp_path / "server").start(timeout=60)
    finally:
        for key in broker_env:
            os.environ.pop(key, None)
    out = tmp_path / "run.json"
    command = [str(DEX_TRADER)] if DEX_TRADER.exists() else [sys.executable, "-m", "traders.harness"]
    options = (
        "--transport", wire, "--server", server.url, "--workers", "2", "--batch", "10", "--rate", "2000",
        "--duration", "60s", "--warmup", "0s", "--symbols", "BTC-USD", "--quiet", "--json", str(out),
    )  # fmt: skip
    trader = subprocess.Popen([*command, *options], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        asyncio.run(wait_for_orders(wire, server.url, trader))
        time.sleep(1.5)  # trading for a while
        assert trader.poll() is None, trader.communicate()
        os.kill(server.pid, signal.SIGKILL)
        killed = time.monotonic()
        try:
            stdout, stderr = trader.communicate(timeout=PROMPT_S + 15)
        except subprocess.TimeoutExpired:
            trader.kill()
            stdout, stderr = trader.communicate()
        took = time.monotonic() - killed
    finally:
        if trader.poll() is None:
            trader.kill()
            trader.wait()
        server.stop()
    assert trader.returncode == 2, (trader.returncode, stdout, stderr)
    assert took < PROMPT_S, f"dex-trader took {took:.1f}s to notice its server died"
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr  # one line says what happened
    assert "unreachable during the run" in stderr, stderr
    report = json.loads(out.read_text())
    assert report["error"], report
    assert report["total"]["sent"] > 0 and report["total"]["accepted"] > 0, (report["total"], report["error"])
    assert report["orders_sent"] == report["total"]["sent"]  # no warm-up: every answered command is measured
    assert report["reconciliation"]["ok"] is False and report["reconciliation"]["skipped"]
