"""A RabbitMQ node of our own, started without systemd: for tests, benchmarks, demos and ``scripts/rabbitmq.sh``.

::

    with LocalRabbitMQ() as broker:          # ~7 s: start ONE per test session
        print(broker.url)                    # amqp://guest:guest@127.0.0.1:<port>/
        broker.restart()                     # same node, same ports, same data (durable queues survive)

Invariants:

* Everything the node writes lives in its own ``workdir`` (a fresh temporary
  directory unless one is given): ``RABBITMQ_MNESIA_BASE``, ``RABBITMQ_LOG_BASE``,
  ``RABBITMQ_PID_FILE``, the config and enabled-plugins files, the Erlang
  cookie (``HOME`` is the workdir for both the server and ``rabbitmqctl``, so
  they always agree on the cookie, never touching ``/var/lib/rabbitmq``).
* The node name is unique per instance (``dex-<pid>-<n>@localhost``); AMQP,
  Erlang distribution and epmd each get a free port chosen at run time, all
  bound to 127.0.0.1. The epmd is our own (private port), started before the
  node and ended by its PID with the node, so no other node is ever affected.
* ``start`` returns once ``rabbitmqctl wait <pidfile>`` says the broker app
  runs. ``stop`` asks ``rabbitmqctl shutdown``; if that fails or times out, the
  process group we started is killed (SIGTERM, then SIGKILL). Only PIDs we
  started are ever signalled.
* The scripts under ``/usr/lib/rabbitmq/bin`` are used directly: Debian's
  ``/usr/sbin`` wrappers switch to the ``rabbitmq`` user, which could not
  write our workdir.

``python -m transports.amqp.broker start|stop|status --dir DIR`` runs a
detached node whose state (ports, node name, PIDs) is kept in ``DIR/broker.json``
(``scripts/rabbitmq.sh`` is a thin wrapper).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from transports.core.limits import ConnectionLimits, Limits
from transports.core.pids import pid_alive

RABBITMQ_BIN = Path(os.environ.get("DEX_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
_instances = itertools.count(1)


class BrokerError(RuntimeError):
    """RabbitMQ is not installed, did not start in time, or exited."""


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def installed() -> bool:
    """Whether the RabbitMQ server scripts and Erlang's epmd are on this machine."""
    return (RABBITMQ_BIN / "rabbitmq-server").exists() and shutil.which("epmd") is not None


@dataclass(slots=True)
class BrokerState:
    """What identifies a running node: enough to reach it and to stop it from another process."""

    workdir: str
    nodename: str
    port: int
    dist_port: int
    epmd_port: int
    management_port: int  # 0: management plugin off
    server_pid: int = 0  # the process group leader we started (rabbitmq-server)
    epmd_pid: int = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}/"


class LocalRabbitMQ:
    """One RabbitMQ node in a subprocess; see the module docstring."""

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        port: int = 0,
        management: bool = False,
        management_port: int = 0,
        nodename: str | None = None,
    ) -> None:
        if not installed():
            raise BrokerError(f"RabbitMQ is not installed (no {RABBITMQ_BIN}/rabbitmq-server or no epmd): run `make setup`")
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="dex-rabbitmq-")
        root = Path(workdir) if workdir is not None else Path(self._tmp.name if self._tmp else ".")
        self.workdir = root.resolve()
        self.state = BrokerState(
            workdir=str(self.workdir),
            nodename=nodename or f"dex-{os.getpid()}-{next(_instances)}@localhost",
            port=port or free_port(),
            dist_port=free_port(),
            epmd_port=free_port(),
            management_port=(management_port or free_port()) if management else 0,
        )
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None

    # ---------------------------------------------------------------- paths
    @property
    def url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:<port>/`` (guest may log in from loopback only)."""
        return self.state.url

    @property
    def management_url(self) -> str | None:
        return f"http://{HOST}:{self.state.management_port}/" if self.state.management_port else None

    @property
    def pidfile(self) -> Path:
        return self.workdir / "rabbit.pid"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "log"

    @property
    def pid(self) -> int:
        return self.state.server_pid

    def env(self) -> dict[str, str]:
        """The environment of ``rabbitmq-server`` and ``rabbitmqctl`` for this node."""
        s = self.state
        env = dict(os.environ)
        env.update(
            HOME=str(self.workdir),  # the Erlang cookie: $HOME/.erlang.cookie, for the server and rabbitmqctl alike
            RABBITMQ_NODENAME=s.nodename,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(s.port),
            RABBITMQ_DIST_PORT=str(s.dist_port),
            ERL_EPMD_ADDRESS=HOST,
            ERL_EPMD_PORT=str(s.epmd_port),
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_PID_FILE=str(self.pidfile),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.workdir / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_LOGS=str(self.log_dir / "rabbit.log"),
            ERL_CRASH_DUMP=str(self.log_dir / "erl_crash.dump"),
            LC_ALL="C.UTF-8",
            # Erlang schedulers spin while idle by default: on a small shared machine that spinning takes
            # the cores the exchange server and the traders need. Sleep instead.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none",
        )
        env.pop("RABBITMQ_ERLANG_COOKIE", None)  # deprecated; the cookie file decides
        return env

    def _prepare(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cookie = self.workdir / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            cookie.chmod(0o400)
        s = self.state
        conf = [
            f"listeners.tcp.default = {HOST}:{s.port}",
            "loopback_users.guest = true",
            "disk_free_limit.absolute = 50MB",  # a shared CI disk must not block publishers
            "log.console = false",
            "log.file.level = info",
            # The broker is the connection server here: its limits are ours (docs/limits.md).
            f"max_message_size = {Limits().max_broker_message_bytes}",  # the largest allowed batch, or its reply
            f"connection_max = {ConnectionLimits().max_connections}",
            "channel_max = 128",
            "frame_max = 131072",
        ]
        plugins = "[]."
        if s.management_port:
            conf += [f"management.tcp.ip = {HOST}", f"management.tcp.port = {s.management_port}"]
            plugins = "[rabbitmq_management]."
        (self.workdir / "rabbitmq.conf").write_text("\n".join(conf) + "\n")
        (self.workdir / "enabled_plugins").write_text(plugins + "\n")
        (self.workdir / "rabbitmq-env.conf").write_text("# empty on purpose: the environment set by LocalRabbitMQ rules\n")
        (self.workdir / "advanced.config").write_text("[].\n")

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n <node> ARGS`` against this node."""
        return subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.state.nodename, *args],
            env=self.env(),
            cwd=self.workdir,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = START_TIMEOUT_S) -> Self:
        """Start epmd and the node; returns when the broker accepts AMQP connections."""
        if self.running():
            return self
        self._prepare()
        self.pidfile.unlink(missing_ok=True)
        env = self.env()
        if not pid_alive(self.state.epmd_pid):  # after kill() our epmd still runs: keep it
            epmd = shutil.which("epmd") or "epmd"
            with (self.log_dir / "epmd.log").open("ab") as log:
                self._epmd = subprocess.Popen(
                    [epmd, "-address", HOST, "-port", str(self.state.epmd_port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            self.state.epmd_pid = self._epmd.pid
        with (self.log_dir / "server.out").open("ab") as log:
            self._server = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                start_new_session=True,  # its own process group: the fallback kill reaches beam and its helpers only
            )
        self.state.server_pid = self._server.pid
        deadline = time.monotonic() + timeout
        try:
            while True:  # `rabbitmqctl wait` is bounded by its own timeout; retried while time is left
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerError(f"RabbitMQ did not start within {timeout:g}s:\n{self.log_tail()}")
                if not pid_alive(self.state.server_pid):
                    raise BrokerError(f"rabbitmq-server exited:\n{self.log_tail()}")
                try:
                    done = self.ctl("wait", "--timeout", str(max(1, int(left))), str(self.pidfile), timeout=left + 10)
                except subprocess.TimeoutExpired:
                    continue
                if done.returncode == 0 and self._accepts_connections():
                    return self
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection((HOST, self.state.port), timeout=2.0):
                return True
        except OSError:
            return False

    def running(self) -> bool:
        return pid_alive(self.state.server_pid)

    def status(self) -> bool:
        """Whether the node answers ``rabbitmqctl status`` (the app may still be booting)."""
        if not self.running():
            return False
        try:
            return self.ctl("status", timeout=20).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Shut the node down (``rabbitmqctl shutdown``, else kill its process group), then our epmd."""
        pid = self.state.server_pid
        if pid and pid_alive(pid):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.ctl("shutdown", "--timeout", str(int(timeout)), timeout=timeout + 5)
            self._wait_gone(pid, 5.0)
            if pid_alive(pid):
                self._kill_group(pid, signal.SIGTERM)
                if not self._wait_gone(pid, 10.0):
                    self._kill_group(pid, signal.SIGKILL)
                    self._wait_gone(pid, 5.0)
        epmd_pid = self.state.epmd_pid
        if epmd_pid and pid_alive(epmd_pid):
            # Our epmd only ever served this node: end it by its PID (no `epmd -kill` needed).
            os.kill(epmd_pid, signal.SIGTERM)
            self._wait_gone(epmd_pid, 5.0)
        self._reap()
        self.state.server_pid = 0
        self.state.epmd_pid = 0

    def kill(self) -> None:
        """SIGKILL the node (its process group) without a clean shutdown: a crash, for fault tests."""
        pid = self.state.server_pid
        if pid and pid_alive(pid):
            self._kill_group(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self._reap()

    def restart(self, timeout: float = START_TIMEOUT_S) -> Self:
        """Stop and start the same node (same name, ports and data directory)."""
        self.stop()
        return self.start(timeout)

    def _reap(self) -> None:
        for process in (self._server, self._epmd):
            if process is not None and process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(1.0)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            for process in (self._server, self._epmd):
                if process is not None and process.pid == pid:
                    process.poll()  # reap our child so it stops being a zombie
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    @staticmethod
    def _kill_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # the group we created with start_new_session: the node and its helpers

    def close(self) -> None:
        """Stop, and remove the workdir if it was a temporary one."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def log_tail(self, lines: int = 40) -> str:
        out: list[str] = []
        for name in ("server.out", "rabbit.log"):
            try:
                out += (self.log_dir / name).read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
        return "\n".join(out[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ----------------------------------------------- detached (for the script)
    def save(self) -> None:
        (self.workdir / "broker.json").write_text(json.dumps(asdict(self.state), indent=2) + "\n")

    @classmethod
    def load(cls, workdir: str | Path) -> LocalRabbitMQ:
        """The node whose state ``save`` wrote in ``workdir`` (it may have stopped since)."""
        data = json.loads((Path(workdir) / "broker.json").read_text())
        broker = cls.__new__(cls)
        broker._tmp = None
        broker.workdir = Path(workdir).resolve()
        broker.state = BrokerState(**data)
        broker._server = None
        broker._epmd = None
        return broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rabbitmq.sh", description="A local RabbitMQ node of our own (no systemd), bound to 127.0.0.1.")
    parser.add_argument("action", choices=["start", "stop", "status", "url"])
    parser.add_argument(
        "--dir", default=os.environ.get("DEX_RABBITMQ_DIR", "var/rabbitmq"), help="node data, logs and state (default var/rabbitmq)"
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEX_RABBITMQ_PORT", "5672")), help="AMQP port (0 = a free one)")
    parser.add_argument("--management", action="store_true", help="enable the management plugin on a free port")
    args = parser.parse_args(argv)
    workdir = Path(args.dir)
    known = (workdir / "broker.json").exists()
    if args.action == "start":
        if known and LocalRabbitMQ.load(workdir).running():
            print(f"RabbitMQ already running: {LocalRabbitMQ.load(workdir).url}")
            return 0
        workdir.mkdir(parents=True, exist_ok=True)
        old = LocalRabbitMQ.load(workdir) if known else None
        # Keep the node name across restarts: its durable queues live under that name.
        broker = LocalRabbitMQ(workdir, port=args.port, management=args.management, nodename=old.state.nodename if old else "dex@localhost")
        try:
            broker.start()
        except BrokerError as exc:
            print(exc, file=sys.stderr)
            return 1
        broker.save()
        print(f"RabbitMQ listening on {broker.url} (node {broker.state.nodename}, pid {broker.pid}, logs {broker.log_dir})")
        if broker.management_url:
            print(f"management UI: {broker.management_url}")
        return 0
    if not known:
        print(f"no RabbitMQ started from {workdir}", file=sys.stderr)
        return 1 if args.action != "stop" else 0
    broker = LocalRabbitMQ.load(workdir)
    if args.action == "stop":
        broker.stop()
        print("RabbitMQ stopped")
        return 0
    if args.action == "url":
        print(broker.url)
        return 0 if broker.running() else 1
    alive = broker.status()
    print(f"RabbitMQ {'running' if alive else 'not running'}: {broker.url} (node {broker.state.nodename})")
    return 0 if alive else 3


if __name__ == "__main__":
    sys.exit(main())
