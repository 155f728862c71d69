"""``scripts/auto-cluster.sh``: N ``nats-auto`` nodes on this machine, organising themselves.

Starts its own NATS (one server, or with ``--nats-cluster`` three servers on
loopback ports with explicit routes, unique names and ``sync_interval:
always``, streams with 3 replicas), then N nodes (``--mode auto``: every node
a replica, a lease candidate and a trader), and prints their lines prefixed
with the node name for ``--duration`` seconds (or until Ctrl-C). Then it
stops every node and server it started, by PID, and audits the streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from transports.instruments import select_instruments
from transports.nats.audit import audit
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.local import NatsServerProcess, cluster, start_cluster
from transports.nats.nodes import NodeProcess


async def _follow(nodes: Sequence[NodeProcess], seconds: float) -> None:
    offsets = dict.fromkeys((n.name for n in nodes), 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    while not stop.is_set() and time.monotonic() < deadline:
        for node in nodes:
            text = node.log()
            for line in text[offsets[node.name] :].splitlines():
                print(f"[{node.name}] {line}", flush=True)
            offsets[node.name] = len(text)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def run(count: int, seconds: float, nats_cluster: bool, lease_ttl: float, rate: float, workdir: Path) -> int:
    servers: list[NatsServerProcess] = []
    nodes: list[NodeProcess] = []
    try:
        if nats_cluster:
            servers = cluster(workdir / "nats")
            start_cluster(servers)
            url = ",".join(s.url for s in servers)
            print(f"NATS cluster of 3 on {url} (routes explicit, sync_interval always)", flush=True)
        else:
            servers = [NatsServerProcess(workdir / "nats").start()]
            url = servers[0].url
            print(f"NATS (JetStream) at {url}, pid {servers[0].pid}", flush=True)
        extra = ("--traders", "2", "--rate", str(rate), "--replicas", "3" if nats_cluster else "1")
        for i in range(count):
            nodes.append(NodeProcess(f"node{i + 1}", url, workdir, lease_ttl=lease_ttl, mode="auto", extra=extra).start())
            await asyncio.sleep(0.3)
        await _follow(nodes, seconds)
    finally:
        for node in nodes:
            node.stop()
        if servers:
            nc = await connect(servers[0].url, "auto-cluster audit", ConnectionErrors())
            try:
                report, _, _ = await audit(nc.jetstream(), select_instruments(""))
                verdict = "ok" if report.ok else f"PROBLEMS: {report.problems}"
                print(f"audit: {report.inputs} inputs, {report.results} results, {report.trades} engine trades, replay hash ", end="")
                print(f"{report.replay_hash[:16]}: {verdict}", flush=True)
            except Exception as exc:
                print(f"audit failed: {exc}", flush=True)
            finally:
                await nc.close()
        for server in servers:
            server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="auto-cluster.sh", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("nodes", nargs="?", type=int, default=5)
    p.add_argument("--nats-cluster", action="store_true", help="3 NATS servers (routes, replicas 3) instead of one")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to run (0 = until Ctrl-C; default 30)")
    p.add_argument("--lease-ttl", type=float, default=15.0)
    p.add_argument("--rate", type=float, default=100.0, help="commands/s per node")
    p.add_argument("--workdir", type=Path, default=None, help="logs and NATS data (default: a temp dir)")
    a = p.parse_args(argv)
    if a.nodes < 1:
        p.error("at least one node")
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="dex-auto-cluster-"))
    print(f"logs in {workdir}", flush=True)
    return asyncio.run(run(a.nodes, a.duration, a.nats_cluster, a.lease_ttl, a.rate, workdir))


if __name__ == "__main__":
    raise SystemExit(main())
