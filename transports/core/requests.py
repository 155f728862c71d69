"""The request handler: every rule that is the same on every wire, in one place.

A server frames requests and does I/O; it hands each request's bytes (or a
message its library already parsed) and the connection's trader to this
handler and writes back what it returns. The handler owns:

* limits (``transports.core.limits``, docs/limits.md), checked before the
  work they bound: request bytes before decoding (each encoding against its
  own bound), the command count from the wire bytes before any command is
  built (``transports.codec.wire_count``), the depth and the number of
  symbols of a query; a refusal is ``LimitExceeded`` (``LIMIT_EXCEEDED``),
  counted by transport and limit name;
* identity: a connection without a trader may not trade or read orders, and
  the trader of every command is the connection's (whatever a client wrote).
  A server that authenticates (``transports.core.auth``) passes the
  request's ``Principal``; one with ``--auth off`` passes the name it was
  given;
* the admin check (``add_instrument``): the principal's admin role, or with
  ``--auth off`` the server's ``--allow-admin``;
* the limits per key (``RATE_LIMITED``): a principal's request is admitted
  against its key's rate and requests in flight before it is decoded;
* the queries (book, order status, instruments, stats, snapshots);
* cancel on disconnect: arming a trader's session (``transports.core.sessions``);
* the mapping of every refusal to one ``RejectReason`` (counted per transport
  in ``GatewayStats.transport_errors``) and the encoding of every reply.

Invariants: ``orders`` and ``commands`` never raise; a refused batch is
answered with an ``Error`` inside its reply and nothing of it was applied.
The query methods raise ``ExchangeError`` with a stable reason, which the
server turns into its wire's error frame.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable, Sequence

from engine import AddInstrument, Command, ExchangeError, MalformedMessage, RejectReason
from transports.codec import lean
from transports.codec.proto_codec import (
    decode_commands,
    encode_book,
    encode_instruments,
    encode_market_data,
    encode_order_status,
    encode_refused,
    encode_replies,
    encode_stats,
    parse_message,
    pb,
)
from transports.codec.wire_count import field_exceeds, json_separators, varint_field
from transports.core.auth import Authenticator, Principal
from transports.core.gateway import Gateway, Replies
from transports.core.journal import trader_batch_record
from transports.core.limits import DEFAULT_DEPTH, MAX_DEPTH, MAX_TRADER_LENGTH, LimitExceeded, Limits
from transports.core.sessions import check_grace, guard_of

_log = logging.getLogger("dex.requests")

Acting = str | Principal | None  # who a request acts for: a proved principal, a name (--auth off), or nobody yet
Submit = Callable[[list[Command], str, "bytes | None"], Awaitable[Replies]]  # (commands, transport, journal record)


class Unidentified(ExchangeError):
    """A request that needs a trader came on a connection that has none."""

    reason = RejectReason.UNAUTHORIZED


def check_trader(trader: str | bytes) -> str:
    """``trader`` as a connection's identity, by the one rule of every wire (docs/json-format.md, "Trader names").

    A name is UTF-8 text (bytes are decoded as UTF-8, never Latin-1: an HTTP
    header's bytes too), 1 to 64 characters once surrounding blanks are
    removed, printable (no control or format characters) and in Unicode NFC, so
    one name cannot become two traders by its spelling. Missing or blank:
    ``UNAUTHORIZED``; anything else outside the rule: ``MALFORMED_MESSAGE``.
    """
    if isinstance(trader, bytes):
        try:
            trader = trader.decode()
        except UnicodeDecodeError:
            raise MalformedMessage("a trader name is UTF-8 text") from None
    name = trader.strip()
    if not name:
        raise Unidentified("a trader is required: name one (hello, X-Trader, ...)")
    if len(name) > MAX_TRADER_LENGTH:
        raise MalformedMessage(f"a trader is at most {MAX_TRADER_LENGTH} characters")
    if not name.isascii() and not unicodedata.is_normalized("NFC", name):
        raise MalformedMessage("a trader name is in Unicode NFC (composed characters)")
    if not name.isprintable():
        raise MalformedMessage("a trader name has no control or format characters")
    return name


class RequestHandler:
    """One gateway's requests as one transport sees them."""

    def __init__(
        self,
        gateway: Gateway,
        transport: str,
        limits: Limits | None = None,
        allow_admin: bool = False,
        submit: Submit | None = None,
        auth: Authenticator | None = None,
    ) -> None:
        self.gateway = gateway
        self.transport = transport
        # Where commands go: the gateway, or (a DHT node) the replicated log that feeds it. The gateway records lean
        # outcomes as it applies the commands, so their events need not be kept.
        self._submit: Submit = submit if submit is not None else gateway.submit
        self._lean_submit = gateway.submit if submit is None else None
        limits = limits if limits is not None else Limits()
        self.limits = limits.bounded_by(gateway.config.buffer)
        self.allow_admin = allow_admin and auth is None  # with keys, only an admin key may administer
        self.auth = auth
        self._lookup = gateway.instrument
        self.sessions = guard_of(gateway)

    def refused(self, error: ExchangeError) -> None:
        """Count a request refused before the engine (servers call it for what they refuse themselves)."""
        self.gateway.stats.refused(self.transport, error.reason.name, error.limit if isinstance(error, LimitExceeded) else "")

    # ------------------------------------------------------------- trading
    def acting(self, trader: Acting) -> tuple[str, bool]:
        """The trader a request acts for and whether it may administer; ``Unidentified`` when there is none."""
        if trader is None:
            raise Unidentified("say who you are first: this connection has no trader")
        if isinstance(trader, Principal):
            return trader.trader, trader.admin
        return trader, self.allow_admin

    def admit(self, trader: Acting) -> Principal | None:
        """Count a principal's request against its key's limits (``RATE_LIMITED`` over them); release it with ``release``."""
        if self.auth is None or not isinstance(trader, Principal):
            return None
        self.auth.admit(trader)
        return trader

    def release(self, admitted: Principal | None) -> None:
        if admitted is not None and self.auth is not None:
            self.auth.release(admitted)

    async def orders(self, data: bytes, trader: Acting) -> bytes:
        """The ``OutcomeBatch`` bytes answering the lean ``OrderBatch`` in ``data``, sent by ``trader``."""
        batch_id = count = 0
        admitted = None
        try:
            self._check_size(len(data), self.limits.max_lean_bytes, "max_lean_bytes")
            message = lean.parse_orders(data)  # packed integer columns: what it builds is bounded by the bytes
            batch_id, count = message.batch_id, len(message.kind)
            # After the id is read: a refusal on a pipelined stream must name the batch it answers.
            admitted = self.admit(trader)
            name, _ = self.acting(trader)
            self.check_count(len(message.kind))
            commands = lean.decode_orders(message, name, self.limits.max_batch)
            if self._lean_submit is not None:
                outcomes = lean.OutcomeColumns()
                await self._lean_submit(commands, self.transport, trader_batch_record(name, data), outcomes)
                reply = outcomes.to_bytes(batch_id)
            else:
                replies = await self._submit(commands, self.transport, trader_batch_record(name, data))
                reply = lean.encode_outcomes(commands, replies, batch_id)
        except ExchangeError as exc:
            self.refused(exc)
            reply = lean.encode_refusal(exc, batch_id)
        finally:
            self.release(admitted)
        stats = self.gateway.stats
        stats.lean_bytes_in += len(data)  # the cost report's bytes per order: every lean request and its answer
        stats.lean_bytes_out += len(reply)
        stats.lean_commands += count
        return reply

    async def commands(self, data: pb.CommandBatch | bytes, trader: Acting) -> pb.ReplyBatch:
        """The ``ReplyBatch`` (every event of every command) answering a ``CommandBatch``."""
        batch_id = 0
        try:
            admitted = self.admit(trader)
        except ExchangeError as exc:  # the key's limits, before the batch is parsed: answered by its id all the same
            return self.refuse_batch(exc, data.batch_id if isinstance(data, pb.CommandBatch) else data)
        try:
            if not isinstance(data, pb.CommandBatch):
                self.check_proto_batch(data)
            batch = parse_message(pb.CommandBatch, data)
            batch_id = batch.batch_id
            commands = self._decode(batch, trader)
            replies = await self._submit(commands, self.transport, None)
            return encode_replies(replies, self._lookup, batch_id)
        except LimitExceeded as exc:
            return self.refuse_batch(exc, data if isinstance(data, bytes) else batch_id)
        except ExchangeError as exc:
            self.refused(exc)
            return encode_refused(exc, batch_id)
        finally:
            self.release(admitted)

    def refuse_batch(self, error: ExchangeError, batch: bytes | int) -> pb.ReplyBatch:
        """Count ``error`` and answer the ``CommandBatch`` it refused (its unparsed bytes, or its id) with it."""
        self.refused(error)
        # The id follows the commands: look past a batch a little over the limit, never through a flood.
        batch_id = varint_field(batch, _BATCH_ID_FIELD, _ID_SCAN_FIELDS) if isinstance(batch, bytes) else batch
        return encode_refused(error, batch_id)

    def _decode(self, batch: pb.CommandBatch, acting: Acting) -> list[Command]:
        trader, admin = self.acting(acting)
        count = len(batch.commands)
        if count == 0:
            raise MalformedMessage("an empty batch")
        self.check_count(count)
        commands = decode_commands(batch, self._lookup, trader)
        if not admin and any(type(c) is AddInstrument for c in commands):
            raise ExchangeError(self.admin_refusal, RejectReason.UNAUTHORIZED)
        return commands

    def check_proto_batch(self, data: bytes) -> None:
        """``LimitExceeded`` unless ``data`` (an unparsed ``CommandBatch``) is within the byte and count limits.

        The count is read from the wire tags and stops at the first command over the limit: nothing is built.
        """
        check_proto_batch(data, self.limits)

    def check_json_batch(self, data: bytes) -> None:
        """``LimitExceeded`` unless the JSON batch ``data`` is within the byte limit and parsing it builds a bounded
        number of values (``,`` ``[`` ``{`` counted outside strings, before it is parsed)."""
        self._check_size(len(data), self.limits.max_json_bytes, "max_json_bytes")
        bound = self.limits.max_json_separators
        if json_separators(data, bound) > bound:
            raise LimitExceeded(f"a batch holds at most {self.limits.max_batch} commands (at most {bound} JSON values)", "max_batch")

    def check_count(self, count: int) -> None:
        """``LimitExceeded`` if a batch of ``count`` commands is over the limit."""
        if count > self.limits.max_batch:
            raise LimitExceeded(f"a batch holds at most {self.limits.max_batch} commands, got {count}", "max_batch")

    def _check_size(self, size: int, bound: int, limit: str) -> None:
        if size > bound:
            raise LimitExceeded(f"a request is at most {bound} bytes, got {size}", limit)

    # -------------------------------------------------------------- queries
    def book(self, data: pb.BookRequest | bytes) -> pb.BookDepth:
        request = parse_message(pb.BookRequest, data)
        depth = self.gateway.depth(request.symbol, min(request.depth or DEFAULT_DEPTH, MAX_DEPTH))
        if depth is None:
            raise MalformedMessage(f"unknown symbol {request.symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        return encode_book(depth, self._lookup)

    @property
    def admin_refusal(self) -> str:
        """Why ``add_instrument`` was refused, in this server's terms."""
        if self.auth is not None:
            return "add_instrument needs a key with the admin role (dex-keys create NAME --admin)"
        return "add_instrument needs a server started with --allow-admin"

    def order_status(self, data: pb.OrderStatusRequest | bytes, acting: Acting) -> pb.OrderStatusReply:
        """One of ``trader``'s orders (whatever trader the request names: a trader reads only its own)."""
        trader, _ = self.acting(acting)
        request = parse_message(pb.OrderStatusRequest, data)
        return encode_order_status(self.gateway.order_status(trader, request.order_id), self._lookup)

    def cancel_on_disconnect(self, data: pb.CancelOnDisconnectRequest | bytes, trader: Acting) -> pb.CancelOnDisconnectReply:
        """Arm, refresh (the heartbeat) or disarm ``trader``'s cancel on disconnect (``transports.core.sessions``)."""
        request = parse_message(pb.CancelOnDisconnectRequest, data)
        return pb.CancelOnDisconnectReply(grace_ms=self.arm_session(trader, request.grace_ms))

    def arm_session(self, acting: Acting, grace_ms: object) -> int:
        """The grace armed for ``trader`` (0: disarmed); its cancel goes where this handler's commands go."""
        trader, _ = self.acting(acting)
        return self.sessions.arm(trader, check_grace(grace_ms), self._submit, self.transport)

    def instruments(self) -> pb.InstrumentList:
        return encode_instruments(self.gateway.instruments)

    def stats(self) -> pb.Stats:
        return encode_stats(self.gateway.stats_dict())

    def snapshots(self, data: pb.MarketDataRequest | bytes) -> list[pb.MarketDataMessage]:
        """A ``BookSnapshot`` message per distinct symbol requested (duplicates collapsed, their number capped)."""
        symbols = self.market_data_symbols(data)
        out = []
        for symbol in symbols:
            try:
                snapshot = self.gateway.marketdata.snapshot(symbol)
            except KeyError:
                raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL) from None
            out.append(encode_market_data(snapshot, self._lookup))
        return out

    def market_data_symbols(self, data: pb.MarketDataRequest | bytes) -> list[str]:
        """The distinct symbols a ``MarketDataRequest`` names (snapshot or subscription), within the limits."""
        if not isinstance(data, pb.MarketDataRequest):
            self._check_size(len(data), self.limits.max_request_bytes, "max_request_bytes")
            if field_exceeds(data, _SYMBOLS_FIELD, self.limits.max_batch):  # names, repeats included: none built yet
                raise LimitExceeded(f"a market-data request names at most {self.limits.max_batch} symbols", "max_batch")
        return self.snapshot_symbols(parse_message(pb.MarketDataRequest, data).symbols)

    def snapshot_symbols(self, symbols: Sequence[str]) -> list[str]:
        """The distinct symbols of a snapshot or subscription request, first seen first; ``LimitExceeded`` over the cap."""
        wanted = distinct(symbols)
        if not wanted:
            raise MalformedMessage("name the symbols to snapshot")
        if len(wanted) > self.limits.max_snapshot_symbols:
            raise LimitExceeded(f"a request names at most {self.limits.max_snapshot_symbols} distinct symbols", "max_snapshot_symbols")
        return wanted


_COMMANDS_FIELD = pb.CommandBatch.DESCRIPTOR.fields_by_name["commands"].number
_BATCH_ID_FIELD = pb.CommandBatch.DESCRIPTOR.fields_by_name["batch_id"].number
_ID_SCAN_FIELDS = 2 * Limits().max_batch  # fields read for a refused batch's id, whatever a server's own max_batch
_SYMBOLS_FIELD = pb.MarketDataRequest.DESCRIPTOR.fields_by_name["symbols"].number


def check_proto_batch(data: bytes, limits: Limits) -> None:
    """``LimitExceeded`` unless the unparsed ``CommandBatch`` ``data`` is within ``limits``' bytes and count (a pure
    function of the bytes: the durable NATS path applies it on replay too)."""
    if len(data) > limits.max_proto_bytes:
        raise LimitExceeded(f"a request is at most {limits.max_proto_bytes} bytes, got {len(data)}", "max_proto_bytes")
    if field_exceeds(data, _COMMANDS_FIELD, limits.max_batch):
        raise LimitExceeded(f"a batch holds at most {limits.max_batch} commands", "max_batch")


def distinct(symbols: Sequence[str]) -> list[str]:
    """``symbols`` without repeats, in first-seen order."""
    return list(dict.fromkeys(symbols))
