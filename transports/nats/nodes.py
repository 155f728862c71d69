"""``nats-auto`` nodes as subprocesses on this machine (auto-cluster, benchmarks, fault tests).

A ``NodeProcess`` runs one ``nats-auto`` with its output in a log file and is
stopped or signalled by its own PID only. With no URL the node runs its own
nats-server and joins the others found in its ``--beacon-dir`` (pass it, and
a ``--data-dir``, in ``extra``: a test's nodes must not meet a user's).
``node_state`` asks a node for its
replica state over NATS (``dex.node.<NAME>.state``). ``mesh_node`` is a
node of a private mesh under one work folder; ``routes_complete`` and
``current_replicas`` say when such a mesh is whole again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from nats.aio.client import Client

from transports.core.local_server import terminate
from transports.nats.mesh import live_beacons, routed_servers
from transports.nats.settings import LEASE_BUCKET, ORDERS_STREAM, RESULTS_STREAM, URL_ENV, Subjects


def nats_auto_command() -> list[str]:
    beside = Path(sys.executable).parent / "nats-auto"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "transports.nats.auto"]


class NodeProcess:
    def __init__(self, name: str, url: str, workdir: Path, *, lease_ttl: float, mode: str = "server", extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.url = url
        self.log_path = Path(workdir) / f"{name}.log"
        self.args = [
            *nats_auto_command(),
            "--mode",
            mode,
            *(("--nats", url, "--no-start-nats") if url else ()),
            "--name",
            name,
            "--lease-ttl",
            str(lease_ttl),
            "--stats-interval",
            "1",
            "--heartbeat",
            "0.5",
            "--log-level",
            "info",
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # With no URL the node starts its own server: a ``$DEX_NATS_URL`` inherited from a test would override that.
            env = {k: v for k, v in os.environ.items() if self.url or k != URL_ENV}
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a paused node must be able to act on SIGTERM
        terminate(process, timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


async def node_state(nc: Client, name: str, timeout: float = 1.0) -> dict[str, object] | None:
    """A node's replica state (None if it does not answer within ``timeout``)."""
    try:
        msg = await nc.request(Subjects().node_state(name), b"", timeout=timeout)
    except Exception:  # no responders (dead, paused) or timed out
        return None
    state: dict[str, object] = json.loads(msg.data)
    return state


async def leader_among(nc: Client, names: Sequence[str], timeout: float = 0.5) -> str:
    """The first of ``names`` that says it leads ("" if none answers so within ``timeout`` each)."""
    for name in names:
        state = await node_state(nc, name, timeout)
        if state is not None and state["leader"]:
            return name
    return ""


def mesh_node(name: str, workdir: Path, lease_ttl: float) -> NodeProcess:
    """A ``nats-auto --mode server`` node running its own nats-server, meeting only the nodes of ``workdir``."""
    extra = ("--beacon-dir", str(workdir / "beacons"), "--data-dir", str(workdir / "data"), "--traders", "0")
    return NodeProcess(name, "", workdir / "logs", lease_ttl=lease_ttl, mode="server", extra=extra)


def routes_complete(workdir: Path, names: Sequence[str]) -> bool:
    """Every node of ``names`` has a beacon in ``workdir`` and its nats-server is routed to every other one."""
    found = {b.name: b for b in live_beacons(workdir / "beacons")}
    if set(found) != set(names):
        return False
    servers = {b.server_name for b in found.values()}
    try:
        return all(routed_servers(b.monitor_url) == servers - {b.server_name} for b in found.values())
    except OSError:
        return False


async def current_replicas(nc: Client) -> set[int]:
    """The replica counts of the streams and the lease bucket, counting only replicas that are current (caught up)."""
    js = nc.jetstream()
    found = set()
    try:
        for stream in (ORDERS_STREAM, RESULTS_STREAM, f"KV_{LEASE_BUCKET}"):
            info = await js.stream_info(stream)
            followers = (info.cluster.replicas or []) if info.cluster is not None else []
            found.add(1 + sum(1 for r in followers if r.current and not r.offline))
    except Exception:  # not created yet, or a failover in progress
        return set()
    return found
