"""Settings of the FIX transport: the server's options and bounds, the client's URL, the passwords.

The server binds 127.0.0.1:9878 unless told otherwise; the client reads
``DEX_FIX_SERVER`` when no URL is given (``fix://host:port``).

Identity is the SenderCompID of the Logon: it is the trader (the same
name rule as every wire, ``check_trader``). With an ``Authenticator``
(``auth``, ``--auth keys``) the Logon carries the key's signature
(``session``'s docstring and docs/security.md "FIX" give the fields) and the
SenderCompID must be the key's trader; passwords are then not read. With
``--auth off`` (loopback only) a Logon may be asked for a password (Password
554): a file of ``SenderCompID=password`` lines (``--passwords``), or one
password for every SenderCompID (``--password``); with neither, any
SenderCompID may log on.

Bounds (docs/limits.md names the shared ones): a frame is at most
``max_message_bytes`` (refused from its BodyLength, before its body is
read); a connection must log on within ``logon_timeout_s``; HeartBtInt is
``MIN_HEARTBEAT_S`` to ``MAX_HEARTBEAT_S``; a session silent past its
heartbeat interval gets a TestRequest, and is logged out when still silent
after another interval; at most ``max_queued`` messages above a sequence gap
wait for the resend; at most ``max_outbound_bytes`` wait in the kernel and
asyncio for a client that does not read (then it is disconnected); at most
``max_subscriptions`` market-data requests are live per session.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from transports.core.auth import Authenticator
from transports.core.journal import FsyncPolicy
from transports.core.limits import MAX_TEXT, Limits
from transports.core.state_dir import default_journal

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 9878
DEFAULT_URL: Final = f"fix://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_JOURNAL: Final = default_journal("dex-fix")
SERVER_ENV: Final = "DEX_FIX_SERVER"
SERVER_COMP_ID: Final = "DEX"
MIN_HEARTBEAT_S: Final = 1
MAX_HEARTBEAT_S: Final = 300
# A NewOrderSingle with every field we read at MAX_TEXT characters is under 1 KiB; 8 KiB leaves room for the
# optional standard fields foreign engines add, and bounds what one peer makes the server hold.
MAX_MESSAGE_BYTES: Final = 8 * 1024
READ_BYTES: Final = 64 * 1024  # one read: the inbound buffer is at most a frame plus this


@dataclass(frozen=True, slots=True)
class Passwords:
    """Who must give which password at Logon (an empty table and no shared password: nobody)."""

    table: dict[str, str] = field(default_factory=dict)
    shared: str | None = None

    @property
    def required(self) -> bool:
        return bool(self.table) or self.shared is not None

    def check(self, sender: str, given: str | None) -> bool:
        expected = self.table.get(sender, self.shared)
        if not self.required:
            return True
        if expected is None or given is None:
            return False
        return hmac.compare_digest(expected.encode(), given.encode())

    @staticmethod
    def read(path: str | Path, shared: str | None = None) -> Passwords:
        """``SenderCompID=password`` per line (blank lines and ``#`` comments skipped); ``ValueError`` on a bad line."""
        table: dict[str, str] = {}
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            sender, sep, password = line.partition("=")
            if not sep or not sender.strip() or not password:
                raise ValueError(f"{path}:{number}: expected SenderCompID=password")
            table[sender.strip()] = password
        return Passwords(table, shared)


@dataclass(frozen=True, slots=True)
class FixServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    comp_id: str = SERVER_COMP_ID  # every Logon's TargetCompID
    state_dir: str = "var"  # sequence numbers live in <state_dir>/fix-sessions
    passwords: Passwords = field(default_factory=Passwords)  # --auth off only
    auth: Authenticator | None = None  # signed Logons (--auth keys): the key's principal acts
    max_message_bytes: int = MAX_MESSAGE_BYTES
    logon_timeout_s: float = 10.0
    max_queued: int = 1_000  # messages above a gap waiting for the resend: at most 8 MiB of frames a session
    max_outbound_bytes: int = 16 * 1024 * 1024
    max_subscriptions: int = 64
    limits: Limits = field(default_factory=Limits)
    # The gateway's (server_cli's shared options)
    buffer: int = 100_000
    journal: str | None = DEFAULT_JOURNAL
    fsync: FsyncPolicy = "batch"
    symbols: str = ""
    allow_admin: bool = False
    log_level: str = "info"

    @property
    def sessions_dir(self) -> Path:
        return Path(self.state_dir) / "fix-sessions"


@dataclass(frozen=True, slots=True)
class FixAddress:
    host: str
    port: int


def client_url(url: str | None) -> str:
    """``url``, else ``$DEX_FIX_SERVER``, else the default."""
    return url or os.environ.get(SERVER_ENV) or DEFAULT_URL


def parse_url(url: str) -> FixAddress:
    """``fix://host:port`` (or ``tcp://``) as an address; ``ValueError`` for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("fix", "tcp") or not parts.hostname or parts.port is None:
        raise ValueError(f"a FIX server URL is fix://host:port, not {url[:MAX_TEXT]!r}")
    return FixAddress(parts.hostname, parts.port)


def fix_url(host: str, port: int) -> str:
    return f"fix://[{host}]:{port}" if ":" in host else f"fix://{host}:{port}"
