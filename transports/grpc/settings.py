"""Settings of the gRPC transport: the server's options, the client's URL, and the channel arguments both use.

One frozen object for the server, with the defaults docs/grpc.md promises.
The server binds to 127.0.0.1 unless told otherwise; a client reads
``DEX_GRPC_SERVER`` when no URL is given. URLs are ``grpc://host:port``
(``grpc://[::1]:50051`` for IPv6); a bare ``host:port`` is accepted too.

A server that authenticates (``--auth keys``, docs/security.md) serves TLS
only and its URL is ``grpcs://host:port``, optionally ``?ca=PATH``: the CA
certificate the client trusts (``dex-keys tls`` writes it; the server names
its own in the URL it prints). A ``grpc://`` URL is plaintext.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, quote, urlsplit

from transports.codec.proto_codec import pb
from transports.core.auth import Authenticator
from transports.core.journal import FsyncPolicy
from transports.core.limits import ConnectionLimits, Limits
from transports.core.state_dir import default_journal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50051
SCHEME = "grpc"
TLS_SCHEME = "grpcs"  # TLS: what a server that authenticates serves
DEFAULT_URL = f"{SCHEME}://{DEFAULT_HOST}:{DEFAULT_PORT}"
# Its own default file (named after the command): two servers started in one
# directory must never append to one journal.
DEFAULT_JOURNAL = default_journal("dex-grpc")
SERVER_ENV = "DEX_GRPC_SERVER"

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Exchange"].full_name  # "exchange.v1.Exchange"

# Metadata naming the acting trader (identity, not authentication: docs/grpc.md),
# and the trailer that carries the serialized Error of a failed call.
TRADER_METADATA = "x-trader"
# gRPC metadata values are printable ASCII; any other name travels as its UTF-8 bytes in binary metadata.
TRADER_METADATA_BIN = "x-trader-bin"


def trader_metadata(trader: str) -> tuple[str, str | bytes]:
    """The metadata naming ``trader``: ``x-trader`` for printable ASCII, else ``x-trader-bin`` (UTF-8 bytes)."""
    if trader.isascii() and trader.isprintable():
        return (TRADER_METADATA, trader)
    return (TRADER_METADATA_BIN, trader.encode())


ERROR_TRAILER = "exchange-error-bin"

# What a server receives is bounded by what the largest allowed batch needs
# (transports.core.limits, docs/limits.md); what it sends (replies, snapshots)
# is ours, and a ReplyBatch of 10,000 orders with their fills is a few MB.
MAX_REQUEST_BYTES = Limits().max_request_bytes
MAX_REPLY_BYTES = 64 * 1024 * 1024
MAX_CONCURRENT_STREAMS = 128  # calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)
KEEPALIVE_TIME_MS = 60_000  # the server pings a connection silent this long ...
KEEPALIVE_TIMEOUT_MS = 20_000  # ... and drops it when no answer comes within this
MAX_METADATA_BYTES = 16 * 1024  # headers of one call

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LOG_LEVELS: tuple[LogLevel, ...] = ("critical", "error", "warning", "info", "debug")

ChannelOptions = list[tuple[str, int | str]]


@dataclass(frozen=True, slots=True)
class GrpcServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0 = any free port (the start-up line names it)
    buffer: int = 100_000  # gateway queue bound, in commands
    journal: str | None = DEFAULT_JOURNAL  # None = no journal: nothing survives a restart
    fsync: FsyncPolicy = "batch"
    symbols: str = ""  # comma list of default instruments; "" = all
    allow_admin: bool = False  # accept add_instrument over gRPC
    log_level: LogLevel = "info"
    max_inflight: int = 1024  # batches of one Trade stream submitted but not yet answered
    max_book_depth: int = 1000  # levels per side a GetBook may ask for
    graceful_shutdown_s: float = 10.0  # wait this long for open calls on SIGTERM
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)  # idle_timeout_s and max_connections apply (docs/limits.md)
    # Keys (docs/security.md): TLS only, and every private call signed in its metadata. None: --auth off.
    auth: Authenticator | None = None
    tls_cert: str | None = None  # PEM files of the server's certificate and key; None: the keyring's server/tls
    tls_key: str | None = None
    shared_port: bool = False  # SO_REUSEPORT: several fronts listen on one port (docs/shards.md)

    @property
    def url(self) -> str:
        return grpc_url(self.host, self.port)


def grpc_url(host: str, port: int, *, tls: bool = False, ca: str | None = None) -> str:
    scheme = TLS_SCHEME if tls else SCHEME
    url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    return f"{url}?ca={quote(ca, safe='/')}" if tls and ca else url


@dataclass(frozen=True, slots=True)
class GrpcAddress:
    """What a client dials: ``host:port``, whether over TLS, and the CA file named by the URL (None: not named)."""

    target: str
    tls: bool
    ca: str | None = None


def parse_grpc_url(url: str) -> GrpcAddress:
    """``grpc://host:port`` (plaintext) or ``grpcs://host:port[?ca=PATH]`` (TLS); ``ValueError`` for anything else."""
    parts = urlsplit(url if "://" in url else f"{SCHEME}://{url}")
    if parts.scheme not in (SCHEME, TLS_SCHEME):
        raise ValueError(f"{url!r} is not a gRPC URL (grpc://host:port or grpcs://host:port)")
    try:
        port = parts.port
    except ValueError:
        port = None
    query = parse_qs(parts.query) if parts.scheme == TLS_SCHEME else {}
    if not parts.hostname or port is None or parts.path not in ("", "/") or (parts.query and set(query) != {"ca"}):
        raise ValueError(f"{url!r} is not a gRPC URL (grpc://host:port or grpcs://host:port[?ca=PATH])")
    host = parts.hostname
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return GrpcAddress(target, parts.scheme == TLS_SCHEME, query["ca"][-1] if "ca" in query else None)


def client_url(url: str | None = None) -> str:
    """The server a client talks to: ``url``, else ``$DEX_GRPC_SERVER``, else the default."""
    return (url or os.environ.get(SERVER_ENV) or DEFAULT_URL).rstrip("/")


def channel_target(url: str) -> str:
    """The ``host:port`` gRPC dials for ``url``; ``ValueError`` for anything but a gRPC URL."""
    return parse_grpc_url(url).target


def server_options(connections: ConnectionLimits | None = None, shared_port: bool = False) -> ChannelOptions:
    """The server's channel arguments: receive limit, connection limits (docs/limits.md) and keepalive."""
    limits = connections if connections is not None else ConnectionLimits()
    return [
        # Two servers must never share a port by accident (gRPC turns SO_REUSEPORT on by default); fronts do on purpose.
        ("grpc.so_reuseport", int(shared_port)),
        # A larger message is refused by gRPC before it is read whole (RESOURCE_EXHAUSTED).
        ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ("grpc.max_send_message_length", MAX_REPLY_BYTES),
        ("grpc.max_metadata_size", MAX_METADATA_BYTES),
        ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        # A connection with no call open this long is closed (GOAWAY; a client reconnects on its next call).
        ("grpc.max_connection_idle_ms", int(limits.idle_timeout_s * 1000)),
        # Dead peers: the server pings, and drops a connection that does not answer.
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        # Trading connections idle between bursts: let clients keep them alive.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]


def client_options() -> ChannelOptions:
    return [
        ("grpc.max_receive_message_length", MAX_REPLY_BYTES),
        ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
        # One TCP connection per client, as on every other transport (gRPC would
        # otherwise multiplex every channel of a process onto one connection).
        ("grpc.use_local_subchannel_pool", 1),
        # A submit is never retried behind the caller's back: it may have been applied.
        ("grpc.enable_retries", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
