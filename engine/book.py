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
from engine.risk import NO_LIMIT
from engine.types import OrderType, SelfTradePrevention, Side, TimeInForce


class Account:
    """One trader's open orders and the client order ids it has used."""

    __slots__ = ("client_ids", "open_orders", "trader")

    def __init__(self, trader: str) -> None:
        self.trader = trader
        self.open_orders: dict[int, Order] = {}
        # Client order id -> the live Order, or the order id once the order is
        # finished. Kept for the engine's lifetime, so a resent order is
        # recognised as a duplicate even after it filled; pointing at the live
        # order (rather than a boxed id) saves memory on every resting order.
        self.client_ids: dict[str, Order | int] = {}


class OrderTerms:
    """The terms an order was placed with. Immutable and shared: there are
    only a few dozen combinations, so each order holds one pointer instead of
    four fields (this keeps a resting order small)."""

    __slots__ = ("order_type", "post_only", "stp", "tif")

    def __init__(self, order_type: OrderType, tif: TimeInForce, stp: SelfTradePrevention, post_only: bool) -> None:
        self.order_type = order_type
        self.tif = tif
        self.stp = stp
        self.post_only = post_only


_TERMS: dict[tuple[OrderType, TimeInForce, SelfTradePrevention, bool], OrderTerms] = {}


def terms_for(order_type: OrderType, tif: TimeInForce, stp: SelfTradePrevention, post_only: bool) -> OrderTerms:
    """The one shared ``OrderTerms`` for this combination."""
    key = (order_type, tif, stp, post_only)
    terms = _TERMS.get(key)
    if terms is None:
        terms = _TERMS[key] = OrderTerms(order_type, tif, stp, post_only)
    return terms


class Order:
    """A live order: resting in a level, or (as ``StopOrder``) waiting for its trigger.

    ``qty`` is the remaining quantity; ``qty == 0`` marks an order that is no
    longer live (filled or cancelled) and is only waiting to leave its queue.
    """

    __slots__ = ("account", "client_order_id", "filled", "order_id", "price", "qty", "side", "symbol", "terms")

    def __init__(
        self,
        order_id: int,
        account: Account,
        client_order_id: str,
        symbol: str,
        side: Side,
        price: int,
        qty: int,
        terms: OrderTerms,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.filled = 0
        self.terms = terms

    @property
    def stop_price(self) -> int:
        return 0


class StopOrder(Order):
    """A stop order. Until triggered its terms say STOP_MARKET or STOP_LIMIT;
    triggering switches them to MARKET or LIMIT and it trades as such."""

    __slots__ = ("stop",)

    def __init__(
        self,
        order_id: int,
        account: Account,
        client_order_id: str,
        symbol: str,
        side: Side,
        price: int,
        qty: int,
        terms: OrderTerms,
        stop: int,
    ) -> None:
        super().__init__(order_id, account, client_order_id, symbol, side, price, qty, terms)
        self.stop = stop

    @property
    def stop_price(self) -> int:
        return self.stop


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
        "touched_asks",
        "touched_bids",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        # Pending stops by order id. Stops are few; triggering scans them.
        self.buy_stops: dict[int, StopOrder] = {}
        self.sell_stops: dict[int, StopOrder] = {}
        self.last_price = 0  # ticks of the last trade; 0 before the first
        # Risk limits compiled to this instrument's units (NO_LIMIT = none).
        self.max_order_lots = NO_LIMIT
        self.max_notional = NO_LIMIT  # in tick*lot units
        # Levels changed by the command being handled, for BookDelta events.
        self.touched_bids: list[int] = []
        self.touched_asks: list[int] = []

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def reference_price(self) -> int:
        return self.last_price or self.instrument.reference_price
