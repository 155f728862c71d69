"""``scripts/auto-cluster.sh``: N ``nats-auto`` nodes on this machine, organising themselves.

Starts its own NATS (one server, or with ``--nats-cluster`` three servers on
loopback ports with explicit routes, unique names and ``sync_interval:
always``, streams with 3 replicas), then N nodes (``--mode auto``: every node
a replica, a lease candidate and a trader), and prints their lines prefixed
with the node name for ``--duration`` seconds (0: until Ctrl-C / SIGTERM).
Then it stops every node by its PID, audits the streams while its NATS still
runs, stops NATS, and prints a summary. The logs and NATS data go to a
temporary folder that is removed at exit (``--workdir`` or ``--keep``: kept).

Ctrl-C: ``auto-cluster.sh`` runs this in a session of its own and turns the
terminal's SIGINT into one SIGTERM to this process, so the nodes and NATS
are stopped in order (a SIGINT to the whole group would stop NATS before the
audit). Run directly, a SIGINT that already stopped NATS skips the audit
with a one-line reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from transports.instruments import select_instruments
from transports.nats.audit import AuditReport, audit
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.local import NatsServerProcess, cluster, start_cluster
from transports.nats.nodes import NodeProcess

_TRADER_LINE = re.compile(r"Orders: (\d+) \| Rate: \S+ \| Accepted: (\d+)")
_LEADER_LINE = re.compile(r"Leader: (\S+) is the leader")


async def _follow(nodes: Sequence[NodeProcess], seconds: float, stop: asyncio.Event) -> None:
    offsets = dict.fromkeys((n.name for n in nodes), 0)
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    while not stop.is_set() and time.monotonic() < deadline:
        for node in nodes:
            text = node.log()
            for line in text[offsets[node.name] :].splitlines():
                print(f"[{node.name}] {line}", flush=True)
            offsets[node.name] = len(text)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), min(0.5, max(0.0, deadline - time.monotonic())))


def _start_nats(workdir: Path, nats_cluster: bool) -> tuple[list[NatsServerProcess], str]:
    if nats_cluster:
        servers = cluster(workdir / "nats")
        start_cluster(servers)
        url = ",".join(s.url for s in servers)
        print(f"NATS cluster of 3 on {url} (routes explicit, sync_interval always)", flush=True)
        return servers, url
    server = NatsServerProcess(workdir / "nats").start()
    print(f"NATS (JetStream) at {server.url}, pid {server.pid}", flush=True)
    return [server], server.url


async def _audit(servers: Sequence[NatsServerProcess]) -> tuple[AuditReport | None, str]:
    """The audit of the streams, or why there is none (never an exception: this runs on the way out)."""
    gone = [s for s in servers if s.process is None or s.process.poll() is not None]
    if gone:
        return None, f"skipped: NATS (pid {gone[0].pid}) had already stopped (a Ctrl-C sent to it too)"
    try:
        nc = await connect(servers[0].url, "auto-cluster audit", ConnectionErrors())
    except Exception as exc:  # NotConnected and the client's own errors: all mean "no audit"
        return None, f"skipped: {exc}"
    try:
        report, _, _ = await audit(nc.jetstream(), select_instruments(""))
    except Exception as exc:
        return None, f"failed: {exc}"
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    return report, "ok" if report.ok else f"PROBLEMS: {report.problems}"


def summary(nodes: Sequence[NodeProcess], seconds: float, report: AuditReport | None, verdict: str) -> list[str]:
    """What the run did, from the nodes' own last lines and the audit."""
    sent = accepted = 0
    leaders: list[str] = []
    for node in nodes:
        text = node.log()
        last = _TRADER_LINE.findall(text)
        if last:
            sent += int(last[-1][0])
            accepted += int(last[-1][1])
        leaders += _LEADER_LINE.findall(text)
    plural = "s" if len(leaders) > 1 else ""
    elected = f"{len(leaders)} leader election{plural} ({', '.join(dict.fromkeys(leaders))})" if leaders else "no leader elected"
    lines = [f"auto-cluster summary: {len(nodes)} nodes for {seconds:.0f} s; {elected}; traders sent {sent} orders, {accepted} accepted"]
    if report is not None:
        lines.append(
            f"auto-cluster summary: audit {verdict}: {report.inputs} inputs, {report.results} results, "
            f"{report.trades} engine trades, replay hash {report.replay_hash[:16]}"
        )
    else:
        lines.append(f"auto-cluster summary: audit {verdict}")
    return lines


async def run(count: int, seconds: float, nats_cluster: bool, lease_ttl: float, rate: float, workdir: Path) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    began = time.monotonic()
    servers: list[NatsServerProcess] = []
    nodes: list[NodeProcess] = []
    try:
        servers, url = _start_nats(workdir, nats_cluster)
        extra = ("--traders", "2", "--rate", str(rate), "--replicas", "3" if nats_cluster else "1")
        for i in range(count):
            if stop.is_set():
                break
            nodes.append(NodeProcess(f"node{i + 1}", url, workdir, lease_ttl=lease_ttl, mode="auto", extra=extra).start())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.3)
        await _follow(nodes, seconds, stop)
    finally:
        for node in nodes:
            node.stop()
        report, verdict = await _audit(servers) if servers else (None, "skipped: NATS did not start")
        for server in servers:
            server.stop()
        for line in summary(nodes, time.monotonic() - began, report, verdict):
            print(line, flush=True)
    return 0 if report is None or report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="auto-cluster.sh", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("nodes", nargs="?", type=int, default=5)
    p.add_argument("--nats-cluster", action="store_true", help="3 NATS servers (routes, replicas 3) instead of one")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to run (0 = until Ctrl-C; default 30)")
    p.add_argument("--lease-ttl", type=float, default=15.0)
    p.add_argument("--rate", type=float, default=100.0, help="commands/s per node")
    p.add_argument("--workdir", type=Path, default=None, help="logs and NATS data, kept (default: a temp dir, removed at exit)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir of logs and NATS data")
    a = p.parse_args(argv)
    if a.nodes < 1:
        p.error("at least one node")
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="dex-auto-cluster-"))
    remove = a.workdir is None and not a.keep
    print(f"logs in {workdir}" + (" (removed at exit; --keep keeps them)" if remove else ""), flush=True)
    try:
        return asyncio.run(run(a.nodes, a.duration, a.nats_cluster, a.lease_ttl, a.rate, workdir))
    finally:
        if remove:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
