"""Lean order entry: columnar ``OrderBatch`` / ``OutcomeBatch`` (docs/wire-schema.md, "Lean order entry").

The default between our own clients and servers on every wire, and the
journal's record format. Prices are integer ticks and quantities integer lots,
as the engine holds them, so this path parses no decimal text and needs no
instrument: a symbol the engine does not list is its ordinary per-command
``UNKNOWN_SYMBOL`` reject.

Invariants:

* ``decode_orders`` is strict and total: a column whose length is neither 0
  nor the batch's, an unknown enum number, a field the command does not take
  set to anything but its default, a symbol index out of the table, a text over
  64 characters, or more commands than allowed raise ``MalformedMessage``, and
  nothing of the batch is applied. The count is checked before any command is
  built. A client's batch (not a journal record) also obeys the value rules of
  every form (docs/json-format.md): 0 means absent, a negative price or
  quantity is ``INVALID_PRICE`` / ``INVALID_QUANTITY``, a place field its
  order type does not take is ``INVALID_ORDER`` (``check_place_fields``), and a
  replace changes a price or a quantity.
* ``encode_outcomes`` writes one outcome per command, for the trader who sent
  it: accepted (with its order id, own fills as the taker and leaves),
  rejected (with the reason), cancelled or replaced. Book deltas are never in
  it: they are market data.
* Encoding ``orders`` then decoding them gives equal commands (round trip).

This module is compiled with mypyc (``scripts/build_native.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from engine import (
    BookDelta,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    ExchangeError,
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
    TimeInForce,
    TradeExecuted,
)
from transports.codec.json_codec import check_place_fields
from transports.codec.proto_codec import decode_error, error_reply, pb

PLACE: Final = 1
CANCEL: Final = 2
REPLACE: Final = 3
MASS_CANCEL: Final = 4

ACCEPTED: Final = 1
REJECTED: Final = 2
CANCELLED: Final = 3
REPLACED: Final = 4

MAX_TEXT: Final = 64
_MAX_ID: Final = 2**63

_SIDES: Final[dict[int, Side]] = {int(s): s for s in Side}
_TYPES: Final[dict[int, OrderType]] = {0: OrderType.LIMIT, **{int(t): t for t in OrderType}}
_TIFS: Final[dict[int, TimeInForce]] = {0: TimeInForce.GTC, **{int(t): t for t in TimeInForce}}
_STPS: Final[dict[int, SelfTradePrevention]] = {0: SelfTradePrevention.CANCEL_NEWEST, **{int(s): s for s in SelfTradePrevention}}
_COLUMNS: Final = (
    "symbol",
    "side",
    "order_type",
    "tif",
    "stp",
    "post_only",
    "price",
    "qty",
    "stop_price",
    "order_id",
    "client_order_id",
    "request_id",
)


class Outcomes:
    """A decoded ``OutcomeBatch``: per-command columns and per-fill columns, plus summary counts."""

    def __init__(self, message: pb.OutcomeBatch) -> None:
        self.batch_id: int = message.batch_id
        self.outcome: list[int] = list(message.outcome)
        self.reason: list[int] = list(message.reason)
        self.order_id: list[int] = list(message.order_id)
        self.leaves: list[int] = list(message.leaves)
        self.cancelled: list[int] = list(message.cancelled)
        self.fills: list[int] = list(message.fills)
        self.trade_id: list[int] = list(message.trade_id)
        self.fill_price: list[int] = list(message.fill_price)
        self.fill_qty: list[int] = list(message.fill_qty)
        self.trades: int = message.trades

    def __len__(self) -> int:
        return len(self.outcome)

    def fills_of(self, index: int) -> list[tuple[int, int]]:
        """Command ``index``'s own fills as ``(price ticks, qty lots)``, in order."""
        start = sum(self.fills[:index])
        end = start + self.fills[index]
        return list(zip(self.fill_price[start:end], self.fill_qty[start:end], strict=True))

    @property
    def accepted(self) -> int:
        return self.outcome.count(ACCEPTED)

    @property
    def rejected(self) -> int:
        return self.outcome.count(REJECTED)

    def rejected_by_reason(self) -> dict[str, int]:
        """Reject counts by ``RejectReason`` name."""
        counts: dict[str, int] = {}
        for outcome, reason in zip(self.outcome, self.reason, strict=True):
            if outcome == REJECTED:
                name = RejectReason(reason).name
                counts[name] = counts.get(name, 0) + 1
        return counts


# ----------------------------------------------------------------- commands
def encode_orders(commands: Sequence[Command], batch_id: int = 0, with_traders: bool = False) -> bytes:
    """The ``OrderBatch`` bytes of ``commands`` (``with_traders``: keep each command's trader, for the journal)."""
    symbols: dict[str, int] = {}
    traders: dict[str, int] = {}
    kind: list[int] = []
    symbol: list[int] = []
    side: list[int] = []
    order_type: list[int] = []
    tif: list[int] = []
    stp: list[int] = []
    post_only: list[bool] = []
    price: list[int] = []
    qty: list[int] = []
    stop_price: list[int] = []
    order_id: list[int] = []
    client_order_id: list[str] = []
    trader: list[int] = []
    request_id: list[int] = []
    for command in commands:
        name = ""
        if isinstance(command, PlaceOrder):
            kind.append(PLACE)
            name = command.symbol
            side.append(int(command.side))
            order_type.append(int(command.order_type))
            tif.append(int(command.tif))
            stp.append(int(command.stp))
            post_only.append(command.post_only)
            price.append(command.price)
            qty.append(command.qty)
            stop_price.append(command.stop_price)
            order_id.append(0)
        else:
            side.append(0)
            order_type.append(0)
            tif.append(0)
            stp.append(0)
            post_only.append(False)
            stop_price.append(0)
            if isinstance(command, CancelOrder):
                kind.append(CANCEL)
                price.append(0)
                qty.append(0)
                order_id.append(command.order_id)
            elif isinstance(command, ReplaceOrder):
                kind.append(REPLACE)
                name = command.symbol
                price.append(command.new_price)
                qty.append(command.new_qty)
                order_id.append(command.order_id)
            elif isinstance(command, MassCancel):
                if command.reason != CancelReason.MASS_CANCEL:
                    raise MalformedMessage("a mass cancel with its own reason is not a lean command: journal it compact")
                kind.append(MASS_CANCEL)
                name = command.symbol
                price.append(0)
                qty.append(0)
                order_id.append(0)
            else:
                raise MalformedMessage("add_instrument is not a lean command: send it as a CommandBatch")
        symbol.append(_index(symbols, name) + 1 if name else 0)
        client_order_id.append("" if isinstance(command, MassCancel) else command.client_order_id)
        request_id.append(0 if isinstance(command, PlaceOrder) else command.request_id)
        if with_traders:
            trader.append(_index(traders, command.trader))
    message = pb.OrderBatch(
        batch_id=batch_id,
        symbols=list(symbols),
        kind=kind,
        symbol=symbol,
        side=side,
        order_type=order_type,
        tif=tif,
        stp=stp,
        post_only=post_only,
        price=price,
        qty=qty,
        stop_price=stop_price,
        order_id=order_id,
        client_order_id=client_order_id,
        traders=list(traders),
        trader=trader,
        request_id=request_id if any(request_id) else [],  # absent when unused: the bytes of older batches
    )
    return message.SerializeToString()


def count_places(commands: Sequence[Command]) -> int:
    """How many of ``commands`` are places (the harness counts orders apart from other commands)."""
    count = 0
    for command in commands:
        if isinstance(command, PlaceOrder):
            count += 1
    return count


def _index(table: dict[str, int], name: str) -> int:
    found = table.get(name)
    if found is None:
        found = table[name] = len(table)
    return found


def with_batch_id(data: bytes, batch_id: int) -> bytes:
    """``data`` (an ``OrderBatch``) with ``batch_id`` set, without re-encoding: protobuf keeps the last value of a field."""
    out = bytearray(data)
    out.append(0x08)  # field 1, varint
    value = batch_id
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse_orders(data: bytes) -> pb.OrderBatch:
    """The ``OrderBatch`` in ``data``; ``MalformedMessage`` if it does not parse."""
    message = pb.OrderBatch()
    try:
        message.ParseFromString(data)
    except Exception:  # google.protobuf.message.DecodeError, or a RuntimeError from upb on nested garbage
        raise MalformedMessage("not a valid OrderBatch message") from None
    return message


def decode_orders(message: pb.OrderBatch, trader: str | None, max_commands: int) -> list[Command]:
    """The commands of ``message``, as ``trader``'s (None: the record's own ``traders``, journal records only)."""
    count = len(message.kind)
    if count == 0:
        raise MalformedMessage("an empty batch")
    if count > max_commands:
        raise MalformedMessage(f"a batch holds at most {max_commands} commands, got {count}")
    for column in _COLUMNS:
        length = len(getattr(message, column))
        if length not in (0, count):
            raise MalformedMessage(f"column {column} has {length} values for {count} commands")
    symbols = list(message.symbols)
    for name in symbols:
        if not name or len(name) > MAX_TEXT:
            raise MalformedMessage(f"a symbol is 1 to {MAX_TEXT} characters")
    names = _traders(message, trader, count)
    return _commands(message, count, symbols, names, trader is not None)


def _traders(message: pb.OrderBatch, trader: str | None, count: int) -> list[str]:
    if trader is not None:
        if message.traders or message.trader:
            raise MalformedMessage("traders and trader are journal fields: the connection names the trader")
        return [trader] * count
    table = list(message.traders)
    indexes = list(message.trader)
    if len(indexes) != count or any(i >= len(table) for i in indexes):
        raise MalformedMessage("a journal batch names a trader for every command")
    return [table[i] for i in indexes]


def _column(values: Sequence[int], count: int) -> list[int]:
    return list(values) if values else [0] * count


def _commands(message: pb.OrderBatch, count: int, symbols: list[str], names: list[str], strict: bool) -> list[Command]:
    """``strict`` (a client's batch): the value rules of ``check_values`` too. A journal record is not
    re-judged: it holds what the engine received and answered, and replaying it must answer the same."""
    kinds = list(message.kind)
    symbol = _column(message.symbol, count)
    side = _column(message.side, count)
    order_type = _column(message.order_type, count)
    tif = _column(message.tif, count)
    stp = _column(message.stp, count)
    post_only = list(message.post_only) if message.post_only else [False] * count
    price = _column(message.price, count)
    qty = _column(message.qty, count)
    stop_price = _column(message.stop_price, count)
    order_id = _column(message.order_id, count)
    coid = list(message.client_order_id) if message.client_order_id else [""] * count
    request_id = _column(message.request_id, count)
    table = len(symbols)
    commands: list[Command] = []
    for i in range(count):
        kind = kinds[i]
        s = symbol[i]
        if s > table:
            raise MalformedMessage(f"command {i}: symbol index {s} is outside the table of {table}")
        name = symbols[s - 1] if s else ""
        text = coid[i]
        if len(text) > MAX_TEXT:
            raise MalformedMessage(f"command {i}: a client_order_id is at most {MAX_TEXT} characters")
        if strict:
            _check_values(i, kind, price[i], qty[i], stop_price[i])
        if kind == PLACE:
            if order_id[i]:
                raise MalformedMessage(f"command {i}: a place takes no order_id")
            if request_id[i]:
                raise MalformedMessage(f"command {i}: a place takes no request_id (its client_order_id is one)")
            place = _place(i, names[i], text, name, side[i], qty[i], price[i], order_type[i], tif[i], post_only[i], stop_price[i], stp[i])
            if strict:
                _check_place(i, place)
            commands.append(place)
            continue
        if side[i] or order_type[i] or tif[i] or stp[i] or post_only[i] or stop_price[i]:
            raise MalformedMessage(f"command {i}: side, order_type, tif, stp, post_only and stop_price are for a place only")
        target = order_id[i]
        if target >= _MAX_ID or request_id[i] >= _MAX_ID:
            raise MalformedMessage(f"command {i}: order_id or request_id out of range")
        if kind == CANCEL:
            if s or price[i] or qty[i]:
                raise MalformedMessage(f"command {i}: a cancel takes only order_id or client_order_id")
            commands.append(CancelOrder(names[i], target, text, request_id[i]))
        elif kind == REPLACE:
            commands.append(ReplaceOrder(names[i], target, price[i], qty[i], name, text, request_id[i]))
        elif kind == MASS_CANCEL:
            if target or text or price[i] or qty[i]:
                raise MalformedMessage(f"command {i}: a mass cancel takes only a symbol and a request_id")
            commands.append(MassCancel(names[i], name, CancelReason.MASS_CANCEL, request_id[i]))
        else:
            raise MalformedMessage(f"command {i}: unknown command kind {kind}")
    return commands


def _check_values(i: int, kind: int, price: int, qty: int, stop_price: int) -> None:
    """0 is "absent" in these integer columns (proto3); a value given is positive."""
    if price < 0 or stop_price < 0:
        raise MalformedMessage(f"command {i}: a price must be positive", RejectReason.INVALID_PRICE)
    if qty < 0:
        raise MalformedMessage(f"command {i}: a quantity must be positive", RejectReason.INVALID_QUANTITY)
    if kind == REPLACE and not price and not qty:
        raise MalformedMessage(f"command {i}: a replace needs a new price, a new qty, or both")


def _check_place(i: int, place: PlaceOrder) -> None:
    try:
        check_place_fields(place.order_type, place.tif, place.price != 0, place.stop_price != 0, place.post_only)
    except MalformedMessage as exc:
        raise MalformedMessage(f"command {i}: {exc.message}", exc.reason) from None


def _place(
    i: int, trader: str, coid: str, symbol: str, side: int, qty: int, price: int, kind: int, tif: int, post_only: bool, stop: int, stp: int
) -> PlaceOrder:
    if not symbol:
        raise MalformedMessage(f"command {i}: a place needs a symbol")
    side_value = _SIDES.get(side)
    type_value = _TYPES.get(kind)
    tif_value = _TIFS.get(tif)
    stp_value = _STPS.get(stp)
    if side_value is None or type_value is None or tif_value is None or stp_value is None:
        raise MalformedMessage(f"command {i}: unknown side, order_type, tif or stp number")
    return PlaceOrder(trader, coid, symbol, side_value, qty, price, type_value, tif_value, post_only, stop, stp_value)


# ----------------------------------------------------------------- outcomes
class OutcomeColumns:
    """The ``OutcomeBatch`` of one submission, built one command at a time as the engine answers it."""

    def __init__(self) -> None:
        self.outcome: list[int] = []
        self.reason: list[int] = []
        self.order_id: list[int] = []
        self.leaves: list[int] = []
        self.cancelled: list[int] = []
        self.fills: list[int] = []
        self.trade_id: list[int] = []
        self.fill_price: list[int] = []
        self.fill_qty: list[int] = []
        self.trades = 0

    def add(self, command: Command, events: list[Event]) -> None:
        """Record what ``command`` did, for its sender, from its events (``Engine.handle``'s answer)."""
        result = 0
        why = 0
        oid = 0
        left = 0
        gone = 0
        own = 0
        mass = isinstance(command, MassCancel)
        for event in events:
            if isinstance(event, BookDelta):
                break  # the engine puts a command's book deltas last (exchange.proto, Reply): nothing of ours follows
            if isinstance(event, TradeExecuted):
                self.trades += 1
                if event.taker_order_id == oid:
                    own += 1
                    self.trade_id.append(event.trade_id)
                    self.fill_price.append(event.price)
                    self.fill_qty.append(event.qty)
                    left = event.taker_remaining
            elif isinstance(event, OrderAccepted):
                result = ACCEPTED
                oid = event.order_id
                left = event.qty
            elif isinstance(event, OrderRejected):
                result = REJECTED
                why = int(event.reason)
                oid = event.order_id
            elif isinstance(event, OrderCancelled):
                if mass:
                    result = CANCELLED
                    gone += 1
                elif event.order_id == oid and result == ACCEPTED:
                    why = int(event.reason)
                    gone += event.qty
                    left = event.remaining
                elif result == 0 and event.reason == CancelReason.USER:
                    result = CANCELLED
                    oid = event.order_id
                    gone = event.qty
            elif isinstance(event, OrderReplaced) and result == 0:
                result = REPLACED
                oid = event.order_id
                left = event.qty
        if mass and result == 0:
            result = CANCELLED  # nothing was open: a mass cancel still took effect
        self.outcome.append(result)
        self.reason.append(why)
        self.order_id.append(oid)
        self.leaves.append(left)
        self.cancelled.append(gone)
        self.fills.append(own)

    def to_bytes(self, batch_id: int = 0) -> bytes:
        message = pb.OutcomeBatch(
            batch_id=batch_id,
            outcome=self.outcome,
            reason=self.reason,
            order_id=self.order_id,
            leaves=self.leaves,
            cancelled=self.cancelled,
            fills=self.fills,
            trade_id=self.trade_id,
            fill_price=self.fill_price,
            fill_qty=self.fill_qty,
            trades=self.trades,
        )
        return message.SerializeToString()


def encode_outcomes(commands: Sequence[Command], replies: Sequence[list[Event]], batch_id: int = 0) -> bytes:
    """The ``OutcomeBatch`` bytes for the trader who sent ``commands`` (``replies``: their events, in order)."""
    columns = OutcomeColumns()
    for command, events in zip(commands, replies, strict=True):
        columns.add(command, events)
    return columns.to_bytes(batch_id)


def encode_refusal(error: ExchangeError, batch_id: int = 0) -> bytes:
    """An ``OutcomeBatch`` that refuses a whole batch: nothing of it was applied."""
    return pb.OutcomeBatch(batch_id=batch_id, error=error_reply(error)).SerializeToString()


def decode_outcomes(data: bytes) -> Outcomes:
    """The outcomes in ``data``; a refused batch raises its error (``proto_codec.decode_error``)."""
    message = pb.OutcomeBatch()
    try:
        message.ParseFromString(data)
    except Exception:
        raise MalformedMessage("not a valid OutcomeBatch message") from None
    if message.HasField("error"):
        raise decode_error(message.error)
    return Outcomes(message)
