"""A local ``dex-zmq`` in a subprocess, stopped by its PID: for ``make bench-zmq`` and the tests.

The server binds 127.0.0.1 on free ports (``--port 0 --pub-port 0``), journals
into the directory it is given, and writes its log to a file there. ``start``
returns once the start-up line names the URL; ``stop`` sends SIGTERM to that
one PID (a clean shutdown: replies flushed, journal fsynced and
checkpointed), then SIGKILL after a timeout.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from transports.core.local_server import LocalServerProcess, ServerStartError

_LISTENING = re.compile(r"dex-zmq listening on (zmq://\S+) \(orders (\S+), market data (\S+?);")


def dex_zmq_command() -> list[str]:
    """How to run dex-zmq: the console script next to this Python, else on PATH, else the module."""
    beside = Path(sys.executable).parent / "dex-zmq"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("dex-zmq")
    return [found] if found else [sys.executable, "-m", "transports.zmq.server"]


class LocalZmqServer(LocalServerProcess):
    name = "dex-zmq"

    def __init__(self, workdir: str | Path, extra_args: tuple[str, ...] = (), host: str = "127.0.0.1") -> None:
        super().__init__(workdir, extra_args, host)
        self.orders_endpoint = ""
        self.pub_endpoint = ""

    def command(self) -> list[str]:
        return [
            *dex_zmq_command(),
            *("--host", self.host, "--port", "0", "--pub-port", "0", "--journal", str(self.journal_path)),
            *self.extra_args,
        ]

    def ready(self, output: str) -> bool:
        match = _LISTENING.search(output)
        if match:
            self.url, self.orders_endpoint, self.pub_endpoint = match.groups()
        return match is not None


__all__ = ["LocalZmqServer", "ServerStartError", "dex_zmq_command"]
