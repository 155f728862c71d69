"""Events: what happened, in the past tense, each stamped with the engine's sequence number.

Invariants:

* ``seq`` is strictly increasing across all events of one engine, starting at 1
  and without gaps. A consumer that sees ``seq`` jump knows it missed events.
* The events of one command are contiguous, in this order: the command's own
  outcome (accepted / rejected / replaced / cancelled), then trades and the
  cancels they cause, then stop triggers and their consequences, and last the
  level-2 ``BookDelta`` of every level the command changed (one per level,
  carrying the level's final state).
* Trades print at the resting (maker) order's price.

Events are plain slotted classes: they are created on the hot path, and treated
as immutable by everyone downstream.
"""

from __future__ import annotations

from typing import ClassVar

from engine.instruments import Instrument
from engine.native import mypyc_attr
from engine.reasons import CancelReason, RejectReason
from engine.record import Record
from engine.types import OrderType, Side, TimeInForce


@mypyc_attr(acyclic=True)
class OrderAccepted(Record):
    __slots__ = ("client_order_id", "order_id", "order_type", "price", "qty", "seq", "side", "stop_price", "symbol", "tif", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "order_id",
        "trader",
        "client_order_id",
        "symbol",
        "side",
        "order_type",
        "tif",
        "price",
        "qty",
        "stop_price",
    )

    seq: int
    order_id: int
    trader: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int
    qty: int
    stop_price: int

    def __init__(
        self,
        seq: int,
        order_id: int,
        trader: str,
        client_order_id: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        price: int,
        qty: int,
        stop_price: int,
    ) -> None:
        self.seq = seq
        self.order_id = order_id
        self.trader = trader
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.tif = tif
        self.price = price
        self.qty = qty
        self.stop_price = stop_price


@mypyc_attr(acyclic=True)
class OrderRejected(Record):
    __slots__ = ("client_order_id", "message", "order_id", "reason", "seq", "symbol", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "trader", "client_order_id", "symbol", "reason", "message", "order_id")

    seq: int
    trader: str
    client_order_id: str
    symbol: str
    reason: RejectReason
    message: str
    order_id: int  # the target of a rejected cancel/replace

    def __init__(
        self, seq: int, trader: str, client_order_id: str, symbol: str, reason: RejectReason, message: str, order_id: int = 0
    ) -> None:
        self.seq = seq
        self.trader = trader
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.reason = reason
        self.message = message
        self.order_id = order_id


@mypyc_attr(acyclic=True)
class TradeExecuted(Record):
    __slots__ = (
        "aggressor_side",
        "maker_client_order_id",
        "maker_order_id",
        "maker_remaining",
        "maker_trader",
        "price",
        "qty",
        "seq",
        "symbol",
        "taker_client_order_id",
        "taker_order_id",
        "taker_remaining",
        "taker_trader",
        "trade_id",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "trade_id",
        "symbol",
        "price",
        "qty",
        "aggressor_side",
        "maker_order_id",
        "maker_trader",
        "maker_client_order_id",
        "maker_remaining",
        "taker_order_id",
        "taker_trader",
        "taker_client_order_id",
        "taker_remaining",
    )

    seq: int
    trade_id: int
    symbol: str
    price: int
    qty: int
    aggressor_side: Side
    maker_order_id: int
    maker_trader: str
    maker_client_order_id: str
    maker_remaining: int
    taker_order_id: int
    taker_trader: str
    taker_client_order_id: str
    taker_remaining: int

    def __init__(
        self,
        seq: int,
        trade_id: int,
        symbol: str,
        price: int,
        qty: int,
        aggressor_side: Side,
        maker_order_id: int,
        maker_trader: str,
        maker_client_order_id: str,
        maker_remaining: int,
        taker_order_id: int,
        taker_trader: str,
        taker_client_order_id: str,
        taker_remaining: int,
    ) -> None:
        self.seq = seq
        self.trade_id = trade_id
        self.symbol = symbol
        self.price = price
        self.qty = qty
        self.aggressor_side = aggressor_side
        self.maker_order_id = maker_order_id
        self.maker_trader = maker_trader
        self.maker_client_order_id = maker_client_order_id
        self.maker_remaining = maker_remaining
        self.taker_order_id = taker_order_id
        self.taker_trader = taker_trader
        self.taker_client_order_id = taker_client_order_id
        self.taker_remaining = taker_remaining


@mypyc_attr(acyclic=True)
class OrderCancelled(Record):
    __slots__ = ("client_order_id", "order_id", "qty", "reason", "remaining", "seq", "symbol", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "order_id", "trader", "client_order_id", "symbol", "reason", "qty", "remaining")

    seq: int
    order_id: int
    trader: str
    client_order_id: str
    symbol: str
    reason: CancelReason
    qty: int  # the quantity cancelled by this event
    remaining: int  # what is still live; > 0 only after a self-trade decrement

    def __init__(
        self, seq: int, order_id: int, trader: str, client_order_id: str, symbol: str, reason: CancelReason, qty: int, remaining: int = 0
    ) -> None:
        self.seq = seq
        self.order_id = order_id
        self.trader = trader
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.reason = reason
        self.qty = qty
        self.remaining = remaining


@mypyc_attr(acyclic=True)
class OrderReplaced(Record):
    __slots__ = ("client_order_id", "order_id", "price", "priority_kept", "qty", "seq", "side", "symbol", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "order_id", "trader", "client_order_id", "symbol", "side", "price", "qty", "priority_kept")

    seq: int
    order_id: int
    trader: str
    client_order_id: str
    symbol: str
    side: Side
    price: int
    qty: int  # the new remaining quantity
    priority_kept: bool

    def __init__(
        self, seq: int, order_id: int, trader: str, client_order_id: str, symbol: str, side: Side, price: int, qty: int, priority_kept: bool
    ) -> None:
        self.seq = seq
        self.order_id = order_id
        self.trader = trader
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.priority_kept = priority_kept


@mypyc_attr(acyclic=True)
class StopTriggered(Record):
    __slots__ = ("client_order_id", "last_price", "order_id", "seq", "stop_price", "symbol", "trader")
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "order_id", "trader", "client_order_id", "symbol", "stop_price", "last_price")

    seq: int
    order_id: int
    trader: str
    client_order_id: str
    symbol: str
    stop_price: int
    last_price: int

    def __init__(self, seq: int, order_id: int, trader: str, client_order_id: str, symbol: str, stop_price: int, last_price: int) -> None:
        self.seq = seq
        self.order_id = order_id
        self.trader = trader
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.stop_price = stop_price
        self.last_price = last_price


@mypyc_attr(acyclic=True)
class BookDelta(Record):
    """The new state of one level-2 price level; ``qty == 0`` means the level is gone."""

    __slots__ = ("order_count", "price", "qty", "seq", "side", "symbol")
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "symbol", "side", "price", "qty", "order_count")

    seq: int
    symbol: str
    side: Side
    price: int
    qty: int
    order_count: int

    def __init__(self, seq: int, symbol: str, side: Side, price: int, qty: int, order_count: int) -> None:
        self.seq = seq
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.order_count = order_count


@mypyc_attr(acyclic=True)
class InstrumentAdded(Record):
    __slots__ = ("instrument", "seq")
    FIELDS: ClassVar[tuple[str, ...]] = ("seq", "instrument")

    seq: int
    instrument: Instrument

    def __init__(self, seq: int, instrument: Instrument) -> None:
        self.seq = seq
        self.instrument = instrument


Event = OrderAccepted | OrderRejected | TradeExecuted | OrderCancelled | OrderReplaced | StopTriggered | BookDelta | InstrumentAdded
