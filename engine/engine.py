"""The matching engine: every symbol's book, every trader's account, one sequence.

``Engine.handle(command) -> list[Event]`` is the only way to change state. It is
deterministic: no clock, no randomness, no I/O, no dict ordering that depends on
hashing of anything but the commands. The same command sequence yields the same
events and the same ``state_hash()`` on any machine.

Rules implemented here (each has tests):

* Validation against the instrument, then idempotency (a client order id is
  unique per trader), then pre-trade risk, then execution.
* Price-time priority; trades print at the maker's price; market orders never
  rest; IOC and market remainders are cancelled with a reason; FOK fills
  completely or emits no trade at all; post-only is rejected if it would take.
* Stop-market and stop-limit orders trigger on the last trade price (a buy
  stop when last >= stop, a sell stop when last <= stop) and then behave as a
  market or limit order; stops triggered together run in order-id order.
* Self-trade prevention per incoming order.
* A trader can see, cancel and replace only its own orders: another trader's
  order id is simply unknown to it.

De-duplication window (docs/exactly-once.md). Client order ids and request
ids are remembered in a window counted in commands, never in time, so that the
same journal always replays to the same state:

* a client order id is held while its order is open (a cancel or replace may
  name it) and, after the order finished, while it is among the last
  ``dedup_window`` finished entries; a place reusing a held id is refused
  ``DUPLICATE_CLIENT_ORDER_ID`` (naming the first order), an id that left the
  window is free again;
* a cancel, replace or mass cancel with a ``request_id`` (per trader; 0 = none)
  stores its events as one entry of the same window; the same request id
  again, while the entry is in the window, is answered with those events and
  nothing is applied (``repeated_from`` tells the caller, whose market data
  and counts must not see them twice); after it left, the command is new.

So memory is the open orders plus ``dedup_window`` entries, whatever the order
flow. The window's time bound lives in the gateway (it needs a clock).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Final

from engine.book import Account, BookSide, FinishedOrders, OpenOrders, Order, OrderBook, PriceLevel, StopOrder, terms_for
from engine.commands import AddInstrument, CancelOrder, MassCancel, PlaceOrder, ReplaceOrder
from engine.errors import MalformedMessage
from engine.events import (
    BookDelta,
    Event,
    InstrumentAdded,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    StopTriggered,
    TradeExecuted,
)
from engine.instruments import Instrument
from engine.queries import BookDepth, L2Level, OrderView
from engine.reasons import CancelReason, RejectReason
from engine.risk import NO_LIMIT, RiskLimits
from engine.types import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce

# Module constants are Final so that, compiled, they are C statics rather
# than module-dict lookups on the hot path.
_LIMIT: Final = OrderType.LIMIT
_MARKET: Final = OrderType.MARKET
_STOP_MARKET: Final = OrderType.STOP_MARKET
_STOP_LIMIT: Final = OrderType.STOP_LIMIT
_GTC: Final = TimeInForce.GTC
_IOC: Final = TimeInForce.IOC
_FOK: Final = TimeInForce.FOK
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_MAX_CLIENT_ID: Final = 64
DEFAULT_DEDUP_WINDOW: Final = 100_000
_FOK_NOT_FILLED: Final = CancelReason.FOK_NOT_FILLED
_IOC_REMAINDER: Final = CancelReason.IOC_REMAINDER
_MARKET_REMAINDER: Final = CancelReason.MARKET_REMAINDER
_MASS_CANCEL: Final = CancelReason.MASS_CANCEL
_CANCEL_ON_DISCONNECT: Final = CancelReason.CANCEL_ON_DISCONNECT
_SELF_TRADE: Final = CancelReason.SELF_TRADE
_CANCELLED_BY_USER: Final = CancelReason.USER
_STATUS_CANCELLED: Final = OrderStatus.CANCELLED
_STATUS_FILLED: Final = OrderStatus.FILLED
_STATUS_NEW: Final = OrderStatus.NEW
_STATUS_PARTIALLY_FILLED: Final = OrderStatus.PARTIALLY_FILLED
_STATUS_PENDING_TRIGGER: Final = OrderStatus.PENDING_TRIGGER
_DUPLICATE_CLIENT_ORDER_ID: Final = RejectReason.DUPLICATE_CLIENT_ORDER_ID
_INSTRUMENT_EXISTS: Final = RejectReason.INSTRUMENT_EXISTS
_INVALID_ORDER: Final = RejectReason.INVALID_ORDER
_INVALID_PRICE: Final = RejectReason.INVALID_PRICE
_INVALID_QUANTITY: Final = RejectReason.INVALID_QUANTITY
_ORDER_NOT_REPLACEABLE: Final = RejectReason.ORDER_NOT_REPLACEABLE
_POST_ONLY_WOULD_TAKE: Final = RejectReason.POST_ONLY_WOULD_TAKE
_PRICE_OUT_OF_BAND: Final = RejectReason.PRICE_OUT_OF_BAND
_QUANTITY_ABOVE_MAX: Final = RejectReason.QUANTITY_ABOVE_MAX
_QUANTITY_BELOW_MIN: Final = RejectReason.QUANTITY_BELOW_MIN
_RISK_MAX_NOTIONAL: Final = RejectReason.RISK_MAX_NOTIONAL
_RISK_MAX_OPEN_ORDERS: Final = RejectReason.RISK_MAX_OPEN_ORDERS
_RISK_MAX_ORDER_QTY: Final = RejectReason.RISK_MAX_ORDER_QTY
_UNKNOWN_ORDER: Final = RejectReason.UNKNOWN_ORDER
_UNKNOWN_SYMBOL: Final = RejectReason.UNKNOWN_SYMBOL
_STP_CANCEL_NEWEST: Final = SelfTradePrevention.CANCEL_NEWEST
_STP_CANCEL_BOTH: Final = SelfTradePrevention.CANCEL_BOTH
_STP_CANCEL_OLDEST: Final = SelfTradePrevention.CANCEL_OLDEST
_STP_DECREMENT: Final = SelfTradePrevention.DECREMENT


class Engine:
    """A multi-symbol, single-threaded, deterministic matching engine."""

    def __init__(
        self,
        risk: RiskLimits | None = None,
        trader_limits: Mapping[str, RiskLimits] | None = None,
        trade_history: int = 1000,
        terminal_history: int = 10_000,
        dedup_window: int = DEFAULT_DEDUP_WINDOW,
    ) -> None:
        self.risk = risk if risk is not None else RiskLimits()
        self.max_open_orders = self.risk.max_open_orders
        self.trader_limits: dict[str, RiskLimits] = dict(trader_limits or {})
        self.trade_history = trade_history
        self.terminal_history = terminal_history
        self.seq = 0  # last event sequence number
        self.last_order_id = 0
        self.last_trade_id = 0
        self.books: dict[str, OrderBook] = {}
        self.accounts: dict[str, Account] = {}
        self.open = OpenOrders()
        self.trades: dict[str, deque[TradeExecuted]] = {}
        # The last ``terminal_history`` finished orders, for status queries.
        self.terminal = FinishedOrders(terminal_history)
        self._trader_risk: dict[tuple[str, str], tuple[int, int, int]] = {}
        self._last_terms = terms_for(_LIMIT, _GTC, SelfTradePrevention.CANCEL_NEWEST, False)
        # The de-duplication window (module docstring): finished entries oldest
        # first, each (trader, client order id, order id, request id), and the
        # answers of the request ids among them by (trader, request id): (the
        # entry's position, its events). ``dedup_position`` counts entries ever added.
        self.dedup_window = dedup_window
        self.dedup_position = 0
        self.recent: deque[tuple[str, str, int, int]] = deque()
        self.requests: dict[tuple[str, int], tuple[int, list[Event]]] = {}
        # Set by ``handle``: the window position of the answer it repeated, or -1 (it applied the command).
        self.repeated_from = -1

    # ------------------------------------------------------------------ API
    def handle(self, command: object) -> list[Event]:
        """Apply one command and return its events.

        A place, cancel or replace always yields at least one event; a mass
        cancel with nothing to cancel yields none.
        """
        ev: list[Event] = []
        kind = type(command)
        self.repeated_from = -1
        if kind is PlaceOrder:
            assert isinstance(command, PlaceOrder)
            self._place(command, ev)
        elif kind is CancelOrder:
            assert isinstance(command, CancelOrder)
            if command.request_id:
                return self._once(command.trader, command.request_id, command)
            self._cancel(command, ev)
        elif kind is ReplaceOrder:
            assert isinstance(command, ReplaceOrder)
            if command.request_id:
                return self._once(command.trader, command.request_id, command)
            self._replace(command, ev)
        elif kind is MassCancel:
            assert isinstance(command, MassCancel)
            if command.request_id:
                return self._once(command.trader, command.request_id, command)
            self._mass_cancel(command, ev)
        elif kind is AddInstrument:
            assert isinstance(command, AddInstrument)
            self._add_instrument(command.instrument, ev)
        else:
            raise MalformedMessage(f"not a command: {kind.__name__}")
        return ev

    def _once(self, trader: str, request_id: int, command: CancelOrder | ReplaceOrder | MassCancel) -> list[Event]:
        """Apply a command that carries a request id, unless the window holds that id's answer: then repeat it."""
        key = (trader, request_id)
        answered = self.requests.get(key)
        if answered is not None:
            self.repeated_from = answered[0]
            return answered[1]
        ev: list[Event] = []
        if isinstance(command, CancelOrder):
            self._cancel(command, ev)
        elif isinstance(command, ReplaceOrder):
            self._replace(command, ev)
        else:
            self._mass_cancel(command, ev)
        self.requests[key] = (self.dedup_position, ev)
        self._remember(trader, "", 0, request_id)
        return ev

    def _remember(self, trader: str, client_order_id: str, order_id: int, request_id: int) -> None:
        """Add a finished entry to the window; forget the oldest one beyond ``dedup_window``."""
        recent = self.recent
        recent.append((trader, client_order_id, order_id, request_id))
        self.dedup_position += 1
        if len(recent) > self.dedup_window:
            old_trader, old_coid, old_order, old_request = recent.popleft()
            if old_request:
                del self.requests[(old_trader, old_request)]
            else:
                ids = self.accounts[old_trader].client_ids
                if ids.get(old_coid, 0) == old_order:  # else the id was given to a later order: keep it
                    del ids[old_coid]

    def handle_all(self, commands: Iterable[object]) -> list[Event]:
        out: list[Event] = []
        for command in commands:
            out.extend(self.handle(command))
        return out

    def snapshot(self) -> dict[str, object]:
        from engine.snapshot import snapshot

        return snapshot(self)

    @staticmethod
    def restore(state: dict[str, object]) -> Engine:
        from engine.snapshot import restore

        return restore(state)

    def state_hash(self) -> str:
        from engine.snapshot import state_hash

        return state_hash(self)

    def instrument(self, symbol: str) -> Instrument | None:
        book = self.books.get(symbol)
        return book.instrument if book is not None else None

    @property
    def instruments(self) -> list[Instrument]:
        return [b.instrument for b in self.books.values()]

    # -------------------------------------------------------------- queries
    def depth(self, symbol: str, levels: int = 10) -> BookDepth | None:
        """Level-2 depth, best first, as of event ``seq``."""
        book = self.books.get(symbol)
        if book is None:
            return None
        return BookDepth(symbol, self.seq, _levels(book.bids, levels), _levels(book.asks, levels), book.last_price)

    def best_bid_offer(self, symbol: str) -> BookDepth | None:
        return self.depth(symbol, 1)

    def order_status(self, trader: str, order_id: int) -> OrderView | None:
        account = self.accounts.get(trader)
        if account is None:
            return None
        order = self.open.get(order_id)
        if order is not None and order.trader == trader:
            return _view(order, _live_status(order))
        done = self.terminal.find(order_id)
        if done is not None and done[0].trader == trader:
            return _view(done[0], done[1])
        return None

    def order_id_for(self, trader: str, client_order_id: str) -> int:
        """The exchange order id a trader's client order id was given (0 if none)."""
        account = self.accounts.get(trader)
        if account is None:
            return 0
        return account.client_ids.get(client_order_id, 0)

    def open_orders(self, trader: str, symbol: str = "") -> list[OrderView]:
        if trader not in self.accounts:
            return []
        return [_view(o, _live_status(o)) for o in self.open.of_trader(trader, symbol)]

    def recent_trades(self, symbol: str, limit: int = 100) -> list[TradeExecuted]:
        trades = self.trades.get(symbol)
        if trades is None or limit <= 0:
            return []
        return list(trades)[-limit:]

    # ---------------------------------------------------------- placement
    def _reject(
        self,
        ev: list[Event],
        trader: str,
        client_order_id: str,
        symbol: str,
        reason: RejectReason,
        message: str,
        order_id: int = 0,
    ) -> None:
        self.seq += 1
        ev.append(OrderRejected(self.seq, trader, client_order_id, symbol, reason, message, order_id))

    def _place(self, cmd: PlaceOrder, ev: list[Event]) -> None:
        book = self.books.get(cmd.symbol)
        if book is None:
            self._reject(ev, cmd.trader, cmd.client_order_id, cmd.symbol, _UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol!r}")
            return
        problem = _validate_place(cmd, book.instrument)
        if problem is not None:
            self._reject(ev, cmd.trader, cmd.client_order_id, cmd.symbol, problem[0], problem[1])
            return
        trader = cmd.trader
        account = self.accounts.get(trader)
        if account is None:
            account = self.accounts[trader] = Account(trader)
        coid = cmd.client_order_id
        if coid:
            # Claim the client id for the number the order will get (one dict
            # probe for check and insert); a rejection below gives it back.
            order_id = self.last_order_id + 1
            earlier = account.client_ids.setdefault(coid, order_id)
            if earlier != order_id:
                message = f"client order id {coid!r} already used (order {earlier})"
                self._reject(ev, trader, coid, cmd.symbol, _DUPLICATE_CLIENT_ORDER_ID, message, earlier)
                return
        # The price the order may trade up (buy) or down (sell) to; 0 = no limit.
        limit = cmd.price if cmd.price else self._protection_limit(book, cmd.side)
        if self._passes_risk(cmd, book, account, limit, ev):
            self._open(cmd, book, account, limit, ev)
        elif coid:
            del account.client_ids[coid]

    def _passes_risk(self, cmd: PlaceOrder, book: OrderBook, account: Account, limit: int, ev: list[Event]) -> bool:
        """Pre-trade risk and the post-only rule; rejects and returns False if the order may not go on."""
        trader = cmd.trader
        if self.trader_limits:
            max_lots, max_notional, max_open = self._limits(trader, book)
            sized = True
        else:
            max_lots = book.max_order_lots
            max_notional = book.max_notional
            max_open = self.max_open_orders
            sized = book.size_limited
        price = cmd.price
        order_type = cmd.order_type
        reason: RejectReason | None = None
        if sized and cmd.qty > max_lots:
            reason, message = _RISK_MAX_ORDER_QTY, f"quantity above the limit of {max_lots} lots"
        elif sized and max_notional != NO_LIMIT and self._notional(book, cmd.side, cmd.qty, price or cmd.stop_price, limit) > max_notional:
            reason, message = _RISK_MAX_NOTIONAL, "order notional above the limit"
        elif price and not _in_band(book, price):
            reason, message = _PRICE_OUT_OF_BAND, "limit price outside the price band"
        elif (
            max_open
            and (order_type is _STOP_MARKET or order_type is _STOP_LIMIT or (order_type is _LIMIT and cmd.tif is _GTC))
            and account.open_count >= max_open
        ):
            reason, message = _RISK_MAX_OPEN_ORDERS, f"at most {max_open} open orders"
        elif cmd.post_only and _would_take(book, cmd.side, price):
            reason, message = _POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"
        if reason is None:
            return True
        self._reject(ev, trader, cmd.client_order_id, cmd.symbol, reason, message)
        return False

    def _open(self, cmd: PlaceOrder, book: OrderBook, account: Account, limit: int, ev: list[Event]) -> None:
        """Accept a checked placement: number it, then execute it (or park it, if a stop)."""
        order_type = cmd.order_type
        tif = cmd.tif
        self.last_order_id += 1
        order_id = self.last_order_id
        terms = self._last_terms  # most orders repeat the previous order's terms: skip the lookup
        if terms.order_type is not order_type or terms.tif is not tif or terms.stp is not cmd.stp or terms.post_only != cmd.post_only:
            terms = self._last_terms = terms_for(order_type, tif, cmd.stp, cmd.post_only)
        trader = cmd.trader
        coid = cmd.client_order_id
        symbol = book.symbol
        side = cmd.side
        price = cmd.price
        qty = cmd.qty
        self.seq += 1
        ev.append(OrderAccepted(self.seq, order_id, trader, coid, symbol, side, order_type, tif, price, qty, cmd.stop_price))
        trades_before = self.last_trade_id
        if order_type is not _STOP_MARKET and order_type is not _STOP_LIMIT:
            order = Order(order_id, trader, coid, symbol, side, price, qty, terms)
            self._execute(book, account, order, limit, ev)
        else:
            stop = StopOrder(order_id, trader, coid, symbol, side, price, qty, terms, cmd.stop_price)
            if _stop_reached(stop, book.last_price):
                self._fire_stop(book, stop, book.last_price, ev)
            else:
                (book.buy_stops if side is _BUY else book.sell_stops)[order_id] = stop
                self._set_open(account, stop)
        if self.last_trade_id != trades_before and (book.buy_stops or book.sell_stops):
            self._trigger_stops(book, ev)
        self._flush_deltas(book, ev)

    def _limits(self, trader: str, book: OrderBook) -> tuple[int, int, int]:
        if trader not in self.trader_limits:
            return book.max_order_lots, book.max_notional, self.max_open_orders
        key = (trader, book.symbol)
        cached = self._trader_risk.get(key)
        if cached is None:
            limits = self.trader_limits[trader]
            lots, notional = limits.compile_for(book.instrument)
            cached = self._trader_risk[key] = (lots, notional, limits.max_open_orders)
        return cached

    def _notional(self, book: OrderBook, side: Side, qty: int, price: int, limit: int) -> int:
        """What the order could cost, in tick*lot units.

        A priced order is valued at its price (a stop-market at its stop
        price). A market order is valued at what it would pay sweeping the
        book now, plus its unfilled rest at the worst price it may reach: the
        band edge if there is one, else the worst price it would have paid.
        """
        if price:
            return price * qty
        notional = 0
        worst = 0
        remaining = qty
        opposite = book.asks if side is _BUY else book.bids
        for level_price in opposite.prices_best_first():
            if limit and (level_price > limit if side is _BUY else level_price < limit):
                break
            take = min(remaining, opposite.levels[level_price].qty)
            notional += take * level_price
            worst = level_price
            remaining -= take
            if remaining == 0:
                return notional
        return notional + remaining * (limit or worst or book.reference_price())

    def _protection_limit(self, book: OrderBook, side: Side) -> int:
        """A market order may not trade outside the price band (0 = unbounded)."""
        band = book.instrument.price_band_bps
        ref = book.reference_price()
        if not band or not ref:
            return 0
        if side is _BUY:
            return ref + ref * band // 10_000
        return max(1, ref - ref * band // 10_000)

    # ---------------------------------------------------------- execution
    def _execute(self, book: OrderBook, account: Account, taker: Order, limit: int, ev: list[Event]) -> None:
        """Match ``taker`` (an order of ``account``) against the book, then rest or cancel what is left."""
        terms = taker.terms
        tif = terms.tif
        if tif is _FOK and not self._fok_fillable(book, taker, limit):
            self._finish(taker, _FOK_NOT_FILLED, ev)
            return
        if not self._match(book, taker, limit, ev):
            return  # cancelled by self-trade prevention
        if taker.qty == 0:
            self._retire(taker, _STATUS_FILLED)
        elif terms.order_type is _MARKET:
            self._finish(taker, _MARKET_REMAINDER, ev)
        elif tif is _IOC:
            self._finish(taker, _IOC_REMAINDER, ev)
        elif tif is _FOK:  # pragma: no cover - excluded by _fok_fillable
            self._finish(taker, _FOK_NOT_FILLED, ev)
        else:
            side = book.bids if taker.side is _BUY else book.asks
            level = side.level_for(taker.price)
            level.append(taker)
            side.touch(level)
            self._set_open(account, taker)

    def _finish(self, order: Order, reason: CancelReason, ev: list[Event]) -> None:
        """Cancel the remainder of an order that is not resting in a level."""
        self.seq += 1
        ev.append(OrderCancelled(self.seq, order.order_id, order.trader, order.client_order_id, order.symbol, reason, order.qty))
        order.qty = 0
        self._retire(order, _STATUS_CANCELLED)

    def _match(self, book: OrderBook, taker: Order, limit: int, ev: list[Event]) -> bool:
        """Trade ``taker`` against the opposite side, best level first; False if self-trade prevention cancelled it."""
        is_buy = taker.side is _BUY
        opposite = book.asks if is_buy else book.bids
        while taker.qty > 0:
            level = opposite.best()
            if level is None:
                break
            price = level.price
            if limit and (price > limit if is_buy else price < limit):
                break
            opposite.touch(level)
            going = self._match_level(book, level, taker, ev)
            if level.count == 0:
                opposite.levels.pop(price, None)
            if not going:
                return False
        return True

    def _match_level(self, book: OrderBook, level: PriceLevel, taker: Order, ev: list[Event]) -> bool:
        """Fill ``taker`` from one level's queue, oldest first; False if self-trade prevention ended it."""
        taker_trader = taker.trader
        orders = level.orders
        i = level.head
        while i < len(orders):
            maker = orders[i]
            maker_qty = maker.qty
            if maker_qty == 0:  # cancelled or moved earlier: it leaves the queue only now
                i += 1
                level.dead -= 1
                continue
            if maker.trader == taker_trader:
                level.head = i
                if not self._prevent_self_trade(book, level, maker, taker, ev):
                    return False
                orders = level.orders  # the maker may have left the queue
                i = level.head
                continue
            taker_qty = taker.qty
            fill = maker_qty if maker_qty < taker_qty else taker_qty
            level.qty -= fill
            self._trade(book, maker, taker, fill, level.price, ev)
            if maker.qty == 0:
                i += 1
                level.count -= 1
                self._retire(maker, _STATUS_FILLED)
            if taker.qty == 0:
                break
        level.advance(i)
        return True

    def _trade(self, book: OrderBook, maker: Order, taker: Order, fill: int, price: int, ev: list[Event]) -> None:
        """Fill ``fill`` lots between two orders at ``price`` and report it."""
        maker_qty = maker.qty - fill
        taker_qty = taker.qty - fill
        maker.qty = maker_qty
        maker.filled += fill
        taker.qty = taker_qty
        taker.filled += fill
        self.seq += 1
        self.last_trade_id += 1
        trade = TradeExecuted(
            self.seq,
            self.last_trade_id,
            book.symbol,
            price,
            fill,
            taker.side,
            maker.order_id,
            maker.trader,
            maker.client_order_id,
            maker_qty,
            taker.order_id,
            taker.trader,
            taker.client_order_id,
            taker_qty,
        )
        ev.append(trade)
        book.trades.append(trade)
        book.last_price = price

    def _prevent_self_trade(self, book: OrderBook, level: PriceLevel, maker: Order, taker: Order, ev: list[Event]) -> bool:
        """Apply the taker's self-trade prevention; False if the taker is done."""
        mode = taker.terms.stp
        if mode is _STP_DECREMENT:
            cut = maker.qty if maker.qty < taker.qty else taker.qty
            self._decrement_resting(level, maker, cut, ev)
            taker.qty -= cut
            self.seq += 1
            ev.append(
                OrderCancelled(self.seq, taker.order_id, taker.trader, taker.client_order_id, taker.symbol, _SELF_TRADE, cut, taker.qty)
            )
            if taker.qty == 0:
                self._retire(taker, _STATUS_CANCELLED)
                return False
            return True
        if mode is _STP_CANCEL_OLDEST or mode is _STP_CANCEL_BOTH:
            self._cancel_resting(book, level, maker, _SELF_TRADE, ev)
            if mode is _STP_CANCEL_OLDEST:
                return True
        self._finish(taker, _SELF_TRADE, ev)
        return False

    def _decrement_resting(self, level: PriceLevel, maker: Order, cut: int, ev: list[Event]) -> None:
        if cut == maker.qty:
            self.seq += 1
            ev.append(OrderCancelled(self.seq, maker.order_id, maker.trader, maker.client_order_id, maker.symbol, _SELF_TRADE, cut))
            level.kill(maker)
            self._retire(maker, _STATUS_CANCELLED)
        else:
            maker.qty -= cut
            level.qty -= cut
            self.seq += 1
            ev.append(
                OrderCancelled(self.seq, maker.order_id, maker.trader, maker.client_order_id, maker.symbol, _SELF_TRADE, cut, maker.qty)
            )

    def _fok_fillable(self, book: OrderBook, taker: Order, limit: int) -> bool:
        """Would ``taker`` fill completely? Decides FOK before any state changes."""
        is_buy = taker.side is _BUY
        opposite = book.asks if is_buy else book.bids
        need = taker.qty
        skip_own = taker.terms.stp is _STP_CANCEL_OLDEST
        for price in opposite.prices_best_first():
            if limit and (price > limit if is_buy else price < limit):
                break
            for maker in opposite.levels[price].orders:
                if maker.qty == 0:
                    continue
                if maker.trader == taker.trader:
                    if skip_own:
                        continue
                    return False  # self-trade prevention would stop the fill here
                need -= maker.qty
                if need <= 0:
                    return True
        return False

    def _set_open(self, account: Account, order: Order) -> None:
        if self.open.put(order):
            account.open_count += 1

    def _retire(self, order: Order, status: OrderStatus) -> None:
        """Move a finished order from the open orders to the terminal history (and its client id into the window)."""
        if self.open.remove(order.order_id):
            self.accounts[order.trader].open_count -= 1
        self.terminal.add(order, status)
        if order.client_order_id:
            self._remember(order.trader, order.client_order_id, order.order_id, 0)

    # -------------------------------------------------------------- stops
    def _trigger_stops(self, book: OrderBook, ev: list[Event]) -> None:
        """Fire every stop the last trade price reached, repeating while new trades fire more."""
        while True:
            last = book.last_price
            fired = [o for o in book.buy_stops.values() if o.stop <= last]
            fired.extend(o for o in book.sell_stops.values() if o.stop >= last)
            if not fired:
                return
            fired.sort(key=_order_id)
            for order in fired:
                stops = book.buy_stops if order.side is _BUY else book.sell_stops
                del stops[order.order_id]
            for order in fired:
                self._fire_stop(book, order, last, ev)

    def _fire_stop(self, book: OrderBook, order: StopOrder, trigger_price: int, ev: list[Event]) -> None:
        """Turn a stop into the market or limit order it becomes, and execute it.

        ``trigger_price`` is the last trade price that reached the stop (stops
        fired together all report the same one, even if an earlier one of them
        has traded since).
        """
        self.seq += 1
        ev.append(StopTriggered(self.seq, order.order_id, order.trader, order.client_order_id, order.symbol, order.stop, trigger_price))
        terms = order.terms
        became = _LIMIT if terms.order_type is _STOP_LIMIT else _MARKET
        order.terms = terms_for(became, terms.tif, terms.stp, terms.post_only)
        account = self.accounts[order.trader]
        if self.open.remove(order.order_id):
            account.open_count -= 1
        limit = order.price if order.price else self._protection_limit(book, order.side)
        self._execute(book, account, order, limit, ev)

    # ------------------------------------------------- cancel and replace
    def _find_own(self, trader: str, order_id: int, client_order_id: str) -> Order | None:
        account = self.accounts.get(trader)
        if account is None:
            return None
        if not order_id and client_order_id:
            order_id = account.client_ids.get(client_order_id, 0)
        order = self.open.get(order_id)
        if order is None or order.trader != trader:
            return None  # another trader's order id is simply unknown to this one
        return order

    def _cancel(self, cmd: CancelOrder, ev: list[Event]) -> None:
        order = self._find_own(cmd.trader, cmd.order_id, cmd.client_order_id)
        if order is None:
            self._reject(ev, cmd.trader, cmd.client_order_id, "", _UNKNOWN_ORDER, "no such open order of this trader", cmd.order_id)
            return
        book = self.books[order.symbol]
        self._cancel_open(book, order, _CANCELLED_BY_USER, ev)
        self._flush_deltas(book, ev)

    def _cancel_open(self, book: OrderBook, order: Order, reason: CancelReason, ev: list[Event]) -> None:
        if _is_pending_stop(order):
            del (book.buy_stops if order.side is _BUY else book.sell_stops)[order.order_id]
            self._finish(order, reason, ev)
            return
        side = book.bids if order.side is _BUY else book.asks
        self._cancel_resting(book, side.levels[order.price], order, reason, ev)

    def _cancel_resting(self, book: OrderBook, level: PriceLevel, order: Order, reason: CancelReason, ev: list[Event]) -> None:
        self.seq += 1
        ev.append(OrderCancelled(self.seq, order.order_id, order.trader, order.client_order_id, order.symbol, reason, order.qty))
        level.kill(order)
        self._retire(order, _STATUS_CANCELLED)
        side = book.bids if order.side is _BUY else book.asks
        side.touch(level)
        if level.count == 0:
            del side.levels[level.price]

    def _replace(self, cmd: ReplaceOrder, ev: list[Event]) -> None:
        trader = cmd.trader
        order = self._find_own(trader, cmd.order_id, cmd.client_order_id)
        if order is None or (cmd.symbol and cmd.symbol != order.symbol):
            self._reject(ev, trader, cmd.client_order_id, "", _UNKNOWN_ORDER, "no such open order of this trader", cmd.order_id)
            return
        book = self.books[order.symbol]
        price = cmd.new_price or order.price
        qty = cmd.new_qty or order.qty
        problem = self._check_replace(cmd, order, book, price, qty)
        if problem is not None:
            self._reject(ev, trader, order.client_order_id, order.symbol, problem[0], problem[1], order.order_id)
            return
        if price == order.price and qty <= order.qty:
            self._reduce(book, order, qty, ev)
        else:
            self._requeue(book, order, price, qty, ev)
        self._flush_deltas(book, ev)

    def _check_replace(self, cmd: ReplaceOrder, order: Order, book: OrderBook, price: int, qty: int) -> tuple[RejectReason, str] | None:
        """Why ``order`` may not become ``price`` x ``qty``; None if it may."""
        if _is_pending_stop(order):
            return _ORDER_NOT_REPLACEABLE, "stop orders cannot be replaced"
        if cmd.new_price < 0:
            return _INVALID_PRICE, "price must be positive"
        if cmd.new_qty < 0:
            return _INVALID_QUANTITY, "quantity must be positive"
        instrument = book.instrument
        if qty < instrument.min_qty:
            return _QUANTITY_BELOW_MIN, "quantity below the instrument minimum"
        if qty > instrument.max_qty:
            return _QUANTITY_ABOVE_MAX, "quantity above the instrument maximum"
        if self.trader_limits:
            max_lots, max_notional, _ = self._limits(order.trader, book)
            sized = True
        else:
            max_lots = book.max_order_lots
            max_notional = book.max_notional
            sized = book.size_limited
        if sized and qty > max_lots:
            return _RISK_MAX_ORDER_QTY, f"quantity above the limit of {max_lots} lots"
        if price * qty > max_notional:
            return _RISK_MAX_NOTIONAL, "order notional above the limit"
        if price != order.price and not _in_band(book, price):
            return _PRICE_OUT_OF_BAND, "limit price outside the price band"
        if order.terms.post_only and price != order.price and _would_take(book, order.side, price):
            return _POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"
        return None

    def _reduce(self, book: OrderBook, order: Order, qty: int, ev: list[Event]) -> None:
        """A pure quantity decrease: the order keeps its place in the queue."""
        price = order.price
        side = book.bids if order.side is _BUY else book.asks
        level = side.levels[price]
        level.qty -= order.qty - qty
        order.qty = qty
        self.seq += 1
        ev.append(OrderReplaced(self.seq, order.order_id, order.trader, order.client_order_id, order.symbol, order.side, price, qty, True))
        side.touch(level)

    def _requeue(self, book: OrderBook, order: Order, price: int, qty: int, ev: list[Event]) -> None:
        """Any other change loses priority: the old queue entry dies, a fresh order joins the back (and may trade)."""
        side = book.bids if order.side is _BUY else book.asks
        level = side.levels[order.price]
        level.kill(order)
        side.touch(level)
        if level.count == 0:
            del side.levels[level.price]
        # The fresh order replaces the old one in ``self.open`` when it rests
        # (or leaves it when it fills); it keeps the order id.
        fresh = Order(order.order_id, order.trader, order.client_order_id, order.symbol, order.side, price, qty, order.terms)
        fresh.filled = order.filled
        self.seq += 1
        ev.append(OrderReplaced(self.seq, order.order_id, order.trader, order.client_order_id, order.symbol, order.side, price, qty, False))
        trades_before = self.last_trade_id
        self._execute(book, self.accounts[order.trader], fresh, price, ev)
        if self.last_trade_id != trades_before and (book.buy_stops or book.sell_stops):
            self._trigger_stops(book, ev)

    def _mass_cancel(self, cmd: MassCancel, ev: list[Event]) -> None:
        reason = cmd.reason
        if reason not in (_MASS_CANCEL, _CANCEL_ON_DISCONNECT):
            self._reject(ev, cmd.trader, "", cmd.symbol, _INVALID_ORDER, f"a mass cancel cannot give the reason {reason!r}")
            return
        account = self.accounts.get(cmd.trader)
        if account is None:
            return
        orders = self.open.of_trader(cmd.trader, cmd.symbol)
        by_symbol: dict[str, list[Order]] = {}
        for order in orders:
            by_symbol.setdefault(order.symbol, []).append(order)
        # All cancels first, then the book deltas (the documented event order).
        for symbol in sorted(by_symbol):
            book = self.books[symbol]
            for order in by_symbol[symbol]:
                self._cancel_open(book, order, reason, ev)
        for symbol in sorted(by_symbol):
            self._flush_deltas(self.books[symbol], ev)

    # ---------------------------------------------------------- instruments
    def _add_instrument(self, instrument: Instrument, ev: list[Event]) -> None:
        if instrument.symbol in self.books:
            self._reject(ev, "", "", instrument.symbol, _INSTRUMENT_EXISTS, f"{instrument.symbol} is already listed")
            return
        book = OrderBook(instrument)
        book.set_limits(*self.risk.compile_for(instrument))
        self.books[instrument.symbol] = book
        book.trades = self.trades[instrument.symbol] = deque(maxlen=self.trade_history)
        self._trader_risk.clear()
        self.seq += 1
        ev.append(InstrumentAdded(self.seq, instrument))

    # -------------------------------------------------------------- deltas
    def _flush_deltas(self, book: OrderBook, ev: list[Event]) -> None:
        """Report every level the command changed, in the order first touched, bids first."""
        if book.bids.first_touched is not None:
            self._flush_side(book.symbol, book.bids, ev)
        if book.asks.first_touched is not None:
            self._flush_side(book.symbol, book.asks, ev)

    def _flush_side(self, symbol: str, side: BookSide, ev: list[Event]) -> None:
        """One BookDelta per touched price, with the price's final state (``qty == 0``: gone)."""
        side_id = side.side
        following = side.take_touched()
        while following is not None:
            level = following
            following = level.next_touched
            level.next_touched = None
            if not level.touched:
                continue  # already reported under its price (see below)
            level.touched = False
            price = level.price
            if level.count == 0:
                # Emptied, so removed from the book; the same command may have
                # opened a new level at this price since: report that one here.
                current = side.levels.get(price)
                if current is None:
                    self.seq += 1
                    ev.append(BookDelta(self.seq, symbol, side_id, price, 0, 0))
                    continue
                current.touched = False
                level = current
            self.seq += 1
            ev.append(BookDelta(self.seq, symbol, side_id, price, level.qty, level.count))


# ---------------------------------------------------------------- helpers
def _order_id(order: Order) -> int:
    return order.order_id


def _validate_place(cmd: PlaceOrder, instrument: Instrument) -> tuple[RejectReason, str] | None:
    """Check a placement against the instrument; None if it is well formed."""
    if not cmd.trader:
        return _INVALID_ORDER, "trader is required"
    if len(cmd.client_order_id) > _MAX_CLIENT_ID:
        return _INVALID_ORDER, f"client order id longer than {_MAX_CLIENT_ID}"
    side = cmd.side
    # Identity with the members, not isinstance: the same test (an enum's
    # only instances are its members), without a global lookup compiled.
    if side is not _BUY and side is not _SELL:
        return _INVALID_ORDER, "side must be buy or sell"
    order_type = cmd.order_type
    if cmd.qty <= 0:
        return _INVALID_QUANTITY, "quantity must be positive"
    if order_type is _LIMIT or order_type is _STOP_LIMIT:
        if cmd.price <= 0:
            return _INVALID_PRICE, "a limit order needs a positive price"
    elif order_type is _MARKET or order_type is _STOP_MARKET:
        if cmd.price != 0:
            return _INVALID_ORDER, "a market order takes no price"
    else:
        return _INVALID_ORDER, "unknown order type"
    if order_type is _STOP_MARKET or order_type is _STOP_LIMIT:
        if cmd.stop_price <= 0:
            return _INVALID_ORDER, "a stop order needs a positive stop price"
    elif cmd.stop_price != 0:
        return _INVALID_ORDER, "only stop orders take a stop price"
    tif = cmd.tif
    if tif is not _GTC and tif is not _IOC and tif is not _FOK:
        return _INVALID_ORDER, "unknown time in force"
    stp = cmd.stp
    if stp is not _STP_CANCEL_NEWEST and stp is not _STP_CANCEL_OLDEST and stp is not _STP_CANCEL_BOTH and stp is not _STP_DECREMENT:
        return _INVALID_ORDER, "unknown self-trade prevention"
    if cmd.post_only and (order_type is not _LIMIT or cmd.tif is not _GTC):
        return _INVALID_ORDER, "post-only needs a GTC limit order"
    if cmd.qty < instrument.min_qty:
        return _QUANTITY_BELOW_MIN, "quantity below the instrument minimum"
    if cmd.qty > instrument.max_qty:
        return _QUANTITY_ABOVE_MAX, "quantity above the instrument maximum"
    return None


def _in_band(book: OrderBook, price: int) -> bool:
    band = book.instrument.price_band_bps
    if not band:
        return True
    ref = book.reference_price()
    if not ref:
        return True
    return abs(price - ref) * 10_000 <= band * ref


def _would_take(book: OrderBook, side: Side, price: int) -> bool:
    if side is _BUY:
        best = book.asks.best()
        return best is not None and best.price <= price
    best = book.bids.best()
    return best is not None and best.price >= price


def _is_pending_stop(order: Order) -> bool:
    order_type = order.terms.order_type
    return order_type is _STOP_MARKET or order_type is _STOP_LIMIT


def _stop_reached(order: StopOrder, last: int) -> bool:
    if not last:
        return False
    return last >= order.stop if order.side is _BUY else last <= order.stop


def _live_status(order: Order) -> OrderStatus:
    if _is_pending_stop(order):
        return _STATUS_PENDING_TRIGGER
    return _STATUS_PARTIALLY_FILLED if order.filled else _STATUS_NEW


def _view(order: Order, status: OrderStatus) -> OrderView:
    return OrderView(
        order.order_id,
        order.trader,
        order.client_order_id,
        order.symbol,
        order.side,
        order.terms.order_type,
        order.terms.tif,
        order.price,
        order.stop_price,
        order.qty,
        order.filled,
        status,
    )


def _levels(side: BookSide, count: int) -> list[L2Level]:
    out: list[L2Level] = []
    if count <= 0:
        return out
    for price in side.prices_best_first()[:count]:
        level = side.levels[price]
        out.append(L2Level(price, level.qty, level.count))
    return out
