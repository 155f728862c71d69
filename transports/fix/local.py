"""A local ``dex-fix`` in a subprocess, stopped by its PID: for the tests, and for whatever starts servers by name.

The server binds 127.0.0.1 on a free port (``--port 0``), journals into the
directory it is given and keeps its sessions' sequence numbers there
(``--state-dir``), and writes its log to a file there. ``start`` returns once
the start-up line names the URL; ``stop`` sends SIGTERM to that one PID (a
clean shutdown: sequence numbers stored, journal fsynced and checkpointed),
then SIGKILL after a timeout. Starting it again in the same directory finds
the same journal and the same sequence numbers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from transports.core.local_server import LocalServerProcess, ServerStartError

_LISTENING = re.compile(r"dex-fix listening on (fix://\S+) \(")


def dex_fix_command() -> list[str]:
    """How to run dex-fix: the module, with this Python."""
    return [sys.executable, "-m", "transports.fix.server"]


class LocalFixServer(LocalServerProcess):
    name = "dex-fix"

    def __init__(self, workdir: str | Path, extra_args: tuple[str, ...] = (), host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(workdir, extra_args, host)
        self.port = port

    def command(self) -> list[str]:
        return [
            *dex_fix_command(),
            *("--host", self.host, "--port", str(self.port), "--journal", str(self.journal_path), "--state-dir", str(self.workdir)),
            *self.extra_args,
        ]

    def ready(self, output: str) -> bool:
        match = _LISTENING.search(output)
        if match:
            self.url = match.group(1)
            self.port = int(self.url.rsplit(":", 1)[1])  # a restart binds the same port: clients reconnect to one URL
        return match is not None


__all__ = ["LocalFixServer", "ServerStartError", "dex_fix_command"]
