"""The order book of one symbol: price levels, FIFO queues and pending stops.

Invariants (checked by the property tests):

* Price-time priority. The best bid is the highest bid price, the best ask the
  lowest ask price; inside a level, orders are matched first in, first out.
* Never crossed after a command: best bid < best ask whenever both exist.
* ``PriceLevel.qty`` is the sum of the live orders' remaining quantities and
  ``PriceLevel.count`` their number. A level with no live order is removed.

Representation, chosen for speed in CPython (and compiled with mypyc):

* Each side is a ``dict`` price -> ``PriceLevel`` plus a binary heap of prices
  (negated for bids). Heap entries are removed lazily: an entry whose level is
  gone is popped when it reaches the top, and the heap is rebuilt when stale
  entries outnumber live ones. The best level is cached until it empties or a
  better one opens.
* A level is a list of orders read from ``head`` on (a list, not a deque:
  compiled, list indexing and appends are direct C calls, a deque's are
  generic method calls). Cancelling marks the order dead (``qty == 0``) in
  O(1); dead orders are skipped when they reach the front, and a level drops
  its consumed prefix, or compacts itself when dead entries dominate.
* Open orders are found by id in one list (``OpenOrders``: ids are
  consecutive), finished ones in ``FinishedOrders`` (appends only; the id
  index is built when a query needs it).
* Orders, levels and the engine's events are never part of a reference cycle,
  so they are compiled as ``acyclic`` classes: the cyclic garbage collector
  neither tracks them nor runs because of them (see ``engine.native``).
"""

from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush

from engine.events import TradeExecuted
from engine.instruments import Instrument
from engine.native import mypyc_attr
from engine.risk import NO_LIMIT
from engine.types import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce


@mypyc_attr(acyclic=True)
class Account:
    """One trader: how many open orders it has, and the client order ids it has used.

    Nothing an account holds points back at it (an order names its trader),
    so accounts and orders are never in a reference cycle.
    """

    __slots__ = ("client_ids", "open_count", "trader")

    def __init__(self, trader: str) -> None:
        self.trader = trader
        self.open_count = 0  # its orders in the engine's OpenOrders
        # Client order id -> the order id it was given: the ids of open orders
        # and of finished ones still in the engine's de-duplication window
        # (``Engine._remember`` drops an id when its entry leaves the window),
        # so a resent order is recognised as a duplicate even after it filled.
        self.client_ids: dict[str, int] = {}


@mypyc_attr(acyclic=True)
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


@mypyc_attr(acyclic=True)
class Order:
    """A live order: resting in a level, or (as ``StopOrder``) waiting for its trigger.

    ``qty`` is the remaining quantity; ``qty == 0`` marks an order that is no
    longer live (filled or cancelled) and is only waiting to leave its queue.
    An order names its ``trader`` rather than pointing at the ``Account``
    that holds it: that keeps orders out of reference cycles, so they need
    no garbage-collector tracking (see ``engine.native``).
    """

    __slots__ = ("client_order_id", "filled", "order_id", "price", "qty", "side", "symbol", "terms", "trader")

    def __init__(
        self,
        order_id: int,
        trader: str,
        client_order_id: str,
        symbol: str,
        side: Side,
        price: int,
        qty: int,
        terms: OrderTerms,
    ) -> None:
        self.order_id = order_id
        self.trader = trader
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


@mypyc_attr(acyclic=True)
class StopOrder(Order):
    """A stop order. Until triggered its terms say STOP_MARKET or STOP_LIMIT;
    triggering switches them to MARKET or LIMIT and it trades as such."""

    __slots__ = ("stop",)

    def __init__(
        self,
        order_id: int,
        trader: str,
        client_order_id: str,
        symbol: str,
        side: Side,
        price: int,
        qty: int,
        terms: OrderTerms,
        stop: int,
    ) -> None:
        super().__init__(order_id, trader, client_order_id, symbol, side, price, qty, terms)
        self.stop = stop

    @property
    def stop_price(self) -> int:
        return self.stop


@mypyc_attr(acyclic=True)
class PriceLevel:
    """One price's FIFO queue: ``orders[head:]`` in time priority, dead entries included."""

    __slots__ = ("count", "dead", "head", "next_touched", "orders", "price", "qty", "touched")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: list[Order] = []
        self.head = 0  # entries before it have left the queue
        self.qty = 0
        self.count = 0
        self.dead = 0  # dead orders in ``orders[head:]``
        # In its side's chain of levels touched by the command being handled.
        self.touched = False
        self.next_touched: PriceLevel | None = None

    def append(self, order: Order) -> None:
        self.orders.append(order)
        self.qty += order.qty
        self.count += 1

    def kill(self, order: Order) -> None:
        """Remove a live order from this level's totals; its slot is reclaimed lazily."""
        self.qty -= order.qty
        self.count -= 1
        order.qty = 0
        orders = self.orders
        if orders[self.head] is order:
            self.advance(self.head + 1)
        else:
            self.dead += 1
            if self.dead > 64 and self.dead > self.count:
                self.orders = [o for o in orders[self.head :] if o.qty]
                self.head = 0
                self.dead = 0

    def advance(self, head: int) -> None:
        """Make ``head`` the front of the queue; drop the prefix once it is most of the list."""
        if head > 64 and head * 2 > len(self.orders):
            del self.orders[:head]
            head = 0
        self.head = head

    def live_orders(self) -> list[Order]:
        return [o for o in self.orders[self.head :] if o.qty]


@mypyc_attr(acyclic=True)
class BookSide:
    """One side of a book: levels by price, a lazy heap for the best price, and the levels a command touched."""

    __slots__ = ("_best", "_heap", "_last_touched", "_sign", "first_touched", "levels", "side")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.levels: dict[int, PriceLevel] = {}
        self._heap: list[int] = []
        # Bids are stored negated so the heap's minimum is the best price.
        self._sign = -1 if side is Side.BUY else 1
        # The best level, once found: valid while it has orders (an emptied
        # level is never refilled) and until a better level opens.
        self._best: PriceLevel | None = None
        # Levels changed by the command being handled, in the order first
        # touched, for its BookDelta events: a chain through the levels
        # themselves (no list to grow and free per command; a flag on the
        # level, not a membership test, keeps each in it once).
        self.first_touched: PriceLevel | None = None
        self._last_touched: PriceLevel | None = None

    def best(self) -> PriceLevel | None:
        level = self._best
        if level is not None and level.count:
            return level
        heap = self._heap
        levels = self.levels
        while heap:
            level = levels.get(heap[0] * self._sign)
            if level is not None:
                self._best = level
                return level
            heappop(heap)
        self._best = None
        return None

    def level_for(self, price: int) -> PriceLevel:
        best = self._best
        if best is not None and best.price == price and best.count:
            return best  # most orders join the best level: skip the lookup
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
            if best is not None and (price > best.price if self._sign < 0 else price < best.price):
                self._best = level
        return level

    def touch(self, level: PriceLevel) -> None:
        if not level.touched:
            level.touched = True
            last = self._last_touched
            if last is None:
                self.first_touched = level
            else:
                last.next_touched = level
            self._last_touched = level

    def take_touched(self) -> PriceLevel | None:
        """The first touched level (follow ``next_touched``); the side starts a new chain."""
        first = self.first_touched
        self.first_touched = None
        self._last_touched = None
        return first

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
        "size_limited",
        "symbol",
        "trades",
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
        self.size_limited = False
        # The engine's recent-trades history of this symbol (the same deque
        # as ``Engine.trades[symbol]``), at hand for every fill.
        self.trades: deque[TradeExecuted] = deque()

    def set_limits(self, max_order_lots: int, max_notional: int) -> None:
        self.max_order_lots = max_order_lots
        self.max_notional = max_notional
        # Whether an order's size can fail these limits at all. Checking only
        # then also spares comparing with NO_LIMIT, which does not fit a
        # compiled (tagged) int and is compared as a Python int.
        self.size_limited = max_order_lots != NO_LIMIT or max_notional != NO_LIMIT or self.instrument.max_qty > NO_LIMIT

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def reference_price(self) -> int:
        return self.last_price or self.instrument.reference_price


@mypyc_attr(acyclic=True)
class FinishedOrders:
    """The last ``capacity`` finished orders and how each ended, oldest first, findable by order id.

    An order finishes on the hot path; looking a finished one up is a rare
    query. So ``add`` only appends to two lists (the oldest entry leaves the
    window by moving ``_head``), and the id index is brought up to date by
    ``find``. Every order id finishes at most once.
    """

    __slots__ = ("_base", "_head", "_index", "_indexed", "_orders", "_statuses", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # The window is ``_orders[_head:]``; ``_base`` is the absolute
        # position (count of orders ever added) of ``_orders[0]``.
        self._orders: list[Order] = []
        self._statuses: list[OrderStatus] = []
        self._head = 0
        self._base = 0
        # Order id -> absolute position, for positions below ``_indexed``;
        # may still name orders that have left the window.
        self._index: dict[int, int] = {}
        self._indexed = 0

    def add(self, order: Order, status: OrderStatus) -> None:
        orders = self._orders
        orders.append(order)
        self._statuses.append(status)
        if len(orders) - self._head > self.capacity:
            self._head += 1
            if self._head > 1024 and self._head * 2 > len(orders):
                self._drop_prefix()

    def load(self, order: Order, status: OrderStatus) -> None:
        """Append without evicting (restoring a snapshot's history as it was)."""
        self._orders.append(order)
        self._statuses.append(status)

    def find(self, order_id: int) -> tuple[Order, OrderStatus] | None:
        self._catch_up()
        pos = self._index.get(order_id)
        if pos is None or pos < self._base + self._head:
            return None
        return self._orders[pos - self._base], self._statuses[pos - self._base]

    def entries(self) -> list[tuple[Order, OrderStatus]]:
        head = self._head
        return list(zip(self._orders[head:], self._statuses[head:], strict=True))

    def _drop_prefix(self) -> None:
        head = self._head
        del self._orders[:head]
        del self._statuses[:head]
        self._base += head
        self._head = 0

    def _catch_up(self) -> None:
        base = self._base
        orders = self._orders
        index = self._index
        end = base + len(orders)
        for pos in range(max(self._indexed, base), end):
            index[orders[pos - base].order_id] = pos
        self._indexed = end
        live = len(orders) - self._head
        if len(index) > 2 * live + 1024:  # forget the orders that left the window
            start = base + self._head
            self._index = {orders[pos - base].order_id: pos for pos in range(start, end)}


@mypyc_attr(acyclic=True)
class OpenOrders:
    """Every open order (resting, or a stop waiting for its trigger) by order id.

    Order ids are handed out consecutively, so a list indexed by
    ``order_id - _base`` finds an order without hashing: a dict keyed by
    ``int`` boxes the id on every access and compares it with a stored key
    object elsewhere in memory. A finished order's slot is None; ``_head``
    skips the leading ones, and the list drops them once they are most of it.
    """

    __slots__ = ("_base", "_head", "_slots")

    def __init__(self) -> None:
        self._slots: list[Order | None] = []
        self._base = 1  # the order id of ``_slots[0]``
        self._head = 0  # ``_slots[:_head]`` are all None

    def get(self, order_id: int) -> Order | None:
        i = order_id - self._base
        if i < self._head or i >= len(self._slots):
            return None
        return self._slots[i]

    def put(self, order: Order) -> bool:
        """Make ``order`` the open order of its id; True if the id had none."""
        slots = self._slots
        if self._head == len(slots):  # nothing open: start afresh at this id
            slots.clear()
            self._base = order.order_id
            self._head = 0
        i = order.order_id - self._base
        while len(slots) <= i:  # the ids in between went to orders that never rested
            slots.append(None)
        empty = slots[i] is None
        slots[i] = order
        return empty

    def remove(self, order_id: int) -> bool:
        """Close the id's slot; True if it held an open order."""
        i = order_id - self._base
        slots = self._slots
        if i < self._head or i >= len(slots) or slots[i] is None:
            return False
        slots[i] = None
        if i == self._head:
            head = i + 1
            while head < len(slots) and slots[head] is None:
                head += 1
            if head > 1024 and head * 2 > len(slots):
                del slots[:head]
                self._base += head
                head = 0
            self._head = head
        return True

    def of_trader(self, trader: str, symbol: str = "") -> list[Order]:
        """A trader's open orders (in ``symbol``, or all), in order-id order."""
        return [o for o in self._slots[self._head :] if o is not None and o.trader == trader and (not symbol or o.symbol == symbol)]
