"""Read-only views returned by the engine's queries (never live engine objects)."""

from __future__ import annotations

from typing import ClassVar

from engine.native import mypyc_attr
from engine.record import Record
from engine.types import OrderStatus, OrderType, Side, TimeInForce


@mypyc_attr(acyclic=True)
class L2Level(Record):
    __slots__ = ("order_count", "price", "qty")
    FIELDS: ClassVar[tuple[str, ...]] = ("price", "qty", "order_count")

    price: int
    qty: int
    order_count: int

    def __init__(self, price: int, qty: int, order_count: int) -> None:
        self.price = price
        self.qty = qty
        self.order_count = order_count


class BookDepth(Record):
    """Level-2 depth, best level first on each side, as of event ``seq``."""

    __slots__ = ("asks", "bids", "last_price", "seq", "symbol")
    FIELDS: ClassVar[tuple[str, ...]] = ("symbol", "seq", "bids", "asks", "last_price")

    symbol: str
    seq: int
    bids: list[L2Level]
    asks: list[L2Level]
    last_price: int

    def __init__(self, symbol: str, seq: int, bids: list[L2Level], asks: list[L2Level], last_price: int = 0) -> None:
        self.symbol = symbol
        self.seq = seq
        self.bids = bids
        self.asks = asks
        self.last_price = last_price

    @property
    def best_bid(self) -> L2Level | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> L2Level | None:
        return self.asks[0] if self.asks else None


@mypyc_attr(acyclic=True)
class OrderView(Record):
    __slots__ = (
        "client_order_id",
        "filled",
        "order_id",
        "order_type",
        "price",
        "remaining",
        "side",
        "status",
        "stop_price",
        "symbol",
        "tif",
        "trader",
    )
    FIELDS: ClassVar[tuple[str, ...]] = (
        "order_id",
        "trader",
        "client_order_id",
        "symbol",
        "side",
        "order_type",
        "tif",
        "price",
        "stop_price",
        "remaining",
        "filled",
        "status",
    )

    order_id: int
    trader: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int
    stop_price: int
    remaining: int
    filled: int
    status: OrderStatus

    def __init__(
        self,
        order_id: int,
        trader: str,
        client_order_id: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        price: int,
        stop_price: int,
        remaining: int,
        filled: int,
        status: OrderStatus,
    ) -> None:
        self.order_id = order_id
        self.trader = trader
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.tif = tif
        self.price = price
        self.stop_price = stop_price
        self.remaining = remaining
        self.filled = filled
        self.status = status
