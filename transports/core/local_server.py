"""A server of ours in a subprocess, for demos, benchmarks and process-level tests.

It binds loopback, journals into the directory it is given and logs to a
file there. ``start`` returns once the server says it is ready (each
transport decides how: its start-up line, or a health check); ``stop``
sends SIGTERM to that one PID, then SIGKILL after a timeout. Nothing else
is ever signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self


def terminate(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int | None:
    """Stop a process we started: SIGTERM, then SIGKILL after ``timeout`` seconds; its exit code."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5.0)
    return process.returncode


class ServerStartError(RuntimeError):
    """The server is not installed, exited, or did not get ready in time."""


class LocalServerProcess(ABC):
    name = "server"  # in messages and the log file's name

    def __init__(self, workdir: str | Path, extra_args: tuple[str, ...] = (), host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        self.extra_args = extra_args
        self.host = host
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.name}.log"
        self.journal_path = self.workdir / "journal.log"

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that starts the server."""

    @abstractmethod
    def ready(self, output: str) -> bool:
        """Whether the server is ready, given what it has logged since this start; sets ``url``."""

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self, timeout: float = 30.0) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            offset = log.tell()  # a restart in the same directory appends: read only this start's lines
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.ready(self._log_since(offset)):
            if self.process.poll() is not None:
                raise ServerStartError(f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"{self.name} did not get ready within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (None if it was never started)."""
        return None if self.process is None else terminate(self.process, timeout)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
