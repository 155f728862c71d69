"""A local ``turbo-dex`` in a subprocess: for ``make demo``, ``make bench-http`` and the tests.

The server binds 127.0.0.1 on a free port, journals into the directory it is
given, and writes its log to a file there (never onto the harness's live
view). ``start`` returns once ``GET /health`` answers 200; ``stop`` sends
SIGTERM to that one PID, then SIGKILL after a timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType


class ServerStartError(RuntimeError):
    """turbo-dex is not installed, exited, or did not answer /health in time."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def turbo_dex_command() -> list[str]:
    """How to run turbo-dex: the console script next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "turbo-dex"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("turbo-dex")
    if found:
        return [found]
    raise ServerStartError("turbo-dex is not installed (run `make setup`)")


def health_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class LocalServer:
    def __init__(self, workdir: str | Path, extra_args: tuple[str, ...] = (), host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        self.extra_args = extra_args
        self.host = host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "turbo-dex.log"
        self.journal_path = self.workdir / "journal.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self, timeout: float = 30.0) -> LocalServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.host)
        command = [
            *turbo_dex_command(),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--journal",
            str(self.journal_path),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not health_ok(self.url):
            if self.process.poll() is not None:
                raise ServerStartError(f"turbo-dex exited with code {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"turbo-dex did not answer {self.url}/health within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
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

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
