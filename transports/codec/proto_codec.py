"""Protobuf form of commands, events, market data, queries and stats.

Schema: protos/exchange/v1/exchange.proto (docs/wire-schema.md). This module
mirrors ``json_codec`` function for function; gRPC and every other binary
transport go through it, none builds these messages by hand. Rules:

* Prices and quantities are decimal strings, converted exactly through the
  symbol's ``Instrument`` (``decimals.converter``); the empty string means zero
  or absent. Encoding writes the canonical spelling.
* Enums travel as the engine's own numbers; 0 (``*_UNSPECIFIED``) is the
  default of an optional field and "missing" for a required one.
* ``encode_*`` return messages (``SerializeToString()`` gives bytes);
  ``decode_*`` take a message or its bytes (gRPC hands over parsed messages,
  other transports bytes).
* Decoding is strict and total: bytes that do not parse, a missing oneof, an
  unknown enum number, a bad decimal or an unknown symbol raise
  ``MalformedMessage`` (``InvalidDecimal`` for an inexact price or quantity)
  with a stable ``RejectReason``, and nothing else ever escapes.
* Encoding trusts its input (it comes from the engine or a typed client) but
  needs the instrument of any symbol whose prices it writes: an unknown one is
  ``MalformedMessage`` (``UNKNOWN_SYMBOL``), never a lossy guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import IntEnum
from typing import Any, TypeVar, cast

from google.protobuf.message import DecodeError, Message

from engine import (
    AddInstrument,
    BookDelta,
    BookDepth,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    ExchangeError,
    Instrument,
    InstrumentAdded,
    L2Level,
    MalformedMessage,
    MassCancel,
    NotConnected,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderType,
    OrderView,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    StopTriggered,
    TimeInForce,
    TradeExecuted,
)

try:
    from protos.exchange.v1 import exchange_pb2 as pb
except ImportError as exc:  # pragma: no cover - a checkout where `make setup` has not run
    raise ImportError(f"{exc}: the protobuf code is generated from protos/exchange/v1/exchange.proto by `make setup`") from exc
from transports.codec.decimals import DecimalConverter, converter
from transports.codec.json_codec import InstrumentLookup, check_place_fields
from transports.codec.market_messages import BookSnapshot, Fill, Gap, MarketData, MarketEvent, MarketUpdate, PublicTrade

__all__ = [
    "CommandMessage",
    "decode_book",
    "decode_command",
    "decode_commands",
    "decode_error",
    "decode_event",
    "decode_fill",
    "decode_instrument",
    "decode_instruments",
    "decode_market_data",
    "decode_order_status",
    "decode_order_view",
    "decode_replies",
    "decode_reply",
    "decode_stats",
    "encode_book",
    "encode_command",
    "encode_commands",
    "encode_event",
    "encode_fill",
    "encode_instrument",
    "encode_instruments",
    "encode_market_data",
    "encode_order_status",
    "encode_order_view",
    "encode_refused",
    "encode_replies",
    "encode_reply",
    "encode_stats",
    "error_reply",
    "pb",
]

M = TypeVar("M", bound=Message)
E = TypeVar("E", bound=IntEnum)

# The same input limits as json_codec.
_MAX_TEXT = 64
_MAX_BATCH = 100_000
_MAX_ORDER_ID = 2**63

CommandMessage = pb.Command | pb.PlaceOrder | pb.CancelOrder | pb.ReplaceOrder | pb.MassCancel | pb.AddInstrument
Bytes = bytes | bytearray | memoryview


# --------------------------------------------------------------- bytes level
def _parse(kind: type[M], data: M | Bytes) -> M:
    if isinstance(data, kind):
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        message = kind()
        try:
            message.ParseFromString(bytes(data))
        except DecodeError:
            raise MalformedMessage(f"not a valid {kind.__name__} message") from None
        return message
    raise MalformedMessage(f"expected {kind.__name__} or its bytes, got {type(data).__name__}")


def parse_message(kind: type[M], data: M | Bytes) -> M:
    """A request message of ``kind`` from its bytes (empty bytes: every field at its default).

    Anything that does not parse is ``MalformedMessage``: the servers' query handlers call this.
    """
    return _parse(kind, data)


# ------------------------------------------------------------------- enums
def _to_wire(kind: type[E]) -> dict[E, int]:
    """Engine enum member -> protobuf enum number (the same number; a test checks the names)."""
    return {member: int(member) for member in kind}


def _from_wire(kind: type[E]) -> dict[int, E]:
    return {int(member): member for member in kind}


# The generated stubs type enum fields as the protobuf enum classes; the numbers are the engine's.
_PB_SIDE = cast(dict[Side, pb.Side], _to_wire(Side))
_PB_ORDER_TYPE = cast(dict[OrderType, pb.OrderType], _to_wire(OrderType))
_PB_TIF = cast(dict[TimeInForce, pb.TimeInForce], _to_wire(TimeInForce))
_PB_STP = cast(dict[SelfTradePrevention, pb.SelfTradePrevention], _to_wire(SelfTradePrevention))
_PB_STATUS = cast(dict[OrderStatus, pb.OrderStatus], _to_wire(OrderStatus))
_PB_CANCEL = cast(dict[CancelReason, pb.CancelReason], _to_wire(CancelReason))
_PB_REJECT = cast(dict[RejectReason, pb.RejectReason], _to_wire(RejectReason))

_SIDE = _from_wire(Side)
_ORDER_TYPE = _from_wire(OrderType)
_TIF = _from_wire(TimeInForce)
_STP = _from_wire(SelfTradePrevention)
_STATUS = _from_wire(OrderStatus)
_CANCEL = _from_wire(CancelReason)
_REJECT = _from_wire(RejectReason)


def _enum(table: dict[int, E], value: int, field: str, default: E | None = None) -> E:
    if value == 0:
        if default is None:
            raise MalformedMessage(f"missing field {field!r}")
        return default
    member = table.get(value)
    if member is None:
        raise MalformedMessage(f"field {field!r} has an unknown value {value}")
    return member


# ----------------------------------------------------------- field helpers
def _text(value: str, field: str, required: bool = True) -> str:
    if not value:
        if required:
            raise MalformedMessage(f"missing field {field!r}")
        return ""
    if len(value) > _MAX_TEXT:
        raise MalformedMessage(f"field {field!r} is longer than {_MAX_TEXT} characters")
    return value


def _order_id(value: int) -> int:
    if value >= _MAX_ORDER_ID:
        raise MalformedMessage("field 'order_id' must be a positive integer below 2**63")
    return value


def _request_id(value: int) -> int:
    if value >= _MAX_ORDER_ID:
        raise MalformedMessage("field 'request_id' must be a positive integer below 2**63")
    return value


def _converter(instruments: InstrumentLookup, symbol: str) -> DecimalConverter:
    instrument = instruments(symbol)
    if instrument is None:
        raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)
    return converter(instrument)


def _price_out(conv: DecimalConverter, ticks: int) -> str:
    return conv.format_price(ticks) if ticks else ""


def _qty_out(conv: DecimalConverter, lots: int) -> str:
    return conv.format_qty(lots) if lots else ""


def _price_in(conv: DecimalConverter, text: str) -> int:
    return conv.parse_price(text) if text else 0


def _qty_in(conv: DecimalConverter, text: str) -> int:
    return conv.parse_qty(text) if text else 0


# ------------------------------------------------------------- instruments
def encode_instrument(instrument: Instrument) -> pb.Instrument:
    conv = converter(instrument)
    return pb.Instrument(
        symbol=instrument.symbol,
        tick_size=format(instrument.tick_size, "f"),
        lot_size=format(instrument.lot_size, "f"),
        min_qty=conv.format_qty(instrument.min_qty),
        max_qty=conv.format_qty(instrument.max_qty),
        price_band_bps=instrument.price_band_bps,
        reference_price=_price_out(conv, instrument.reference_price),
    )


def decode_instrument(data: pb.Instrument | Bytes) -> Instrument:
    """An instrument from the wire; any problem is ``MalformedMessage`` (``INVALID_INSTRUMENT``)."""
    m = _parse(pb.Instrument, data)
    try:
        return Instrument.create(
            m.symbol,
            m.tick_size,
            m.lot_size,
            m.min_qty or None,
            m.max_qty or None,
            m.price_band_bps,
            m.reference_price or None,
        )
    except ExchangeError as exc:
        raise MalformedMessage(exc.message, RejectReason.INVALID_INSTRUMENT) from None


def encode_instruments(instruments: Iterable[Instrument]) -> pb.InstrumentList:
    return pb.InstrumentList(instruments=[encode_instrument(i) for i in instruments])


def decode_instruments(data: pb.InstrumentList | Bytes) -> list[Instrument]:
    return [decode_instrument(m) for m in _parse(pb.InstrumentList, data).instruments]


# ---------------------------------------------------------------- commands
def _decode_place(m: pb.PlaceOrder, instruments: InstrumentLookup, trader: str | None) -> PlaceOrder:
    symbol = _text(m.symbol, "symbol")
    conv = _converter(instruments, symbol)
    side = _enum(_SIDE, m.side, "side")
    order_type = _enum(_ORDER_TYPE, m.order_type, "order_type", OrderType.LIMIT)
    tif = _enum(_TIF, m.tif, "tif", TimeInForce.GTC)
    stp = _enum(_STP, m.stp, "stp", SelfTradePrevention.CANCEL_NEWEST)
    check_place_fields(order_type, tif, bool(m.price), bool(m.stop_price), m.post_only)
    if not m.qty:
        raise MalformedMessage("missing field 'qty'")
    return PlaceOrder(
        trader if trader is not None else _text(m.trader, "trader"),
        _text(m.client_order_id, "client_order_id", required=False),
        symbol,
        side,
        _positive_qty(conv, m.qty, "qty"),
        _positive_price(conv, m.price, "price"),
        order_type,
        tif,
        m.post_only,
        _positive_price(conv, m.stop_price, "stop_price"),
        stp,
    )


def _positive_price(conv: DecimalConverter, text: str, field: str) -> int:
    """A price given (not empty) is positive: "0" is refused, only the empty string means absent."""
    if not text:
        return 0
    ticks = conv.parse_price(text)
    if ticks <= 0:
        raise MalformedMessage(f"field {field!r} must be positive, got {text!r}", RejectReason.INVALID_PRICE)
    return ticks


def _positive_qty(conv: DecimalConverter, text: str, field: str) -> int:
    if not text:
        return 0
    lots = conv.parse_qty(text)
    if lots <= 0:
        raise MalformedMessage(f"field {field!r} must be positive, got {text!r}", RejectReason.INVALID_QUANTITY)
    return lots


def _decode_cancel(m: pb.CancelOrder, instruments: InstrumentLookup, trader: str | None) -> CancelOrder:
    order_id = _order_id(m.order_id)
    client_order_id = _text(m.client_order_id, "client_order_id", required=False)
    if not order_id and not client_order_id:
        raise MalformedMessage("a cancel needs order_id or client_order_id")
    return CancelOrder(trader if trader is not None else _text(m.trader, "trader"), order_id, client_order_id, _request_id(m.request_id))


def _decode_replace(m: pb.ReplaceOrder, instruments: InstrumentLookup, trader: str | None) -> ReplaceOrder:
    symbol = _text(m.symbol, "symbol")
    conv = _converter(instruments, symbol)
    if not m.new_price and not m.new_qty:
        raise MalformedMessage("a replace needs a new price, a new qty, or both")
    order_id = _order_id(m.order_id)
    client_order_id = _text(m.client_order_id, "client_order_id", required=False)
    if not order_id and not client_order_id:
        raise MalformedMessage("a replace needs order_id or client_order_id")
    return ReplaceOrder(
        trader if trader is not None else _text(m.trader, "trader"),
        order_id,
        _positive_price(conv, m.new_price, "new_price"),
        _positive_qty(conv, m.new_qty, "new_qty"),
        symbol,
        client_order_id,
        _request_id(m.request_id),
    )


def _decode_mass_cancel(m: pb.MassCancel, instruments: InstrumentLookup, trader: str | None) -> MassCancel:
    name = trader if trader is not None else _text(m.trader, "trader")
    return MassCancel(name, _text(m.symbol, "symbol", required=False), CancelReason.MASS_CANCEL, _request_id(m.request_id))


def _decode_add_instrument(m: pb.AddInstrument, instruments: InstrumentLookup, trader: str | None) -> AddInstrument:
    if not m.HasField("instrument"):
        raise MalformedMessage("missing field 'instrument'", RejectReason.INVALID_INSTRUMENT)
    return AddInstrument(decode_instrument(m.instrument))


_COMMAND_DECODERS: dict[type[Message], Callable[[Any, InstrumentLookup, str | None], Command]] = {
    pb.PlaceOrder: _decode_place,
    pb.CancelOrder: _decode_cancel,
    pb.ReplaceOrder: _decode_replace,
    pb.MassCancel: _decode_mass_cancel,
    pb.AddInstrument: _decode_add_instrument,
}


def decode_command(data: CommandMessage | Bytes, instruments: InstrumentLookup, trader: str | None = None) -> Command:
    """Decode a ``Command`` (message or bytes), or one bare command message (a unary rpc's request).

    ``trader``, when given, is the authenticated trader of the connection: it
    overrides (and makes unnecessary) the ``trader`` field.
    """
    message: Message = _parse(pb.Command, data) if isinstance(data, bytes | bytearray | memoryview) else data
    if type(message) is pb.Command:
        kind = message.WhichOneof("kind")
        if kind is None:
            raise MalformedMessage("a command needs one of place, cancel, replace, mass_cancel, add_instrument")
        message = getattr(message, kind)
    decoder = _COMMAND_DECODERS.get(type(message))
    if decoder is None:
        raise MalformedMessage(f"not a command: {type(message).__name__}")
    try:
        return decoder(message, instruments, trader)
    except MalformedMessage:
        raise
    except ExchangeError as exc:  # keeps its reason
        raise MalformedMessage(exc.message, exc.reason) from None


def decode_commands(data: pb.CommandBatch | Bytes, instruments: InstrumentLookup, trader: str | None = None) -> list[Command]:
    """Decode a ``CommandBatch`` (all or nothing). Its ``batch_id`` is the caller's to echo."""
    batch = _parse(pb.CommandBatch, data)
    if len(batch.commands) > _MAX_BATCH:
        raise MalformedMessage(f"a batch holds at most {_MAX_BATCH} commands")
    return [decode_command(item, instruments, trader) for item in batch.commands]


# Payloads are built as dicts: the protobuf runtime fills a nested message from
# a mapping in place, where a message argument would be built and then copied.
def _encode_place(command: PlaceOrder, instruments: InstrumentLookup) -> dict[str, Any]:
    conv = _converter(instruments, command.symbol)
    return dict(
        trader=command.trader,
        client_order_id=command.client_order_id,
        symbol=command.symbol,
        side=_PB_SIDE[command.side],
        qty=conv.format_qty(command.qty),  # required: written even when zero
        price=_price_out(conv, command.price),
        order_type=_PB_ORDER_TYPE[command.order_type],
        tif=_PB_TIF[command.tif],
        post_only=command.post_only,
        stop_price=_price_out(conv, command.stop_price),
        stp=_PB_STP[command.stp],
    )


def _encode_replace(command: ReplaceOrder, instruments: InstrumentLookup) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "trader": command.trader,
        "order_id": command.order_id,
        "client_order_id": command.client_order_id,
        "symbol": command.symbol,
        "request_id": command.request_id,
    }
    if command.new_price or command.new_qty:
        conv = _converter(instruments, command.symbol)
        fields["new_price"] = _price_out(conv, command.new_price)
        fields["new_qty"] = _qty_out(conv, command.new_qty)
    return fields


def _command_fields(command: Command, instruments: InstrumentLookup) -> dict[str, Any]:
    if isinstance(command, PlaceOrder):
        return dict(place=_encode_place(command, instruments))
    if isinstance(command, CancelOrder):
        return dict(
            cancel=dict(
                trader=command.trader, order_id=command.order_id, client_order_id=command.client_order_id, request_id=command.request_id
            )
        )
    if isinstance(command, ReplaceOrder):
        return dict(replace=_encode_replace(command, instruments))
    if isinstance(command, MassCancel):
        return dict(mass_cancel=dict(trader=command.trader, symbol=command.symbol, request_id=command.request_id))
    return dict(add_instrument=dict(instrument=encode_instrument(command.instrument)))


def encode_command(command: Command, instruments: InstrumentLookup) -> pb.Command:
    return pb.Command(**_command_fields(command, instruments))


def encode_commands(commands: Iterable[Command], instruments: InstrumentLookup, batch_id: int = 0) -> pb.CommandBatch:
    return pb.CommandBatch(commands=[_command_fields(c, instruments) for c in commands], batch_id=batch_id)


# ------------------------------------------------------------------ events
def _encode_book_delta(e: BookDelta, instruments: InstrumentLookup) -> dict[str, Any]:
    conv = _converter(instruments, e.symbol)
    return dict(
        symbol=e.symbol,
        side=_PB_SIDE[e.side],
        price=_price_out(conv, e.price),
        qty=_qty_out(conv, e.qty),
        order_count=e.order_count,
    )


def _encode_public_trade(e: PublicTrade | TradeExecuted, instruments: InstrumentLookup) -> dict[str, Any]:
    """A ``Trade`` (market data): the fields everyone may see, the same numbers as ``TradeExecuted``'s first five."""
    conv = _converter(instruments, e.symbol)
    return dict(
        trade_id=e.trade_id,
        symbol=e.symbol,
        price=_price_out(conv, e.price),
        qty=_qty_out(conv, e.qty),
        aggressor_side=_PB_SIDE[e.aggressor_side],
    )


def _encode_trade(e: TradeExecuted, instruments: InstrumentLookup) -> dict[str, Any]:
    conv = _converter(instruments, e.symbol)
    return dict(
        _encode_public_trade(e, instruments),
        maker_order_id=e.maker_order_id,
        maker_trader=e.maker_trader,
        maker_client_order_id=e.maker_client_order_id,
        maker_remaining=_qty_out(conv, e.maker_remaining),
        taker_order_id=e.taker_order_id,
        taker_trader=e.taker_trader,
        taker_client_order_id=e.taker_client_order_id,
        taker_remaining=_qty_out(conv, e.taker_remaining),
    )


def _order_head(order_id: int, trader: str, client_order_id: str, symbol: str) -> dict[str, Any]:
    return dict(order_id=order_id, trader=trader, client_order_id=client_order_id, symbol=symbol)


def _encode_accepted(e: OrderAccepted, instruments: InstrumentLookup) -> dict[str, Any]:
    conv = _converter(instruments, e.symbol)
    return dict(
        **_order_head(e.order_id, e.trader, e.client_order_id, e.symbol),
        side=_PB_SIDE[e.side],
        order_type=_PB_ORDER_TYPE[e.order_type],
        tif=_PB_TIF[e.tif],
        price=_price_out(conv, e.price),
        qty=_qty_out(conv, e.qty),
        stop_price=_price_out(conv, e.stop_price),
    )


def _encode_cancelled(e: OrderCancelled, instruments: InstrumentLookup) -> dict[str, Any]:
    conv = _converter(instruments, e.symbol)
    head = _order_head(e.order_id, e.trader, e.client_order_id, e.symbol)
    return dict(**head, reason=_PB_CANCEL[e.reason], qty=_qty_out(conv, e.qty), remaining=_qty_out(conv, e.remaining))


def _encode_rejected(e: OrderRejected, instruments: InstrumentLookup) -> dict[str, Any]:
    reason = _PB_REJECT[e.reason]
    return dict(trader=e.trader, client_order_id=e.client_order_id, symbol=e.symbol, reason=reason, message=e.message, order_id=e.order_id)


def _encode_replaced(e: OrderReplaced, instruments: InstrumentLookup) -> dict[str, Any]:
    conv = _converter(instruments, e.symbol)
    head = _order_head(e.order_id, e.trader, e.client_order_id, e.symbol)
    price, qty = _price_out(conv, e.price), _qty_out(conv, e.qty)
    return dict(**head, side=_PB_SIDE[e.side], price=price, qty=qty, priority_kept=e.priority_kept)


def _encode_stop_triggered(e: StopTriggered, instruments: InstrumentLookup) -> dict[str, Any]:
    conv = _converter(instruments, e.symbol)
    head = _order_head(e.order_id, e.trader, e.client_order_id, e.symbol)
    return dict(**head, stop_price=_price_out(conv, e.stop_price), last_price=_price_out(conv, e.last_price))


def _encode_instrument_added(e: InstrumentAdded, instruments: InstrumentLookup) -> dict[str, Any]:
    return dict(instrument=encode_instrument(e.instrument))


# One encoder per event type and the Event oneof field it fills: the one place that lists them.
_EVENT_ENCODERS: dict[type, tuple[str, Callable[[Any, InstrumentLookup], dict[str, Any]]]] = {
    BookDelta: ("book_delta", _encode_book_delta),
    OrderAccepted: ("accepted", _encode_accepted),
    TradeExecuted: ("trade", _encode_trade),
    OrderCancelled: ("cancelled", _encode_cancelled),
    OrderRejected: ("rejected", _encode_rejected),
    OrderReplaced: ("replaced", _encode_replaced),
    StopTriggered: ("stop_triggered", _encode_stop_triggered),
    InstrumentAdded: ("instrument_added", _encode_instrument_added),
}


def _event_fields(event: Event, instruments: InstrumentLookup) -> dict[str, Any]:
    field, encoder = _EVENT_ENCODERS[type(event)]
    return {"seq": event.seq, field: encoder(event, instruments)}


def encode_event(event: Event, instruments: InstrumentLookup) -> pb.Event:
    """One event in its ``Event`` envelope (which carries ``seq``)."""
    return pb.Event(**_event_fields(event, instruments))


def _decode_book_delta(seq: int, m: pb.BookDelta, instruments: InstrumentLookup) -> BookDelta:
    conv = _converter(instruments, m.symbol)
    return BookDelta(seq, m.symbol, _enum(_SIDE, m.side, "side"), _price_in(conv, m.price), _qty_in(conv, m.qty), m.order_count)


def _decode_trade(seq: int, m: pb.TradeExecuted, instruments: InstrumentLookup) -> TradeExecuted:
    conv = _converter(instruments, m.symbol)
    return TradeExecuted(
        seq,
        m.trade_id,
        m.symbol,
        _price_in(conv, m.price),
        _qty_in(conv, m.qty),
        _enum(_SIDE, m.aggressor_side, "aggressor_side"),
        m.maker_order_id,
        m.maker_trader,
        m.maker_client_order_id,
        _qty_in(conv, m.maker_remaining),
        m.taker_order_id,
        m.taker_trader,
        m.taker_client_order_id,
        _qty_in(conv, m.taker_remaining),
    )


def _decode_accepted(seq: int, m: pb.OrderAccepted, instruments: InstrumentLookup) -> OrderAccepted:
    conv = _converter(instruments, m.symbol)
    return OrderAccepted(
        seq,
        m.order_id,
        m.trader,
        m.client_order_id,
        m.symbol,
        _enum(_SIDE, m.side, "side"),
        _enum(_ORDER_TYPE, m.order_type, "order_type"),
        _enum(_TIF, m.tif, "tif"),
        _price_in(conv, m.price),
        _qty_in(conv, m.qty),
        _price_in(conv, m.stop_price),
    )


def _decode_cancelled(seq: int, m: pb.OrderCancelled, instruments: InstrumentLookup) -> OrderCancelled:
    conv = _converter(instruments, m.symbol)
    return OrderCancelled(
        seq,
        m.order_id,
        m.trader,
        m.client_order_id,
        m.symbol,
        _enum(_CANCEL, m.reason, "reason"),
        _qty_in(conv, m.qty),
        _qty_in(conv, m.remaining),
    )


def _decode_rejected(seq: int, m: pb.OrderRejected, instruments: InstrumentLookup) -> OrderRejected:
    return OrderRejected(seq, m.trader, m.client_order_id, m.symbol, _enum(_REJECT, m.reason, "reason"), m.message, m.order_id)


def _decode_replaced(seq: int, m: pb.OrderReplaced, instruments: InstrumentLookup) -> OrderReplaced:
    conv = _converter(instruments, m.symbol)
    return OrderReplaced(
        seq,
        m.order_id,
        m.trader,
        m.client_order_id,
        m.symbol,
        _enum(_SIDE, m.side, "side"),
        _price_in(conv, m.price),
        _qty_in(conv, m.qty),
        m.priority_kept,
    )


def _decode_stop_triggered(seq: int, m: pb.StopTriggered, instruments: InstrumentLookup) -> StopTriggered:
    conv = _converter(instruments, m.symbol)
    return StopTriggered(
        seq, m.order_id, m.trader, m.client_order_id, m.symbol, _price_in(conv, m.stop_price), _price_in(conv, m.last_price)
    )


def _decode_instrument_added(seq: int, m: pb.InstrumentAdded, instruments: InstrumentLookup) -> InstrumentAdded:
    if not m.HasField("instrument"):
        raise MalformedMessage("missing field 'instrument'")
    return InstrumentAdded(seq, decode_instrument(m.instrument))


_EVENT_DECODERS: dict[str, Callable[[int, Any, InstrumentLookup], Event]] = {
    "book_delta": _decode_book_delta,
    "trade": _decode_trade,
    "accepted": _decode_accepted,
    "cancelled": _decode_cancelled,
    "rejected": _decode_rejected,
    "replaced": _decode_replaced,
    "stop_triggered": _decode_stop_triggered,
    "instrument_added": _decode_instrument_added,
}


def decode_event(data: pb.Event | Bytes, instruments: InstrumentLookup) -> Event:
    """Inverse of ``encode_event`` (clients use it to read replies)."""
    message = _parse(pb.Event, data)
    kind = message.WhichOneof("kind")
    if kind is None:
        raise MalformedMessage("an event needs one of " + ", ".join(_EVENT_DECODERS))
    return _EVENT_DECODERS[kind](message.seq, getattr(message, kind), instruments)


def encode_reply(events: Iterable[Event], instruments: InstrumentLookup) -> pb.Reply:
    return pb.Reply(events=[_event_fields(e, instruments) for e in events])


def decode_reply(data: pb.Reply | Bytes, instruments: InstrumentLookup) -> list[Event]:
    return [decode_event(e, instruments) for e in _parse(pb.Reply, data).events]


def encode_replies(replies: Iterable[Iterable[Event]], instruments: InstrumentLookup, batch_id: int = 0) -> pb.ReplyBatch:
    """The answer to a ``CommandBatch``: one ``Reply`` per command, in order."""
    return pb.ReplyBatch(replies=[{"events": [_event_fields(e, instruments) for e in r]} for r in replies], batch_id=batch_id)


def encode_refused(error: ExchangeError, batch_id: int = 0) -> pb.ReplyBatch:
    """The answer to a ``CommandBatch`` refused whole (did not decode, gateway overloaded)."""
    return pb.ReplyBatch(batch_id=batch_id, error=error_reply(error))


def decode_replies(data: pb.ReplyBatch | Bytes, instruments: InstrumentLookup) -> list[list[Event]]:
    """Each command's events; a refused batch raises its error (``decode_error``)."""
    batch = _parse(pb.ReplyBatch, data)
    if batch.HasField("error"):
        raise decode_error(batch.error)
    return [[decode_event(e, instruments) for e in reply.events] for reply in batch.replies]


# ------------------------------------------------------------------ errors
def error_reply(error: ExchangeError) -> pb.Error:
    """The message for input that never reached the engine (the twin of ``json_codec.error_reply``)."""
    return pb.Error(reason=_PB_REJECT[error.reason], code=int(error.reason), message=error.message)


# A client re-raises an error reply as the class a caller catches: Overloaded
# and NotConnected mean "nothing applied, retry"; the rest did not decode.
_ERROR_CLASSES: dict[RejectReason, type[ExchangeError]] = {
    RejectReason.OVERLOADED: Overloaded,
    RejectReason.UNAVAILABLE: NotConnected,
    RejectReason.INTERNAL_ERROR: ExchangeError,
}


def decode_error(data: pb.Error | Bytes) -> ExchangeError:
    """The exception an ``Error`` stands for (to raise on the client side). An unknown reason is INTERNAL_ERROR."""
    message = _parse(pb.Error, data)
    reason = _REJECT.get(message.reason) or _REJECT.get(message.code) or RejectReason.INTERNAL_ERROR
    return _ERROR_CLASSES.get(reason, MalformedMessage)(message.message, reason)


# ------------------------------------------------------- queries and views
def _encode_levels(conv: DecimalConverter, levels: Sequence[L2Level]) -> list[dict[str, Any]]:
    fp = conv.format_price
    fq = conv.format_qty
    return [{"price": fp(lv.price), "qty": fq(lv.qty), "order_count": lv.order_count} for lv in levels]


def _decode_levels(conv: DecimalConverter, levels: Iterable[pb.Level]) -> list[L2Level]:
    return [L2Level(_price_in(conv, lv.price), _qty_in(conv, lv.qty), lv.order_count) for lv in levels]


def encode_book(depth: BookDepth, instruments: InstrumentLookup) -> pb.BookDepth:
    conv = _converter(instruments, depth.symbol)
    return pb.BookDepth(
        symbol=depth.symbol,
        seq=depth.seq,
        bids=_encode_levels(conv, depth.bids),
        asks=_encode_levels(conv, depth.asks),
        last_price=_price_out(conv, depth.last_price),
    )


def decode_book(data: pb.BookDepth | Bytes, instruments: InstrumentLookup) -> BookDepth:
    m = _parse(pb.BookDepth, data)
    conv = _converter(instruments, m.symbol)
    return BookDepth(m.symbol, m.seq, _decode_levels(conv, m.bids), _decode_levels(conv, m.asks), _price_in(conv, m.last_price))


def encode_order_view(view: OrderView, instruments: InstrumentLookup) -> pb.OrderView:
    conv = _converter(instruments, view.symbol)
    return pb.OrderView(
        order_id=view.order_id,
        trader=view.trader,
        client_order_id=view.client_order_id,
        symbol=view.symbol,
        side=_PB_SIDE[view.side],
        order_type=_PB_ORDER_TYPE[view.order_type],
        tif=_PB_TIF[view.tif],
        price=_price_out(conv, view.price),
        stop_price=_price_out(conv, view.stop_price),
        remaining=_qty_out(conv, view.remaining),
        filled=_qty_out(conv, view.filled),
        status=_PB_STATUS[view.status],
    )


def decode_order_view(data: pb.OrderView | Bytes, instruments: InstrumentLookup) -> OrderView:
    m = _parse(pb.OrderView, data)
    conv = _converter(instruments, m.symbol)
    return OrderView(
        m.order_id,
        m.trader,
        m.client_order_id,
        m.symbol,
        _enum(_SIDE, m.side, "side"),
        _enum(_ORDER_TYPE, m.order_type, "order_type"),
        _enum(_TIF, m.tif, "tif"),
        _price_in(conv, m.price),
        _price_in(conv, m.stop_price),
        _qty_in(conv, m.remaining),
        _qty_in(conv, m.filled),
        _enum(_STATUS, m.status, "status"),
    )


def encode_order_status(view: OrderView | None, instruments: InstrumentLookup) -> pb.OrderStatusReply:
    """The answer to ``GetOrder``: the view, or nothing when the trader has no such order."""
    if view is None:
        return pb.OrderStatusReply()
    return pb.OrderStatusReply(order=encode_order_view(view, instruments))


def decode_order_status(data: pb.OrderStatusReply | Bytes, instruments: InstrumentLookup) -> OrderView | None:
    m = _parse(pb.OrderStatusReply, data)
    return decode_order_view(m.order, instruments) if m.HasField("order") else None


# ------------------------------------------------------------- market data
def _decode_public_trade(seq: int, m: pb.Trade, instruments: InstrumentLookup) -> PublicTrade:
    conv = _converter(instruments, m.symbol)
    return PublicTrade(
        seq, m.trade_id, m.symbol, _price_in(conv, m.price), _qty_in(conv, m.qty), _enum(_SIDE, m.aggressor_side, "aggressor_side")
    )


def encode_market_data(item: MarketData, instruments: InstrumentLookup) -> pb.MarketDataMessage:
    if isinstance(item, MarketUpdate):
        event = item.event
        if type(event) is BookDelta:
            update = pb.MarketUpdate(
                md_seq=item.md_seq, seq=event.seq, book_delta=_encode_book_delta(event, instruments), applied_mono_ns=item.applied_mono_ns
            )
        else:
            assert isinstance(event, PublicTrade)
            update = pb.MarketUpdate(
                md_seq=item.md_seq, seq=event.seq, trade=_encode_public_trade(event, instruments), applied_mono_ns=item.applied_mono_ns
            )
        return pb.MarketDataMessage(update=update)
    if isinstance(item, BookSnapshot):
        return pb.MarketDataMessage(
            snapshot=pb.BookSnapshot(symbol=item.symbol, md_seq=item.md_seq, depth=encode_book(item.depth, instruments))
        )
    return pb.MarketDataMessage(gap=pb.Gap(symbol=item.symbol, last_md_seq=item.last_md_seq, dropped=item.dropped))


def decode_market_data(data: pb.MarketDataMessage | Bytes, instruments: InstrumentLookup) -> MarketData:
    message = _parse(pb.MarketDataMessage, data)
    kind = message.WhichOneof("kind")
    if kind == "update":
        update = message.update
        which = update.WhichOneof("kind")
        event: MarketEvent
        if which == "book_delta":
            event = _decode_book_delta(update.seq, update.book_delta, instruments)
        elif which == "trade":
            event = _decode_public_trade(update.seq, update.trade, instruments)
        else:
            raise MalformedMessage("a market update needs book_delta or trade")
        return MarketUpdate(event.symbol, update.md_seq, event, update.applied_mono_ns)
    if kind == "snapshot":
        snapshot = message.snapshot
        depth = decode_book(snapshot.depth, instruments)
        if depth.symbol != snapshot.symbol:
            raise MalformedMessage("a book snapshot's depth is of another symbol")
        return BookSnapshot(snapshot.symbol, snapshot.md_seq, depth)
    if kind == "gap":
        return Gap(message.gap.symbol, message.gap.last_md_seq, message.gap.dropped)
    raise MalformedMessage("a market-data message needs snapshot, update or gap")


# ------------------------------------------------------------ private fills
def encode_fill(fill: Fill, instruments: InstrumentLookup) -> pb.Fill:
    """A trader's own fill (``rpc Fills``): its order, never the counterparty."""
    conv = _converter(instruments, fill.symbol)
    return pb.Fill(
        seq=fill.seq,
        trade_id=fill.trade_id,
        symbol=fill.symbol,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id,
        side=_PB_SIDE[fill.side],
        price=_price_out(conv, fill.price),
        qty=_qty_out(conv, fill.qty),
        remaining=_qty_out(conv, fill.remaining),
        maker=fill.maker,
    )


def decode_fill(data: pb.Fill | Bytes, instruments: InstrumentLookup) -> Fill:
    m = _parse(pb.Fill, data)
    conv = _converter(instruments, m.symbol)
    return Fill(
        m.seq,
        m.trade_id,
        m.symbol,
        m.order_id,
        m.client_order_id,
        _enum(_SIDE, m.side, "side"),
        _price_in(conv, m.price),
        _qty_in(conv, m.qty),
        _qty_in(conv, m.remaining),
        m.maker,
    )


# ------------------------------------------------------------------- stats
_STATS_COUNTERS = (
    "orders",
    "accepted",
    "rejected",
    "trades",
    "overloaded",
    "queue_depth",
    "batches",
    "fsyncs",
    "engine_seq",
    "recovered_commands",
    "market_data_published",
    "market_data_subscribers",
    "market_data_gaps",
    "repeated_requests",
    "process_cpu_us",
    "peak_rss_bytes",
    "lean_bytes_in",
    "lean_bytes_out",
    "lean_commands",
)
_STATS_MAPS = ("commands", "rejected_by_reason", "cancelled_by_reason", "by_transport", "refused_by_reason", "limits_exceeded")
_STATS_LATENCIES = ("latency_us", "fsync_us")
_LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max")


def encode_stats(stats: Mapping[str, Any]) -> pb.Stats:
    """``Gateway.stats_dict()`` as a ``Stats`` message (every key it has; a test keeps them in step)."""
    message = pb.Stats()
    for name in _STATS_COUNTERS:
        setattr(message, name, int(stats.get(name, 0)))
    for name in _STATS_MAPS:
        getattr(message, name).update({str(k): int(v) for k, v in stats.get(name, {}).items()})
    for name in _STATS_LATENCIES:
        summary = getattr(message, name)
        for key, value in stats.get(name, {}).items():
            if key in _LATENCY_KEYS:
                setattr(summary, key, int(value))
    return message


def decode_stats(data: pb.Stats | Bytes) -> dict[str, Any]:
    """Inverse of ``encode_stats``: the same dict shape as ``Gateway.stats_dict()``."""
    message = _parse(pb.Stats, data)
    out: dict[str, Any] = {name: getattr(message, name) for name in _STATS_COUNTERS}
    for name in _STATS_MAPS:
        out[name] = dict(getattr(message, name))
    for name in _STATS_LATENCIES:
        summary = getattr(message, name)
        out[name] = {k: getattr(summary, k) for k in _LATENCY_KEYS}
    return out
