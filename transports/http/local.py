"""A local ``turbo-dex`` (HTTP) in a subprocess: for ``make demo``, the benchmarks and the tests.

The server binds 127.0.0.1 on a free port, journals into the directory it is
given, and writes its log to a file there (never onto the harness's live
view). ``start`` returns once ``GET /health`` answers 200; ``stop`` sends
SIGTERM to that one PID, then SIGKILL after a timeout.
"""

from __future__ import annotations

import shutil
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from transports.core.local_server import LocalServerProcess, ServerStartError


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


class LocalServer(LocalServerProcess):
    """turbo-dex on a free port; ready when ``GET /health`` answers 200."""

    name = "turbo-dex"
    port = 0

    def command(self) -> list[str]:
        self.port = free_port(self.host)
        self.url = f"http://{self.host}:{self.port}"
        return [*turbo_dex_command(), "--host", self.host, "--port", str(self.port), "--journal", str(self.journal_path), *self.extra_args]

    def ready(self, output: str) -> bool:
        return health_ok(self.url)


__all__ = ["LocalServer", "ServerStartError", "free_port", "health_ok", "turbo_dex_command"]
