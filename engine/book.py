"""The order book of one symbol: price levels, FIFO queues and pending stops.

Invariants (checked by the property tests):

* Price-time priority. The best bid is the highest bid price, the best ask the
  lowest ask price; inside a level, orders are matched first in, first out.
* Never crossed after a command: best bid < best ask whenever both exist.
* ``PriceLevel.qty`` is the sum of the live orders' remaining quantities and
  ``PriceLevel.count`` their number. A level with no live order is removed.

Representation, chosen for speed in CPython:

* Each side is a ``dict`` price -> ``PriceLevel`` plus a binary heap of prices
  (negated for bids). Heap entries are removed lazily: an entry whose level is
  gone is popped when it reaches the top, and the heap is rebuilt when stale
  entries outnumber live ones.
* A level is a ``deque`` of orders. Cancelling marks the order dead
  (``qty == 0``) in O(1); dead orders are popped when they reach the front, and
  a level compacts itself when dead entries dominate.
"""

from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush

from engine.instruments import Instrument
from engine.types import OrderType, SelfTradePrevention, Side, TimeInForce


class Account:
    """One trader's open orders and the client order ids it has used."""

    __slots__ = ("client_ids", "open_orders", "trader")

    def __init__(self, trader: str) -> None:
        self.trader = trader
        self.open_orders: dict[int, Order] = {}
        # client order id -> exchange order id, kept for the engine's lifetime
        # so a resent order is recognised as a duplicate even after it filled.
        self.client_ids: dict[str, int] = {}


class Order:
    """A live order (resting, or a stop waiting for its trigger).

    ``qty`` is the remaining quantity; ``qty == 0`` marks an order that is no
    longer live (filled or cancelled) and is only waiting to leave its queue.
    """

    __slots__ = (
        "account",
        "client_order_id",
        "filled",
        "order_id",
        "order_type",
        "price",
        "qty",
        "side",
        "stop_price",
        "stp",
        "symbol",
        "tif",
    )

    def __init__(
        self,
        order_id: int,
        account: Account,
        client_order_id: str,
        symbol: str,
        side: Side,
        price: int,
        qty: int,
        stp: SelfTradePrevention,
        order_type: OrderType,
        tif: TimeInForce,
        stop_price: int,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.filled = 0
        self.stp = stp
        self.order_type = order_type
        self.tif = tif
        self.stop_price = stop_price


class PriceLevel:
    __slots__ = ("count", "dead", "orders", "price", "qty")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.qty = 0
        self.count = 0
        self.dead = 0  # dead orders still in ``orders``

    def append(self, order: Order) -> None:
        self.orders.append(order)
        self.qty += order.qty
        self.count += 1

    def kill(self, order: Order) -> None:
        """Remove a live order from this level's totals; its slot is reclaimed lazily."""
        self.qty -= order.qty
        self.count -= 1
        order.qty = 0
        if self.orders[0] is order:
            self.orders.popleft()
        else:
            self.dead += 1
            if self.dead > 64 and self.dead > self.count:
                self.orders = deque(o for o in self.orders if o.qty)
                self.dead = 0

    def live_orders(self) -> list[Order]:
        return [o for o in self.orders if o.qty]


class BookSide:
    """One side of a book: levels by price, and a lazy heap for the best price."""

    __slots__ = ("_heap", "_sign", "levels", "side")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.levels: dict[int, PriceLevel] = {}
        self._heap: list[int] = []
        # Bids are stored negated so the heap's minimum is the best price.
        self._sign = -1 if side is Side.BUY else 1

    def best(self) -> PriceLevel | None:
        heap = self._heap
        levels = self.levels
        while heap:
            level = levels.get(heap[0] * self._sign)
            if level is not None:
                return level
            heappop(heap)
        return None

    def level_for(self, price: int) -> PriceLevel:
        level = self.levels.get(price)
        if level is None:
            level = PriceLevel(price)
            self.levels[price] = level
            heap = self._heap
            if len(heap) > 2 * len(self.levels) + 64:
                heap[:] = [p * self._sign for p in self.levels]
                heapify(heap)
            else:
                heappush(heap, price * self._sign)
        return level

    def remove_if_empty(self, level: PriceLevel) -> None:
        if level.count == 0:
            del self.levels[level.price]

    def prices_best_first(self) -> list[int]:
        return sorted(self.levels, reverse=self.side is Side.BUY)


class OrderBook:
    """Levels of both sides plus the stop orders of one instrument."""

    __slots__ = (
        "asks",
        "bids",
        "buy_stops",
        "instrument",
        "last_price",
        "max_notional",
        "max_order_lots",
        "sell_stops",
        "symbol",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        # Pending stops by order id. Stops are few; triggering scans them.
        self.buy_stops: dict[int, Order] = {}
        self.sell_stops: dict[int, Order] = {}
        self.last_price = 0  # ticks of the last trade; 0 before the first
        # Risk limits compiled to this instrument's units (0 = no limit).
        self.max_order_lots = 0
        self.max_notional = 0  # in tick*lot units

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def reference_price(self) -> int:
        return self.last_price or self.instrument.reference_price
