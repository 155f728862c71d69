"""The request handler: every rule that is the same on every wire, in one place.

A server frames requests and does I/O; it hands each request's bytes (or a
message its library already parsed) and the connection's trader to this
handler and writes back what it returns. The handler owns:

* limits, checked before the work they bound: request bytes before decoding,
  the command count before any command is built, the depth and the number of
  symbols of a query;
* identity: a connection without a trader may not trade or read orders, and
  the trader of every command is the connection's (whatever a client wrote);
* the admin check (``add_instrument``);
* the queries (book, order status, instruments, stats, snapshots);
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
from transports.core.gateway import Gateway, Replies
from transports.core.journal import trader_batch_record
from transports.core.limits import DEFAULT_DEPTH, MAX_DEPTH, MAX_TRADER_LENGTH, Limits

_log = logging.getLogger("dex.requests")

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
        self, gateway: Gateway, transport: str, limits: Limits | None = None, allow_admin: bool = False, submit: Submit | None = None
    ) -> None:
        self.gateway = gateway
        self.transport = transport
        # Where commands go: the gateway, or (a DHT node) the replicated log that feeds it. The gateway records lean
        # outcomes as it applies the commands, so their events need not be kept.
        self._submit: Submit = submit if submit is not None else gateway.submit
        self._lean_submit = gateway.submit if submit is None else None
        limits = limits if limits is not None else Limits()
        self.limits = Limits(min(limits.max_batch, gateway.config.buffer), limits.max_request_bytes, limits.max_snapshot_symbols)
        self.allow_admin = allow_admin
        self._lookup = gateway.instrument

    def refused(self, error: ExchangeError) -> None:
        """Count a request refused before the engine (servers call it for what they refuse themselves)."""
        self.gateway.stats.refused(self.transport, error.reason.name)

    # ------------------------------------------------------------- trading
    async def orders(self, data: bytes, trader: str | None) -> bytes:
        """The ``OutcomeBatch`` bytes answering the lean ``OrderBatch`` in ``data``, sent by ``trader``."""
        batch_id = 0
        try:
            self._check_size(len(data))
            message = lean.parse_orders(data)
            batch_id = message.batch_id
            if trader is None:
                raise Unidentified("say who you are first: this connection has no trader")
            commands = lean.decode_orders(message, trader, self.limits.max_batch)
            if self._lean_submit is not None:
                outcomes = lean.OutcomeColumns()
                await self._lean_submit(commands, self.transport, trader_batch_record(trader, data), outcomes)
                return outcomes.to_bytes(batch_id)
            replies = await self._submit(commands, self.transport, trader_batch_record(trader, data))
        except ExchangeError as exc:
            self.refused(exc)
            return lean.encode_refusal(exc, batch_id)
        return lean.encode_outcomes(commands, replies, batch_id)

    async def commands(self, data: pb.CommandBatch | bytes, trader: str | None) -> pb.ReplyBatch:
        """The ``ReplyBatch`` (every event of every command) answering a ``CommandBatch``."""
        batch_id = 0
        try:
            if not isinstance(data, pb.CommandBatch):
                self._check_size(len(data))
            batch = parse_message(pb.CommandBatch, data)
            batch_id = batch.batch_id
            commands = self._decode(batch, trader)
            replies = await self._submit(commands, self.transport, None)
            return encode_replies(replies, self._lookup, batch_id)
        except ExchangeError as exc:
            self.refused(exc)
            return encode_refused(exc, batch_id)

    def _decode(self, batch: pb.CommandBatch, trader: str | None) -> list[Command]:
        if trader is None:
            raise Unidentified("say who you are first: this connection has no trader")
        count = len(batch.commands)
        if count == 0:
            raise MalformedMessage("an empty batch")
        if count > self.limits.max_batch:
            raise MalformedMessage(f"a batch holds at most {self.limits.max_batch} commands, got {count}")
        commands = decode_commands(batch, self._lookup, trader)
        if not self.allow_admin and any(type(c) is AddInstrument for c in commands):
            raise ExchangeError("add_instrument needs a server started with --allow-admin", RejectReason.UNAUTHORIZED)
        return commands

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_request_bytes:
            raise MalformedMessage(f"a request is at most {self.limits.max_request_bytes} bytes, got {size}")

    # -------------------------------------------------------------- queries
    def book(self, data: pb.BookRequest | bytes) -> pb.BookDepth:
        request = parse_message(pb.BookRequest, data)
        depth = self.gateway.depth(request.symbol, min(request.depth or DEFAULT_DEPTH, MAX_DEPTH))
        if depth is None:
            raise MalformedMessage(f"unknown symbol {request.symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        return encode_book(depth, self._lookup)

    def order_status(self, data: pb.OrderStatusRequest | bytes, trader: str | None) -> pb.OrderStatusReply:
        """One of ``trader``'s orders (whatever trader the request names: a trader reads only its own)."""
        if trader is None:
            raise Unidentified("say who you are first: this connection has no trader")
        request = parse_message(pb.OrderStatusRequest, data)
        return encode_order_status(self.gateway.order_status(trader, request.order_id), self._lookup)

    def instruments(self) -> pb.InstrumentList:
        return encode_instruments(self.gateway.instruments)

    def stats(self) -> pb.Stats:
        return encode_stats(self.gateway.stats_dict())

    def snapshots(self, data: pb.MarketDataRequest | bytes) -> list[pb.MarketDataMessage]:
        """A ``BookSnapshot`` message per distinct symbol requested (duplicates collapsed, their number capped)."""
        request = parse_message(pb.MarketDataRequest, data)
        symbols = distinct(request.symbols)
        if not symbols:
            raise MalformedMessage("name the symbols to snapshot")
        if len(symbols) > self.limits.max_snapshot_symbols:
            raise MalformedMessage(f"a snapshot request names at most {self.limits.max_snapshot_symbols} symbols")
        out = []
        for symbol in symbols:
            try:
                snapshot = self.gateway.marketdata.snapshot(symbol)
            except KeyError:
                raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL) from None
            out.append(encode_market_data(snapshot, self._lookup))
        return out


def distinct(symbols: Sequence[str]) -> list[str]:
    """``symbols`` without repeats, in first-seen order."""
    return list(dict.fromkeys(symbols))
