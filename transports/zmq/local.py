"""A local ``dex-zmq`` in a subprocess, stopped by its PID: for ``make bench-zmq`` and the tests.

The server binds 127.0.0.1 on free ports (``--port 0 --pub-port 0``), journals
into the directory it is given, and writes its log to a file there. ``start``
returns once the start-up line names the URL; ``stop`` sends SIGTERM to that
one PID (a clean shutdown: replies flushed, journal fsynced and
checkpointed), then SIGKILL after a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

_LISTENING = re.compile(r"dex-zmq listening on (zmq://\S+) \(orders (\S+), market data (\S+?);")


class ServerStartError(RuntimeError):
    """dex-zmq is not installed, exited, or did not start in time."""


def dex_zmq_command() -> list[str]:
    """How to run dex-zmq: the console script next to this Python, else on PATH, else the module."""
    beside = Path(sys.executable).parent / "dex-zmq"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("dex-zmq")
    return [found] if found else [sys.executable, "-m", "transports.zmq.server"]


class LocalZmqServer:
    def __init__(self, workdir: str | Path, extra_args: tuple[str, ...] = (), host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        self.extra_args = extra_args
        self.host = host
        self.url = ""
        self.orders_endpoint = ""
        self.pub_endpoint = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "dex-zmq.log"
        self.journal_path = self.workdir / "journal.log"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self, timeout: float = 30.0) -> LocalZmqServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            *dex_zmq_command(),
            *("--host", self.host, "--port", "0", "--pub-port", "0", "--journal", str(self.journal_path)),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            match = _LISTENING.search(self.log_path.read_bytes()[offset:].decode(errors="replace"))
            if match:
                self.url, self.orders_endpoint, self.pub_endpoint = match.groups()
                return self
            if self.process.poll() is not None:
                raise ServerStartError(f"dex-zmq exited with code {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"dex-zmq did not start within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (None if it was never started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(5.0)
        return process.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> LocalZmqServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
