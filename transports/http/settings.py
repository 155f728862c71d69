"""Settings of the HTTP transport: the server's options and the client's URL.

One frozen object per side, with the defaults the docs promise (docs/http.md).
The server binds to 127.0.0.1 unless told otherwise; the client reads
``DEX_SERVER`` when no URL is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from transports.core.auth import Authenticator
from transports.core.journal import FsyncPolicy
from transports.core.limits import ConnectionLimits, Limits
from transports.core.state_dir import default_journal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_JOURNAL = default_journal("turbo-dex")  # var/turbo-dex.journal, relative to the working directory (git-ignored)
SERVER_ENV = "DEX_SERVER"

# Header naming the acting trader with --auth off (loopback only). With --auth keys the request's signature names it
# (transports.http.signed) and this header is ignored: see docs/security.md.
TRADER_HEADER = "x-trader"

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
LOG_LEVELS: tuple[LogLevel, ...] = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True, slots=True)
class HttpServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0 = any free port (the start-up line names it)
    buffer: int = 100_000  # gateway queue bound, in commands
    journal: str | None = DEFAULT_JOURNAL  # None = no journal: nothing survives a restart
    fsync: FsyncPolicy = "batch"
    symbols: str = ""  # comma list of default instruments; "" = all
    allow_admin: bool = False  # accept add_instrument over HTTP
    log_level: LogLevel = "info"
    max_batch: int = 10_000  # commands per POST /orders/batch
    max_body_bytes: int | None = None  # None: what the largest allowed batch needs (docs/limits.md)
    graceful_shutdown_s: int = 10  # wait this long for open requests on SIGTERM
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)  # timeouts and caps (docs/limits.md)
    auth: Authenticator | None = None  # --auth keys: every private request is signed (transports.http.signed); None: X-Trader
    shared_port: bool = False  # SO_REUSEPORT: several fronts listen on one port, the kernel spreads connections (docs/shards.md)

    @property
    def body_limit(self) -> int:
        """Bytes of one request body: refused from its Content-Length before it is read, and while it streams."""
        return self.max_body_bytes if self.max_body_bytes is not None else Limits(max_batch=self.max_batch).max_request_bytes

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def client_url(url: str | None = None) -> str:
    """The server a client talks to: ``url``, else ``$DEX_SERVER``, else the default."""
    chosen = url or os.environ.get(SERVER_ENV) or DEFAULT_URL
    return chosen.rstrip("/")
