"""``nats-auto`` nodes as subprocesses on this machine (auto-cluster, benchmarks, fault tests).

A ``NodeProcess`` runs one ``nats-auto`` with its output in a log file and is
stopped or signalled by its own PID only. With no URL the node runs its own
nats-server and joins the others found in its ``--beacon-dir`` (pass it, and
a ``--data-dir``, in ``extra``: a test's nodes must not meet a user's).
``node_state`` asks a node for its
replica state over NATS (``dex.node.<NAME>.state``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from nats.aio.client import Client

from transports.core.local_server import terminate
from transports.nats.settings import URL_ENV, Subjects


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
