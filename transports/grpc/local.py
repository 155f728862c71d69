"""A local ``dex-grpc`` in a subprocess, stopped by its PID: for the benchmarks and the tests.

The server binds 127.0.0.1 on a port it picks (``--port 0``), journals into
the directory it is given and logs to a file there. It is ready once its
start-up line names the URL: it prints the line after the port listens and
the gateway has recovered the journal.
"""

from __future__ import annotations

import re
import sys

from transports.core.local_server import LocalServerProcess, ServerStartError

_LISTENING = re.compile(r"dex-grpc listening on (grpcs?://\S+)")  # grpcs: --auth keys (TLS)


class LocalGrpcServer(LocalServerProcess):
    """One ``dex-grpc`` subprocess on 127.0.0.1 and a port it picks, journaling into ``workdir``; stopped by PID."""

    name = "dex-grpc"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "transports.grpc.server", "--host", self.host, "--port", "0"]
        return [*command, "--journal", str(self.journal_path), "--log-level", "warning", *self.extra_args]

    def ready(self, output: str) -> bool:
        match = _LISTENING.search(output)
        if match:
            self.url = match.group(1)
        return match is not None


__all__ = ["LocalGrpcServer", "ServerStartError"]
