"""Interop with real Grenache: two ``grenache-grape`` nodes, and a Node.js ``grenache-nodejs-http`` client.

Real processes on loopback (npm packages installed by ``make setup`` into
tests/interop/grenache/node_modules): two Grapes bootstrapped to each other;
two dex-nodes (one replica group) announce ``dex:exchange`` to different
Grapes; a lookup on either Grape finds both; the Node.js client, knowing only
a Grape, places orders on our nodes (plain and gzip-compressed requests) and
they trade with an order placed through our own client; both nodes end with
the same state hash. A bad Grenache request gets a Grenache error reply.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine import OrderAccepted, PlaceOrder, Side
from transports.dht.client import DhtClient
from transports.dht.discovery import grape_lookup
from transports.dht.local import LocalCluster
from transports.dht.node import free_tcp_port

INTEROP = Path(__file__).resolve().parents[2] / "interop" / "grenache"
MODULES = INTEROP / "node_modules"
SYM = "BTC-USD"


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def grapes(tmp_path: Path) -> Iterator[list[str]]:
    node = shutil.which("node")
    assert node, "node (v20) is needed for the Grenache interop test"
    assert (MODULES / "grenache-grape").is_dir(), "npm packages missing: run `make setup` (npm ci in tests/interop/grenache)"
    dht = [_free_udp_port(), _free_udp_port()]
    api = [free_tcp_port(), free_tcp_port()]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(2):
            args = [node, str(MODULES / "grenache-grape" / "bin" / "grape.js"), "--dp", str(dht[i]), "--aph", str(api[i])]
            args += ["--bn", f"127.0.0.1:{dht[1 - i]}", "--b", "127.0.0.1"]
            log = (tmp_path / f"grape{i}.log").open("wb")
            procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        urls = [f"http://127.0.0.1:{port}" for port in api]
        deadline = time.monotonic() + 20
        for url in urls:
            while True:
                try:
                    httpx.post(url + "/lookup", json={"data": "nothing"}, timeout=2)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, f"grape at {url} did not start"
                    time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _js(grape: str, trader: str, commands: list[dict[str, str]], compress: bool = False) -> dict:  # type: ignore[type-arg]
    args = ["node", str(INTEROP / "place_orders.js"), grape, trader, json.dumps(commands)] + (["compress"] if compress else [])
    out = subprocess.run(args, capture_output=True, timeout=40, cwd=INTEROP, check=False)
    lines = out.stdout.decode().strip().splitlines()
    assert lines, f"no output from the Node.js client: {out.stderr.decode()[-2000:]}"
    result: dict = json.loads(lines[-1])  # type: ignore[type-arg]
    return result


def test_a_nodejs_grenache_client_trades_on_our_nodes_found_through_real_grapes(tmp_path: Path, grapes: list[str]) -> None:
    cluster = LocalCluster(tmp_path, 2, SYM, dht=False)
    with cluster:
        for i in range(2):
            cluster.extra = ("--grape", grapes[i])
            cluster.start(i)
        cluster.owner()
        ours = {n.url.removeprefix("dht://") for n in cluster.live()}

        async def lookup_until_found() -> set[str]:
            found: set[str] = set()
            for _ in range(60):
                found = set(await grape_lookup(grapes[0])) & set(await grape_lookup(grapes[1]))
                if ours <= found:
                    break
                await asyncio.sleep(0.5)
            return found

        assert ours <= asyncio.run(lookup_until_found()), "both Grapes find both nodes"

        async def carol_sells() -> int:
            async with DhtClient("carol", cluster.url) as carol:
                events = (await carol.submit([PlaceOrder("", "c1", SYM, Side.SELL, 3, 3_000_000)]))[0]
                return next(e for e in events if isinstance(e, OrderAccepted)).order_id

        carol_id = asyncio.run(carol_sells())
        buy = {"type": "place", "client_order_id": "js1", "symbol": SYM, "side": "buy", "qty": "0.0001", "price": "30000.00"}
        plain = _js(grapes[1], "alice", [buy])
        assert plain["ok"], plain
        events = plain["result"][0]
        assert [e["type"] for e in events][:1] == ["accepted"]
        trades = [e for e in events if e["type"] == "trade"]
        assert len(trades) == 1 and trades[0]["maker_order_id"] == carol_id

        zipped = _js(grapes[0], "bob", [{**buy, "client_order_id": "js2", "qty": "0.0002"}], compress=True)
        assert zipped["ok"], zipped
        assert sum(1 for e in zipped["result"][0] if e["type"] == "trade") == 1

        again = _js(grapes[0], "bob", [{**buy, "client_order_id": "js3"}])  # Carol's 3 lots are gone: it rests
        assert again["ok"] and not [e for e in again["result"][0] if e["type"] == "trade"]

        bad = _js(grapes[0], "bob", [{"type": "place", "symbol": "NOPE-USD"}])
        assert not bad["ok"] and "ERR_" in bad["error"]

        view = cluster.converged(20)
        assert all(n.cluster()["state_hash"] == view["state_hash"] for n in cluster.live())
