"""Settings of the gRPC transport: the server's options, the client's URL, and the channel arguments both use.

One frozen object for the server, with the defaults docs/grpc.md promises.
The server binds to 127.0.0.1 unless told otherwise; a client reads
``DEX_GRPC_SERVER`` when no URL is given. URLs are ``grpc://host:port``
(``grpc://[::1]:50051`` for IPv6); a bare ``host:port`` is accepted too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from transports.codec.proto_codec import pb
from transports.core.journal import FsyncPolicy
from transports.core.state_dir import default_journal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50051
SCHEME = "grpc"
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

# A CommandBatch of 10,000 orders is about 0.5 MB and its ReplyBatch about
# 1.2 MB; the codec accepts batches of up to 100,000 commands.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

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

    @property
    def url(self) -> str:
        return grpc_url(self.host, self.port)


def grpc_url(host: str, port: int) -> str:
    return f"{SCHEME}://[{host}]:{port}" if ":" in host else f"{SCHEME}://{host}:{port}"


def client_url(url: str | None = None) -> str:
    """The server a client talks to: ``url``, else ``$DEX_GRPC_SERVER``, else the default."""
    return (url or os.environ.get(SERVER_ENV) or DEFAULT_URL).rstrip("/")


def channel_target(url: str) -> str:
    """The ``host:port`` gRPC dials for ``url``; ``ValueError`` for anything but ``grpc://host:port``."""
    parts = urlsplit(url if "://" in url else f"{SCHEME}://{url}")
    if parts.scheme != SCHEME:
        raise ValueError(f"{url!r} is not a gRPC URL (grpc://host:port)")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{url!r} is not a gRPC URL (grpc://host:port)")
    host = parts.hostname
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_options() -> ChannelOptions:
    return [
        # Two servers must never share a port by accident (gRPC turns SO_REUSEPORT on by default).
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # Trading connections idle between bursts: let clients keep them alive.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]


def client_options() -> ChannelOptions:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # One TCP connection per client, as on every other transport (gRPC would
        # otherwise multiplex every channel of a process onto one connection).
        ("grpc.use_local_subchannel_pool", 1),
        # A submit is never retried behind the caller's back: it may have been applied.
        ("grpc.enable_retries", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
