"""JSON form of commands and events (the JSON Lines replay format, HTTP, WebSocket).

Schema: docs/json-format.md. Rules:

* Prices and quantities are decimal strings, converted exactly through the
  symbol's ``Instrument`` (never floats; a JSON number for a price is refused).
* Order vocabulary is lower case (``"buy"``, ``"limit"``, ``"gtc"``); reason
  codes are upper case names with their numeric ``code``.
* Decoding is strict: a missing required field, a field of the wrong type or an
  unknown field raises ``MalformedMessage`` with a stable reason; it never
  raises anything else (``KeyError``, ``ValueError`` ... are bugs).
* Decimal strings convert through ``decimals.converter`` (integer arithmetic
  and a small cache, identical to the ``Instrument`` methods).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any, TypeVar

import orjson

from engine import (
    AddInstrument,
    BookDelta,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    ExchangeError,
    Instrument,
    InstrumentAdded,
    MalformedMessage,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderType,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    StopTriggered,
    TimeInForce,
    TradeExecuted,
)
from transports.codec.decimals import DecimalConverter, converter

InstrumentLookup = Callable[[str], Instrument | None]
E = TypeVar("E", bound=IntEnum)

_MAX_TEXT = 64
_MAX_BATCH = 100_000


# --------------------------------------------------------------- bytes level
def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not valid JSON: {exc}") from None


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


# ----------------------------------------------------------- field helpers
def _obj(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedMessage("a command must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str, required: bool = True, default: str = "") -> str:
    if key not in data:
        if required:
            raise MalformedMessage(f"missing field {key!r}")
        return default
    value = data[key]
    if not isinstance(value, str):
        raise MalformedMessage(f"field {key!r} must be a string")
    if len(value) > _MAX_TEXT:
        raise MalformedMessage(f"field {key!r} is longer than {_MAX_TEXT} characters")
    return value


def _order_id(data: dict[str, Any], key: str = "order_id", required: bool = True) -> int:
    """An order id is a JSON integer (as events print it): never a string, a float or a bool."""
    if key not in data:
        if required:
            raise MalformedMessage(f"missing field {key!r}")
        return 0
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise MalformedMessage(f"field {key!r} must be a positive JSON integer")
    return value


def _names(kind: type[E]) -> dict[str, E]:
    return {member.name.lower(): member for member in kind}


_SIDES: dict[str, Side] = _names(Side)
_ORDER_TYPES: dict[str, OrderType] = _names(OrderType)
_TIFS: dict[str, TimeInForce] = _names(TimeInForce)
_STPS: dict[str, SelfTradePrevention] = _names(SelfTradePrevention)


def _enum(data: dict[str, Any], key: str, table: dict[str, E], default: E | None = None) -> E:
    """A lower-case name, exactly as docs/json-format.md spells it ("buy", never "BUY")."""
    if key not in data:
        if default is None:
            raise MalformedMessage(f"missing field {key!r}")
        return default
    value = data[key]
    member = table.get(value) if isinstance(value, str) else None
    if member is None:
        raise MalformedMessage(f"field {key!r} must be one of {', '.join(table)}")
    return member


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise MalformedMessage(f"field {key!r} must be true or false")
    return value


def _decimal(data: dict[str, Any], key: str) -> str | None:
    """A price or quantity field: a decimal string, never a JSON number (floats are inexact) nor null."""
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, str):
        return value
    raise MalformedMessage(
        f'field {key!r} must be a decimal string such as "100.25"',
        RejectReason.INVALID_QUANTITY if key == "qty" else RejectReason.INVALID_PRICE,
    )


def _positive_price(conv: DecimalConverter, text: str, key: str) -> int:
    ticks = conv.parse_price(text)
    if ticks <= 0:
        raise MalformedMessage(f"field {key!r} must be positive, got {text!r}", RejectReason.INVALID_PRICE)
    return ticks


def _positive_qty(conv: DecimalConverter, text: str, key: str) -> int:
    lots = conv.parse_qty(text)
    if lots <= 0:
        raise MalformedMessage(f"field {key!r} must be positive, got {text!r}", RejectReason.INVALID_QUANTITY)
    return lots


def check_place_fields(order_type: OrderType, tif: TimeInForce, has_price: bool, has_stop_price: bool, post_only: bool) -> None:
    """The fields a place may carry for its order type, the same rule in every form (JSON, protobuf, lean).

    A field the order type does not take is refused whatever its value
    (``INVALID_ORDER``, the engine's reason for the same combinations): a
    price on a market or stop-market order, a stop price on an order that is
    not a stop, ``post_only`` on anything but a GTC limit order. In JSON a
    field is given when its key is present; in protobuf and lean, when it is
    not at its default (0, "" or false: proto3 cannot tell those from absent).
    """
    if has_price and (order_type is OrderType.MARKET or order_type is OrderType.STOP_MARKET):
        raise MalformedMessage(f"a {order_type.name.lower()} order takes no price", RejectReason.INVALID_ORDER)
    if has_stop_price and order_type is not OrderType.STOP_MARKET and order_type is not OrderType.STOP_LIMIT:
        raise MalformedMessage("only stop orders take a stop price", RejectReason.INVALID_ORDER)
    if post_only and (order_type is not OrderType.LIMIT or tif is not TimeInForce.GTC):
        raise MalformedMessage("post_only is for GTC limit orders only", RejectReason.INVALID_ORDER)


def _instrument(instruments: InstrumentLookup, symbol: str) -> Instrument:
    instrument = instruments(symbol)
    if instrument is None:
        raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)
    return instrument


def _check_keys(data: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = data.keys() - allowed
    if extra:
        raise MalformedMessage(f"unknown field(s): {', '.join(sorted(map(str, extra)))}")


# ---------------------------------------------------------------- commands
_PLACE_KEYS = frozenset(
    {"type", "trader", "client_order_id", "symbol", "side", "order_type", "price", "qty", "tif", "post_only", "stop_price", "stp"}
)
_CANCEL_KEYS = frozenset({"type", "trader", "order_id", "client_order_id", "request_id"})
_REPLACE_KEYS = frozenset({"type", "trader", "order_id", "client_order_id", "symbol", "price", "qty", "request_id"})
_MASS_CANCEL_KEYS = frozenset({"type", "trader", "symbol", "request_id"})
_INSTRUMENT_KEYS = frozenset({"type", "symbol", "tick_size", "lot_size", "min_qty", "max_qty", "price_band_bps", "reference_price"})


def _decode_place(data: dict[str, Any], instruments: InstrumentLookup, trader: str | None) -> PlaceOrder:
    _check_keys(data, _PLACE_KEYS)
    symbol = _text(data, "symbol")
    conv = converter(_instrument(instruments, symbol))
    side = _enum(data, "side", _SIDES)
    order_type = _enum(data, "order_type", _ORDER_TYPES, OrderType.LIMIT)
    tif = _enum(data, "tif", _TIFS, TimeInForce.GTC)
    stp = _enum(data, "stp", _STPS, SelfTradePrevention.CANCEL_NEWEST)
    post_only = _bool(data, "post_only")
    raw_price = _decimal(data, "price")
    raw_stop = _decimal(data, "stop_price")
    raw_qty = _decimal(data, "qty")
    check_place_fields(order_type, tif, raw_price is not None, raw_stop is not None, "post_only" in data)
    if raw_qty is None:
        raise MalformedMessage("missing field 'qty'")
    return PlaceOrder(
        trader if trader is not None else _text(data, "trader"),
        _text(data, "client_order_id", required=False),
        symbol,
        side,
        _positive_qty(conv, raw_qty, "qty"),
        _positive_price(conv, raw_price, "price") if raw_price is not None else 0,
        order_type,
        tif,
        post_only,
        _positive_price(conv, raw_stop, "stop_price") if raw_stop is not None else 0,
        stp,
    )


def _decode_replace(data: dict[str, Any], instruments: InstrumentLookup, trader: str | None) -> ReplaceOrder:
    _check_keys(data, _REPLACE_KEYS)
    symbol = _text(data, "symbol")
    conv = converter(_instrument(instruments, symbol))
    raw_price = _decimal(data, "price")
    raw_qty = _decimal(data, "qty")
    if raw_price is None and raw_qty is None:
        raise MalformedMessage("a replace needs a new price, a new qty, or both")
    order_id = _order_id(data, required=False)
    client_order_id = _text(data, "client_order_id", required=False)
    if not order_id and not client_order_id:
        raise MalformedMessage("a replace needs order_id or client_order_id")
    return ReplaceOrder(
        trader if trader is not None else _text(data, "trader"),
        order_id,
        _positive_price(conv, raw_price, "price") if raw_price is not None else 0,
        _positive_qty(conv, raw_qty, "qty") if raw_qty is not None else 0,
        symbol,
        client_order_id,
        _order_id(data, "request_id", required=False),
    )


def _decode_cancel(data: dict[str, Any], trader: str | None) -> CancelOrder:
    _check_keys(data, _CANCEL_KEYS)
    order_id = _order_id(data, required=False)
    client_order_id = _text(data, "client_order_id", required=False)
    if not order_id and not client_order_id:
        raise MalformedMessage("a cancel needs order_id or client_order_id")
    request_id = _order_id(data, "request_id", required=False)
    return CancelOrder(trader if trader is not None else _text(data, "trader"), order_id, client_order_id, request_id)


def _decode_mass_cancel(data: dict[str, Any], trader: str | None) -> MassCancel:
    _check_keys(data, _MASS_CANCEL_KEYS)
    name = trader if trader is not None else _text(data, "trader")
    return MassCancel(name, _text(data, "symbol", required=False), CancelReason.MASS_CANCEL, _order_id(data, "request_id", required=False))


def _decode_instrument(data: dict[str, Any]) -> AddInstrument:
    _check_keys(data, _INSTRUMENT_KEYS)
    try:
        return AddInstrument(Instrument.from_dict({k: v for k, v in data.items() if k != "type"}))
    except ExchangeError as exc:
        raise MalformedMessage(exc.message, RejectReason.INVALID_INSTRUMENT) from None
    except KeyError as exc:
        raise MalformedMessage(f"missing field {exc.args[0]!r}", RejectReason.INVALID_INSTRUMENT) from None


def decode_command(data: Any, instruments: InstrumentLookup, trader: str | None = None) -> Command:
    """Decode one JSON command object.

    ``trader``, when given, is the authenticated trader of the connection: it
    overrides (and makes unnecessary) the ``trader`` field, so a client can act
    only as itself.
    """
    data = _obj(data)
    kind = data.get("type", "place")
    try:
        if kind == "place":
            return _decode_place(data, instruments, trader)
        if kind == "cancel":
            return _decode_cancel(data, trader)
        if kind == "replace":
            return _decode_replace(data, instruments, trader)
        if kind == "mass_cancel":
            return _decode_mass_cancel(data, trader)
        if kind == "add_instrument":
            return _decode_instrument(data)
    except MalformedMessage:
        raise
    except ExchangeError as exc:  # InvalidDecimal and friends keep their reason
        raise MalformedMessage(exc.message, exc.reason) from None
    raise MalformedMessage(f"unknown command type {kind!r}")


def decode_commands(data: Any, instruments: InstrumentLookup, trader: str | None = None) -> list[Command]:
    """Decode a batch: a JSON array of command objects (all or nothing)."""
    if not isinstance(data, list):
        raise MalformedMessage("a batch must be a JSON array")
    if len(data) > _MAX_BATCH:
        raise MalformedMessage(f"a batch holds at most {_MAX_BATCH} commands")
    return [decode_command(item, instruments, trader) for item in data]


def _conv(instrument: Instrument | None) -> DecimalConverter | None:
    return converter(instrument) if instrument is not None else None


def _price(conv: DecimalConverter | None, ticks: int) -> str | None:
    if not ticks or conv is None:
        return None
    return conv.format_price(ticks)


def _qty(conv: DecimalConverter | None, lots: int) -> str:
    if conv is None:
        return str(lots)
    return conv.format_qty(lots)


def encode_command(command: Command, instruments: InstrumentLookup) -> dict[str, Any]:
    if isinstance(command, PlaceOrder):
        inst = _conv(instruments(command.symbol))
        out: dict[str, Any] = {
            "type": "place",
            "trader": command.trader,
            "client_order_id": command.client_order_id,
            "symbol": command.symbol,
            "side": command.side.name.lower(),
            "order_type": command.order_type.name.lower(),
            "qty": _qty(inst, command.qty),
            "tif": command.tif.name.lower(),
        }
        if command.price:
            out["price"] = _price(inst, command.price)
        if command.stop_price:
            out["stop_price"] = _price(inst, command.stop_price)
        if command.post_only:
            out["post_only"] = True
        if command.stp is not SelfTradePrevention.CANCEL_NEWEST:
            out["stp"] = command.stp.name.lower()
        return out
    if isinstance(command, CancelOrder):
        out = {"type": "cancel", "trader": command.trader}
        if command.order_id:
            out["order_id"] = command.order_id
        if command.client_order_id:
            out["client_order_id"] = command.client_order_id
        if command.request_id:
            out["request_id"] = command.request_id
        return out
    if isinstance(command, ReplaceOrder):
        inst = _conv(instruments(command.symbol))
        out = {"type": "replace", "trader": command.trader, "symbol": command.symbol}
        if command.order_id:
            out["order_id"] = command.order_id
        if command.client_order_id:
            out["client_order_id"] = command.client_order_id
        if command.new_price:
            out["price"] = _price(inst, command.new_price)
        if command.new_qty:
            out["qty"] = _qty(inst, command.new_qty)
        if command.request_id:
            out["request_id"] = command.request_id
        return out
    if isinstance(command, MassCancel):
        out = {"type": "mass_cancel", "trader": command.trader}
        if command.symbol:
            out["symbol"] = command.symbol
        if command.request_id:
            out["request_id"] = command.request_id
        return out
    return {"type": "add_instrument", **command.instrument.to_dict()}


# ------------------------------------------------------------------ events
def _reason(reason: RejectReason | CancelReason) -> str:
    return reason.name


def _enc_book_delta(e: BookDelta, inst: DecimalConverter | None) -> dict[str, Any]:
    side, price, qty = e.side.name.lower(), _price(inst, e.price), _qty(inst, e.qty)
    return {"type": "book_delta", "seq": e.seq, "symbol": e.symbol, "side": side, "price": price, "qty": qty, "order_count": e.order_count}


def _enc_accepted(e: OrderAccepted, inst: DecimalConverter | None) -> dict[str, Any]:
    return {
        "type": "accepted",
        **_order_header(e.seq, e.order_id, e.trader, e.client_order_id, e.symbol),
        "side": e.side.name.lower(),
        "order_type": e.order_type.name.lower(),
        "tif": e.tif.name.lower(),
        "price": _price(inst, e.price),
        "qty": _qty(inst, e.qty),
        "stop_price": _price(inst, e.stop_price),
    }


def _enc_trade(e: TradeExecuted, inst: DecimalConverter | None) -> dict[str, Any]:
    return {
        "type": "trade",
        "seq": e.seq,
        "trade_id": e.trade_id,
        "symbol": e.symbol,
        "price": _price(inst, e.price),
        "qty": _qty(inst, e.qty),
        "aggressor_side": e.aggressor_side.name.lower(),
        "maker_order_id": e.maker_order_id,
        "maker_trader": e.maker_trader,
        "maker_client_order_id": e.maker_client_order_id,
        "maker_remaining": _qty(inst, e.maker_remaining),
        "taker_order_id": e.taker_order_id,
        "taker_trader": e.taker_trader,
        "taker_client_order_id": e.taker_client_order_id,
        "taker_remaining": _qty(inst, e.taker_remaining),
    }


def _enc_cancelled(e: OrderCancelled, inst: DecimalConverter | None) -> dict[str, Any]:
    return {
        "type": "cancelled",
        **_order_header(e.seq, e.order_id, e.trader, e.client_order_id, e.symbol),
        "reason": _reason(e.reason),
        "qty": _qty(inst, e.qty),
        "remaining": _qty(inst, e.remaining),
    }


def _enc_rejected(e: OrderRejected, inst: DecimalConverter | None) -> dict[str, Any]:
    return {
        "type": "rejected",
        "seq": e.seq,
        "trader": e.trader,
        "client_order_id": e.client_order_id,
        "symbol": e.symbol,
        "reason": _reason(e.reason),
        "code": int(e.reason),
        "message": e.message,
        "order_id": e.order_id or None,
    }


def _enc_replaced(e: OrderReplaced, inst: DecimalConverter | None) -> dict[str, Any]:
    return {
        "type": "replaced",
        **_order_header(e.seq, e.order_id, e.trader, e.client_order_id, e.symbol),
        "side": e.side.name.lower(),
        "price": _price(inst, e.price),
        "qty": _qty(inst, e.qty),
        "priority_kept": e.priority_kept,
    }


def _enc_stop_triggered(e: StopTriggered, inst: DecimalConverter | None) -> dict[str, Any]:
    return {
        "type": "stop_triggered",
        **_order_header(e.seq, e.order_id, e.trader, e.client_order_id, e.symbol),
        "stop_price": _price(inst, e.stop_price),
        "last_price": _price(inst, e.last_price),
    }


def _order_header(seq: int, order_id: int, trader: str, client_order_id: str, symbol: str) -> dict[str, Any]:
    return {"seq": seq, "order_id": order_id, "trader": trader, "client_order_id": client_order_id, "symbol": symbol}


# One encoder per event type: the table is the one place that lists them (InstrumentAdded has no symbol to convert).
_EVENT_ENCODERS: dict[type, Callable[[Any, DecimalConverter | None], dict[str, Any]]] = {
    BookDelta: _enc_book_delta,
    OrderAccepted: _enc_accepted,
    TradeExecuted: _enc_trade,
    OrderCancelled: _enc_cancelled,
    OrderRejected: _enc_rejected,
    OrderReplaced: _enc_replaced,
    StopTriggered: _enc_stop_triggered,
}


def encode_event(event: Event, instruments: InstrumentLookup) -> dict[str, Any]:
    """Encode one event as a JSON-ready dict (prices and quantities as decimal strings)."""
    encoder = _EVENT_ENCODERS.get(type(event))
    if encoder is None:
        assert isinstance(event, InstrumentAdded)
        return {"type": "instrument_added", "seq": event.seq, **event.instrument.to_dict()}
    symbol: str = event.symbol  # type: ignore[union-attr]  # every event in the table names its symbol
    return encoder(event, _conv(instruments(symbol)))


def encode_events(events: Iterable[Event], instruments: InstrumentLookup) -> list[dict[str, Any]]:
    return [encode_event(e, instruments) for e in events]


def error_reply(error: ExchangeError) -> dict[str, Any]:
    """The reply for input that never reached the engine (bad JSON, inexact price, ...)."""
    return {"type": "error", "reason": error.reason.name, "code": int(error.reason), "message": error.message}


# ------------------------------------------------------ decoding events back
def _side(value: Any) -> Side:
    return Side[str(value).upper()]


def decode_event(data: dict[str, Any], instruments: InstrumentLookup) -> Event:
    """Inverse of ``encode_event`` (clients use it to read replies and market data)."""
    try:
        return _decode_event(data, instruments)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedMessage(f"not an event: {exc!r}") from None


def _p(conv: DecimalConverter | None, value: Any) -> int:
    if value is None:
        return 0
    if conv is None:
        raise MalformedMessage("price for an unknown symbol")
    return conv.parse_price(value)


def _q(conv: DecimalConverter | None, value: Any) -> int:
    if conv is None:
        return int(value)
    return conv.parse_qty(value)


def _dec_book_delta(d: dict[str, Any], inst: DecimalConverter | None) -> Event:
    return BookDelta(d["seq"], d["symbol"], _side(d["side"]), _p(inst, d["price"]), _q(inst, d["qty"]), d["order_count"])


def _dec_accepted(d: dict[str, Any], inst: DecimalConverter | None) -> Event:
    order_type, tif = OrderType[d["order_type"].upper()], TimeInForce[d["tif"].upper()]
    price, qty, stop = _p(inst, d["price"]), _q(inst, d["qty"]), _p(inst, d["stop_price"])
    return OrderAccepted(
        d["seq"], d["order_id"], d["trader"], d["client_order_id"], d["symbol"], _side(d["side"]), order_type, tif, price, qty, stop
    )


def _dec_trade(d: dict[str, Any], inst: DecimalConverter | None) -> Event:
    maker = (d["maker_order_id"], d["maker_trader"], d["maker_client_order_id"], _q(inst, d["maker_remaining"]))
    taker = (d["taker_order_id"], d["taker_trader"], d["taker_client_order_id"], _q(inst, d["taker_remaining"]))
    head = (d["seq"], d["trade_id"], d["symbol"], _p(inst, d["price"]), _q(inst, d["qty"]), _side(d["aggressor_side"]))
    return TradeExecuted(*head, *maker, *taker)


def _dec_cancelled(d: dict[str, Any], inst: DecimalConverter | None) -> Event:
    reason, qty, remaining = CancelReason[d["reason"]], _q(inst, d["qty"]), _q(inst, d["remaining"])
    return OrderCancelled(d["seq"], d["order_id"], d["trader"], d["client_order_id"], d["symbol"], reason, qty, remaining)


def _dec_rejected(d: dict[str, Any], inst: DecimalConverter | None) -> Event:
    reason = RejectReason[d["reason"]]
    return OrderRejected(d["seq"], d["trader"], d["client_order_id"], d["symbol"], reason, d["message"], d["order_id"] or 0)


def _dec_replaced(d: dict[str, Any], inst: DecimalConverter | None) -> Event:
    price, qty, kept = _p(inst, d["price"]), _q(inst, d["qty"]), bool(d["priority_kept"])
    return OrderReplaced(d["seq"], d["order_id"], d["trader"], d["client_order_id"], d["symbol"], _side(d["side"]), price, qty, kept)


def _dec_stop_triggered(d: dict[str, Any], inst: DecimalConverter | None) -> Event:
    stop, last = _p(inst, d["stop_price"]), _p(inst, d["last_price"])
    return StopTriggered(d["seq"], d["order_id"], d["trader"], d["client_order_id"], d["symbol"], stop, last)


# The inverse table, by the JSON "type" tag.
_EVENT_DECODERS: dict[str, Callable[[dict[str, Any], DecimalConverter | None], Event]] = {
    "book_delta": _dec_book_delta,
    "accepted": _dec_accepted,
    "trade": _dec_trade,
    "cancelled": _dec_cancelled,
    "rejected": _dec_rejected,
    "replaced": _dec_replaced,
    "stop_triggered": _dec_stop_triggered,
}


def _decode_event(d: dict[str, Any], instruments: InstrumentLookup) -> Event:
    kind = d["type"]
    if kind == "instrument_added":
        return InstrumentAdded(d["seq"], Instrument.from_dict({k: v for k, v in d.items() if k not in ("type", "seq")}))
    decoder = _EVENT_DECODERS.get(kind)
    if decoder is None:
        raise MalformedMessage(f"unknown event type {kind!r}")
    return decoder(d, _conv(instruments(d.get("symbol") or "")))
