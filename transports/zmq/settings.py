"""Settings of the ZeroMQ transport: the server's options, the client's URL, and the high-water marks.

The server binds 127.0.0.1 unless told otherwise (orders and queries on 5555,
market data on 5556); the client reads ``DEX_ZMQ_SERVER`` when no URL is given.

High-water marks are set on every socket, on purpose (ZeroMQ's default of
1000 messages is a guess about nobody's workload):

* ROUTER receive HWM, per client: how many requests ZeroMQ queues for one
  client before it stops reading that client's TCP connection. It bounds the
  memory one client can make the server hold, and pushes back on that client
  alone (TCP flow control), never on the others.
* ROUTER send HWM, per client: replies ZeroMQ queues for a client that does
  not read. The server sets ROUTER_MANDATORY, so a full queue is an EAGAIN it
  sees (the reply waits in a bounded per-client outbox), never a reply
  dropped in silence.
* PUB send HWM, per subscriber: how far a subscriber may fall behind before
  ZeroMQ starts dropping its market data. Dropping is what PUB does; the
  per-symbol ``md_seq`` makes every drop visible, and the subscriber then
  resynchronises from a snapshot (docs/zmq.md).
* DEALER and SUB HWMs on the client mirror those.

What else bounds one peer (docs/limits.md): ``MAXMSGSIZE`` (a frame larger
than the largest allowed batch drops that peer's connection before the frame
is held whole), and ZMTP heartbeats that drop a peer which stopped
answering. ZeroMQ gives no hook to refuse a connection, so there is no cap on
their number here (a socket monitor only reports them after the fact): put
the port behind a firewall or proxy that limits connections when it faces
untrusted clients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from transports.core.auth import Authenticator
from transports.core.journal import FsyncPolicy
from transports.core.limits import Limits
from transports.core.state_dir import default_journal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5555
DEFAULT_PUB_PORT = 5556
DEFAULT_URL = f"zmq://{DEFAULT_HOST}:{DEFAULT_PORT}"
# Not turbo-dex's journal: two servers appending to one file would corrupt it.
DEFAULT_JOURNAL = default_journal("dex-zmq")
SERVER_ENV = "DEX_ZMQ_SERVER"
URL_SCHEMES = ("zmq", "tcp")

# High-water marks, in messages (see the module docstring for why each).
ROUTER_RCVHWM = 1_000  # per client: 1,000 batches of 1,000 orders is about 42 MB
ROUTER_SNDHWM = 1_000
PUB_SNDHWM = 50_000  # per subscriber: a few seconds of a busy symbol (~100 B each)
DEALER_HWM = 1_000
SUB_RCVHWM = 50_000
# ZMTP heartbeats on the ROUTER: the server pings every peer this often and drops one that has not answered
# within the timeout, so a dead client's connection (and what ZeroMQ holds for it) goes away.
HEARTBEAT_IVL_MS = 10_000
HEARTBEAT_TIMEOUT_MS = 30_000

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LOG_LEVELS: tuple[LogLevel, ...] = ("critical", "error", "warning", "info", "debug")


@dataclass(frozen=True, slots=True)
class ZmqServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # orders and queries (ROUTER); 0 = any free port
    pub_port: int = DEFAULT_PUB_PORT  # market data (XPUB); 0 = any free port
    buffer: int = 100_000  # gateway queue bound, in commands
    journal: str | None = DEFAULT_JOURNAL  # None = no journal: nothing survives a restart
    fsync: FsyncPolicy = "batch"
    symbols: str = ""  # comma list of default instruments; "" = all
    allow_admin: bool = False  # accept add_instrument commands
    log_level: LogLevel = "info"
    max_batch: int = 10_000  # commands per CommandBatch (and never more than buffer)
    router_rcvhwm: int = ROUTER_RCVHWM
    router_sndhwm: int = ROUTER_SNDHWM
    pub_sndhwm: int = PUB_SNDHWM
    # ZMQ_SNDBUF of each client connection, in bytes; -1 = the kernel's (auto-tuned, up to net.ipv4.tcp_wmem's
    # maximum). Replies beyond the HWM and this buffer wait in the outbox, so a smaller one drops sooner for a
    # client that stops reading.
    router_sndbuf: int = -1
    max_outbox: int = 10_000  # replies held for one client that does not read; beyond, they are dropped and logged
    max_peers: int = 65_536  # connection -> trader bindings kept; the oldest is forgotten (it says hello again)
    close_linger_ms: int = 500  # on shutdown, how long ZeroMQ may still flush replies already handed to it
    heartbeat_ivl_ms: int = HEARTBEAT_IVL_MS
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS
    # Keys (docs/security.md): the ROUTER is a CURVE server and ZAP maps each client key to its key. None: --auth off.
    auth: Authenticator | None = None

    @property
    def max_message_bytes(self) -> int:
        """ZMQ_MAXMSGSIZE: what the largest allowed batch needs (docs/limits.md); a larger frame drops that peer."""
        return Limits(max_batch=self.max_batch).max_request_bytes


def tcp_endpoint(host: str, port: int | str) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


@dataclass(frozen=True, slots=True)
class ZmqAddress:
    """Where a client connects: the ROUTER endpoint, and the PUB port if the URL names one."""

    url: str  # as given (for messages)
    host: str
    port: int
    pub_port: int | None  # None: ask the server ("info")
    server_key: str | None = None  # the server's CURVE public key (Z85) from ``?key=``; None: not named

    @property
    def orders_endpoint(self) -> str:
        return tcp_endpoint(self.host, self.port)

    def pub_endpoint(self, port: int) -> str:
        return tcp_endpoint(self.host, port)


def client_url(url: str | None = None) -> str:
    """The server a client talks to: ``url``, else ``$DEX_ZMQ_SERVER``, else the default."""
    return (url or os.environ.get(SERVER_ENV) or DEFAULT_URL).rstrip("/")


def parse_url(url: str) -> ZmqAddress:
    """``zmq://host:port`` (or ``tcp://``), optionally ``?pub=PORT`` and ``&key=<the server's CURVE public key, 64 hex
    digits>`` (docs/security.md); ValueError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES or not parts.hostname:
        raise ValueError(f"not a ZeroMQ URL: {url!r} (expected zmq://host:port, e.g. {DEFAULT_URL})")
    query = parse_qs(parts.query)
    try:
        port = parts.port or DEFAULT_PORT
        pub = query.get("pub")
        pub_port = int(pub[-1]) if pub else None
    except ValueError:
        raise ValueError(f"not a ZeroMQ URL: {url!r} (bad port)") from None
    if pub_port is not None and not 0 < pub_port < 65536:
        raise ValueError(f"not a ZeroMQ URL: {url!r} (bad pub port)")
    key = query.get("key")
    server_key = None
    if key:
        try:
            server_key = curve_key_from_text(key[-1])
        except ValueError:
            raise ValueError(f"not a ZeroMQ URL: {url!r} (key= is the server's CURVE public key, 64 hex digits)") from None
    return ZmqAddress(url, parts.hostname, port, pub_port, server_key)


def curve_key_from_text(text: str) -> str:
    """A CURVE public key given as 64 hex digits or 40 Z85 characters, as Z85; ``ValueError`` otherwise."""
    import zmq.utils.z85  # here, so that reading settings needs no pyzmq

    try:
        if len(text) == 64:
            return zmq.utils.z85.encode(bytes.fromhex(text)).decode()
        if len(text) == 40:
            zmq.utils.z85.decode(text.encode())  # characters outside Z85 raise
            return text
    except (ValueError, KeyError, TypeError):
        pass
    raise ValueError("a CURVE public key is 64 hex digits or 40 Z85 characters")


def zmq_url(host: str, port: int) -> str:
    return f"zmq://[{host}]:{port}" if ":" in host else f"zmq://{host}:{port}"
