"""Every limit a request or a connection meets, on every wire, in one place (the table: docs/limits.md).

The request handler (``transports.core.requests``) checks the request limits
before the work they bound: a request's bytes before it is decoded, its
command count while it is decoded (``transports.codec.wire_count`` counts a
protobuf batch's commands from the wire tags, and bounds a JSON batch's
elements with ``bytes.count``, before any object is built), the depth and
the number of symbols of a query. A wire's receive limit (gRPC's
``max_receive_message_length``, ZeroMQ's ``MAXMSGSIZE``, NATS's
``max_payload``, RabbitMQ's ``max_message_size``, an HTTP body) is
``Limits.max_request_bytes``: what the largest allowed batch needs, computed
here from the schema, never guessed.

How a byte bound is computed: the longest encoding of one command, over
every command kind, with every field present at its longest (text at
``MAX_TEXT`` ASCII characters, integers at their widest varint, enums at
their longest name), times ``max_batch``, plus ``ENVELOPE_BYTES`` for
what surrounds the commands. A batch of text at its longest in non-ASCII
characters may exceed it; it is refused like any other oversize request.

``ConnectionLimits`` are what one server lets a connection hold: read
timeouts, an idle timeout, the number of connections per peer address and in
all, and the bytes buffered for requests not yet read whole. Excess is
refused with ``RejectReason.LIMIT_EXCEEDED`` (a request over a limit) or
``OVERLOADED`` (a connection over a cap: retry later) and counted per
transport and limit name (``GatewayStats.limits_exceeded``: ``stats`` and the
``dex_limits_exceeded`` metric).

``python -m transports.core.limits --markdown`` prints docs/limits.md; a test
fails when that file is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from engine import ExchangeError, RejectReason
from transports.codec.proto_codec import pb

MAX_TEXT: Final = 64  # characters of a trader name, symbol, client order id or decimal string
MAX_TRADER_LENGTH: Final = MAX_TEXT
DEFAULT_DEPTH: Final = 10  # levels per side of a book query that names none
MAX_DEPTH: Final = 1000  # levels per side a book query may ask for
MAX_SNAPSHOT_LEVELS: Final = 1000  # levels per side of a market-data snapshot (the best ones; deeper levels come as updates)
MAX_MARKET_BATCH: Final = 512  # market-data items in one batched message (gRPC MarketDataBatched, WebSocket ?batch=1)
MAX_TRADES_QUERY: Final = 1000  # trades one trades query may ask for: the timed tape kept per symbol (transports.core.candles)
MAX_CANDLES_QUERY: Final = 1440  # candles one candles query may ask for: those kept per symbol and interval
# A broker's message limit (NATS max_payload, RabbitMQ max_message_size) bounds requests and the replies our
# servers publish alike: a ReplyBatch of a full batch with its fills takes a few MB, so the larger of the two.
MAX_REPLY_BYTES: Final = 8 * 1024 * 1024
ENVELOPE_BYTES: Final = 4096  # bytes around the commands of a request: batch id, symbol table header, framing
_VARINT_BYTES = {
    FieldDescriptor.TYPE_UINT32: 5,
    FieldDescriptor.TYPE_UINT64: 10,
    FieldDescriptor.TYPE_INT64: 10,
    FieldDescriptor.TYPE_INT32: 10,
    FieldDescriptor.TYPE_BOOL: 1,
    FieldDescriptor.TYPE_ENUM: 5,
}
_JOURNAL_ONLY = ("traders", "trader")  # OrderBatch columns a client never sends (journal records)


class LimitExceeded(ExchangeError):
    """A request or a connection over one of the limits below; ``limit`` names it (docs/limits.md)."""

    reason = RejectReason.LIMIT_EXCEEDED

    def __init__(self, message: str, limit: str, reason: RejectReason | None = None) -> None:
        super().__init__(message, reason)
        self.limit = limit


# ------------------------------------------------------- one command's bytes
def _varint_len(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _proto_message_bytes(descriptor: Descriptor) -> int:
    """The longest encoding of one ``descriptor`` message: every field present, at its longest."""
    total = 0
    for f in descriptor.fields:
        tag = _varint_len(f.number << 3)
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            body = _proto_message_bytes(_message(f))
            total += tag + _varint_len(body) + body
        elif f.type == FieldDescriptor.TYPE_STRING:
            total += tag + _varint_len(MAX_TEXT) + MAX_TEXT
        else:
            total += tag + _VARINT_BYTES[f.type]
    return total


@cache
def proto_command_bytes() -> int:
    """Bytes of the longest ``Command`` inside a ``CommandBatch`` (its tag and length included)."""
    body = max(_proto_message_bytes(_message(f)) + 1 + _varint_len(_proto_message_bytes(_message(f))) for f in _kinds())
    return 1 + _varint_len(body) + body


@cache
def lean_command_bytes() -> int:
    """Bytes one command adds to an ``OrderBatch``: a value in every column, and a symbol of its own in the table."""
    total = 0
    for f in pb.OrderBatch.DESCRIPTOR.fields:
        if not f.is_repeated or f.name in _JOURNAL_ONLY:
            continue
        if f.type == FieldDescriptor.TYPE_STRING:  # symbols, client_order_id: one string per command at most
            total += _varint_len(f.number << 3) + _varint_len(MAX_TEXT) + MAX_TEXT
        else:  # a packed column: one varint per command (the column's tag and length are in the envelope)
            total += _VARINT_BYTES[f.type]
    return total


def _json_value_bytes(f: FieldDescriptor) -> int:
    if f.type == FieldDescriptor.TYPE_STRING:
        return MAX_TEXT + 2
    if f.type == FieldDescriptor.TYPE_ENUM:
        values = f.enum_type.values if f.enum_type is not None else ()
        prefix = values[0].name.removesuffix("UNSPECIFIED") if values else ""
        return max((len(v.name) - len(prefix) for v in values), default=0) + 2
    if f.type == FieldDescriptor.TYPE_BOOL:
        return len("false")
    return len(str(2**64 - 1))


def _message(f: FieldDescriptor) -> Descriptor:
    assert f.message_type is not None, f.name
    return f.message_type


def _json_members(descriptor: Descriptor) -> list[tuple[str, int]]:
    """``(key, longest value)`` of a JSON command object: the message's fields, a nested message's flattened."""
    out: list[tuple[str, int]] = []
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            out += _json_members(_message(f))
        else:
            out.append((f.name, _json_value_bytes(f)))
    return out


def _json_command(kind: FieldDescriptor) -> tuple[int, int]:
    """(bytes, separators) of the longest JSON object of one command kind, ``"type"`` included."""
    members = [("type", len(kind.name) + 2), *_json_members(_message(kind))]
    size = 2 + sum(len(key) + 3 + value for key, value in members) + len(members) - 1  # {} "key": value, ...
    return size + 1, len(members) + 1  # the comma after it in the array; its commas and its brace


def _kinds() -> list[FieldDescriptor]:
    kinds: list[FieldDescriptor] = [*pb.Command.DESCRIPTOR.oneofs_by_name["kind"].fields]
    return kinds


@cache
def json_command_bytes() -> int:
    """Bytes of the longest JSON command in a batch array (the comma after it included)."""
    return max(_json_command(kind)[0] for kind in _kinds())


@cache
def json_command_separators() -> int:
    """The most ``,`` ``{`` ``[`` bytes outside strings one JSON command may hold."""
    return max(_json_command(kind)[1] for kind in _kinds())


# ------------------------------------------------------------------- limits
@dataclass(frozen=True, slots=True)
class Limits:
    """The per-request limits of one server (a server's ``--max-batch`` and settings may only lower them)."""

    max_batch: int = 10_000  # commands per batch (never more than the gateway's queue)
    max_snapshot_symbols: int = 64  # distinct symbols of one snapshot request (duplicates collapse first)

    def bounded_by(self, buffer: int) -> Limits:
        """These limits, with no batch larger than a gateway queue of ``buffer`` commands."""
        return Limits(min(self.max_batch, buffer), self.max_snapshot_symbols)

    @property
    def max_proto_bytes(self) -> int:
        """Bytes of a ``CommandBatch`` of ``max_batch`` commands at their longest."""
        return self.max_batch * proto_command_bytes() + ENVELOPE_BYTES

    @property
    def max_lean_bytes(self) -> int:
        """Bytes of an ``OrderBatch`` of ``max_batch`` commands at their longest."""
        return self.max_batch * lean_command_bytes() + ENVELOPE_BYTES

    @property
    def max_json_bytes(self) -> int:
        """Bytes of a JSON batch (array) of ``max_batch`` commands at their longest."""
        return self.max_batch * json_command_bytes() + ENVELOPE_BYTES

    @property
    def max_json_separators(self) -> int:
        """``,`` ``{`` ``[`` bytes outside strings in a JSON batch of ``max_batch`` commands: bounds what parsing builds."""
        return self.max_batch * json_command_separators() + 1

    @property
    def max_request_bytes(self) -> int:
        """Every wire's receive limit: the largest of the batch encodings above."""
        return max(self.max_proto_bytes, self.max_lean_bytes, self.max_json_bytes)

    @property
    def max_broker_message_bytes(self) -> int:
        """A broker's message limit, which bounds requests and replies alike."""
        return max(self.max_request_bytes, MAX_REPLY_BYTES)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one server lets connections hold (HTTP servers enforce all; other wires what their library allows)."""

    header_timeout_s: float = 10.0  # from connect (or the end of the last reply) to the end of a request's headers
    body_timeout_s: float = 30.0  # from the end of the headers to the end of the body
    idle_timeout_s: float = 30.0  # a kept-alive connection with no request in flight
    max_connections: int = 4096  # open connections of one server
    max_connections_per_peer: int = 1024  # open connections from one peer address
    max_buffered_bytes: int = 32 * 1024 * 1024  # request bytes held, all connections together, before they are read whole
    max_header_bytes: int = 64 * 1024  # request line and headers of one request

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name} must be positive")
        if self.max_connections_per_peer > self.max_connections:
            raise ValueError("max_connections_per_peer must not exceed max_connections")


# -------------------------------------------------------------- the table
def _mib(n: int) -> str:
    return f"{n:,} B ({n / 2**20:.2f} MiB)"


def markdown() -> str:
    """docs/limits.md: every limit, its default and where it is checked, from the values in this module."""
    lim = Limits()
    conn = ConnectionLimits()
    rows = [
        ("max_batch", f"{lim.max_batch:,} commands", "every batch (lean, protobuf, JSON), counted while decoding", "LIMIT_EXCEEDED"),
        ("max_request_bytes", _mib(lim.max_request_bytes), "every wire's receive limit (below), before decoding", "LIMIT_EXCEEDED"),
        ("max_proto_bytes", _mib(lim.max_proto_bytes), "a protobuf `CommandBatch`, before decoding", "LIMIT_EXCEEDED"),
        ("max_lean_bytes", _mib(lim.max_lean_bytes), "a lean `OrderBatch`, before decoding", "LIMIT_EXCEEDED"),
        ("max_json_bytes", _mib(lim.max_json_bytes), "a JSON batch, before parsing", "LIMIT_EXCEEDED"),
        ("max_json_separators", f"{lim.max_json_separators:,}", "`,` `{` `[` outside strings of a JSON batch", "LIMIT_EXCEEDED"),
        ("max_snapshot_symbols", f"{lim.max_snapshot_symbols}", "distinct symbols of a snapshot request", "LIMIT_EXCEEDED"),
        ("max_text", f"{MAX_TEXT} characters", "a trader, symbol, client order id, decimal string", "MALFORMED_MESSAGE"),
        ("max_depth", f"{MAX_DEPTH} levels per side", "a book query (more is capped to it)", "(capped)"),
        ("max_snapshot_levels", f"{MAX_SNAPSHOT_LEVELS} levels per side", "a market-data snapshot (the best levels)", "(capped)"),
        ("max_market_batch", f"{MAX_MARKET_BATCH} items", "one batched market-data message (what waits past it goes next)", "(split)"),
        ("max_trades_query", f"{MAX_TRADES_QUERY:,} trades", "`limit` of a trades query (REST)", "MALFORMED_MESSAGE"),
        ("max_candles_query", f"{MAX_CANDLES_QUERY:,} candles", "`limit` of a candles query (REST)", "MALFORMED_MESSAGE"),
        ("header_timeout_s", f"{conn.header_timeout_s:g} s", "HTTP: connect (or last reply) to end of headers", "LIMIT_EXCEEDED"),
        ("body_timeout_s", f"{conn.body_timeout_s:g} s", "HTTP: end of headers to end of body", "LIMIT_EXCEEDED"),
        ("idle_timeout_s", f"{conn.idle_timeout_s:g} s", "HTTP keep-alive, gRPC: a connection with nothing in flight", "LIMIT_EXCEEDED"),
        ("max_connections", f"{conn.max_connections:,}", "open connections of one server (HTTP)", "OVERLOADED"),
        ("max_connections_per_peer", f"{conn.max_connections_per_peer:,}", "open connections from one address (HTTP)", "OVERLOADED"),
        ("max_header_bytes", _mib(conn.max_header_bytes), "HTTP: request line and headers of one request", "LIMIT_EXCEEDED"),
        ("max_buffered_bytes", _mib(conn.max_buffered_bytes), "HTTP: declared request bodies held at once", "OVERLOADED"),
    ]
    out = [
        "# Limits",
        "",
        "<!-- Generated: `python -m transports.core.limits --markdown > docs/limits.md` (tests/unit/test_limits_doc.py). -->",
        "",
        "Every limit a request or a connection meets, the same on every wire, from `transports/core/limits.py`.",
        "A request over a limit is refused whole (nothing of it is applied) with the reason named, on every wire",
        "(`LIMIT_EXCEEDED`: HTTP 413, gRPC `RESOURCE_EXHAUSTED`; `OVERLOADED`: HTTP 503, gRPC `UNAVAILABLE`, retry later),",
        "and counted by transport and limit: `stats` (`refused_by_reason`, `limits_exceeded`) and the",
        "`dex_limits_exceeded{transport,limit}` metric. A server's `--max-batch` lowers `max_batch` and every byte bound with it.",
        "",
        "| limit | default | checked on | refused with |",
        "| --- | --- | --- | --- |",
        *(f"| `{name}` | {value} | {where} | {reason} |" for name, value, where, reason in rows),
        "",
        "## How the byte bounds are computed",
        "",
        "The longest encoding of one command over every command kind, every field present at its longest (text at",
        f"{MAX_TEXT} ASCII characters, integers at their widest varint, enums at their longest name), times `max_batch`,",
        f"plus {ENVELOPE_BYTES:,} bytes for what surrounds the commands:",
        "",
        "| encoding | bytes per command | batch of `max_batch` |",
        "| --- | --- | --- |",
        f"| protobuf `CommandBatch` | {proto_command_bytes()} | {_mib(lim.max_proto_bytes)} |",
        f"| lean `OrderBatch` | {lean_command_bytes()} | {_mib(lim.max_lean_bytes)} |",
        f"| JSON array | {json_command_bytes()} ({json_command_separators()} separators) | {_mib(lim.max_json_bytes)} |",
        "",
        "Counting happens before objects are built: a protobuf batch's `commands` are counted from the wire tags and the",
        "count stops at the first command over `max_batch`; a JSON batch's separators are counted with `bytes.count`",
        "(strings stripped first only when the raw count is over the bound). A batch of text at its longest in non-ASCII",
        "characters may exceed the byte bound; it is refused like any other oversize request: send fewer commands.",
        "",
        "## Each wire's own limits",
        "",
        "| wire | receive limit | connection limits |",
        "| --- | --- | --- |",
        "| HTTP (`turbo-dex`) | body: `max_request_bytes`, refused from `Content-Length` before reading and while streaming"
        " | all of `ConnectionLimits` (header, body and idle timeouts; connections per peer and in all; buffered bytes) |",
        "| DHT node (HTTP) | body: `max_request_bytes`, as HTTP | all of `ConnectionLimits`, as HTTP |",
        "| gRPC | `grpc.max_receive_message_length` = `max_request_bytes` | `grpc.max_concurrent_streams`,"
        " `grpc.max_connection_idle_ms` = `idle_timeout_s`, keepalive pings drop dead peers |",
        "| ZeroMQ | `ZMQ_MAXMSGSIZE` = `max_request_bytes` (a larger frame drops that peer) | `ZMQ_RCVHWM` per peer,"
        " ZMTP heartbeats (`HEARTBEAT_IVL`/`TIMEOUT`) drop dead peers; no connection count (see docs/zmq.md) |",
        f"| NATS | `max_payload` = {_mib(lim.max_broker_message_bytes)} (requests and replies) in the config our nats-server"
        " start-up writes; a request over `max_request_bytes` is refused before decoding"
        " | `max_connections`, `max_pending` in that config |",
        f"| RabbitMQ | `max_message_size` = {_mib(lim.max_broker_message_bytes)} in the config scripts/rabbitmq.sh writes; a request"
        " over `max_request_bytes` is refused before decoding | `connection_max`, `channel_max`, `frame_max` in that config;"
        " the server's prefetch bounds the messages it holds |",
        "",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transports.core.limits", description="Print the table of limits.")
    parser.add_argument("--markdown", action="store_true", help="print docs/limits.md")
    parser.parse_args(argv)
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
