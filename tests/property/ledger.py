"""An independent account of the market, built only from the engine's events.

``Ledger.run(command)`` hands the command to the engine, replays the events
into its own bookkeeping and checks, after every command:

* seq is strictly increasing without gaps;
* the book is never crossed;
* per order: accepted (+ replace adjustments) = filled + cancelled + remaining,
  where remaining is what the engine reports;
* trades: at the maker's price, never outside the taker's limit, never
  between two orders of one trader, maker first in its level's queue (FIFO);
* FOK orders fill completely or not at all;
* a duplicate client order id is a lone reject that changes nothing else;
* depth equals the book rebuilt from BookDelta events, and the book rebuilt
  from the open orders.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from engine import (
    BookDelta,
    CancelReason,
    Command,
    Engine,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
    StopTriggered,
    TimeInForce,
    TradeExecuted,
    snapshot,
)

STOPS = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
LevelKey = tuple[str, Side, int]


@dataclass
class OrderRecord:
    order_id: int
    trader: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    price: int  # the current limit price; 0 for none
    stop_price: int
    placed: int  # accepted quantity plus every replace adjustment
    filled: int = 0
    cancelled: int = 0
    stamp: int = 0  # seq at which the order joined its level's queue

    @property
    def remaining(self) -> int:
        return self.placed - self.filled - self.cancelled

    @property
    def pending_stop(self) -> bool:
        return self.order_type in STOPS


def _state_without_seq(engine: Engine) -> dict[str, Any]:
    state = dict(snapshot(engine))
    del state["seq"]
    return state


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seq = engine.seq
        self.orders: dict[int, OrderRecord] = {}
        self.levels: dict[LevelKey, tuple[int, int]] = {}  # rebuilt from BookDelta: (qty, count)
        self.used_client_ids: set[tuple[str, str]] = set()
        self.resting: set[int] = set()  # ids resting in a level when the command starts
        self.live: set[int] = set()  # ids with a remaining quantity (resting or pending stops)
        self.touched: set[int] = set()  # ids the current command's events named
        self.traders: set[str] = set()
        self.symbols = [i.symbol for i in engine.instruments]
        self.events: list[Event] = []
        self.trades = 0

    # ------------------------------------------------------------ driving
    def run(self, command: Command) -> list[Event]:
        duplicate = (
            isinstance(command, PlaceOrder)
            and bool(command.client_order_id)
            and (command.trader, command.client_order_id) in self.used_client_ids
        )
        before = _state_without_seq(self.engine) if duplicate else None
        events = self.engine.handle(command)
        if duplicate:
            assert len(events) == 1, f"a duplicate did more than reject: {events}"
            rejected = events[0]
            assert isinstance(rejected, OrderRejected), rejected
            assert rejected.reason < 200, rejected  # a validation or duplicate reject, never a risk or execution one
            assert _state_without_seq(self.engine) == before, "a duplicate changed the engine state"
        self.apply(events)
        self.check_state()
        self.events.extend(events)
        return events

    # ------------------------------------------------------------- events
    def apply(self, events: list[Event]) -> None:
        alive = set(self.resting)
        delta_levels: list[LevelKey] = []
        # Symbols whose BookDeltas have started. The documented order is "all deltas
        # last"; a mass cancel across symbols breaks it (pinned by a unit test in
        # test_events.py), so the ledger checks the per-symbol order only and keeps
        # finding other bugs.
        delta_symbols: set[str] = set()
        created: list[OrderRecord] = []
        for ev in events:
            assert ev.seq == self.seq + 1, f"seq gap or reorder: {self.seq} then {ev.seq}"
            self.seq = ev.seq
            if isinstance(ev, BookDelta):
                delta_symbols.add(ev.symbol)
                key = (ev.symbol, ev.side, ev.price)
                assert key not in delta_levels, f"two deltas for one level in one command: {key}"
                delta_levels.append(key)
                if ev.qty == 0:
                    assert ev.order_count == 0
                    self.levels.pop(key, None)
                else:
                    assert ev.qty > 0 and ev.order_count > 0
                    self.levels[key] = (ev.qty, ev.order_count)
                continue
            assert getattr(ev, "symbol", "") not in delta_symbols, f"{type(ev).__name__} after a BookDelta of its symbol"
            for name in ("order_id", "maker_order_id", "taker_order_id"):
                order_id = getattr(ev, name, 0)
                if order_id and not isinstance(ev, OrderRejected):
                    self.touched.add(order_id)
            if isinstance(ev, OrderAccepted):
                assert ev.order_id not in self.orders
                assert ev.order_id == max(self.orders, default=0) + 1, "order ids are not consecutive"
                rec = OrderRecord(
                    ev.order_id,
                    ev.trader,
                    ev.client_order_id,
                    ev.symbol,
                    ev.side,
                    ev.order_type,
                    ev.tif,
                    ev.price,
                    ev.stop_price,
                    ev.qty,
                    stamp=ev.seq,
                )
                self.orders[ev.order_id] = rec
                self.traders.add(ev.trader)
                created.append(rec)
                if ev.client_order_id:
                    self.used_client_ids.add((ev.trader, ev.client_order_id))
            elif isinstance(ev, TradeExecuted):
                self._trade(ev, alive)
            elif isinstance(ev, OrderCancelled):
                rec = self.orders[ev.order_id]
                assert ev.qty > 0
                rec.cancelled += ev.qty
                assert rec.remaining == ev.remaining >= 0, (rec, ev)
                if ev.remaining == 0:
                    alive.discard(rec.order_id)
                if ev.reason is CancelReason.FOK_NOT_FILLED:
                    assert rec.tif is TimeInForce.FOK and rec.filled == 0 and ev.qty == rec.placed
                elif ev.reason is CancelReason.IOC_REMAINDER:
                    assert rec.tif is TimeInForce.IOC
                elif ev.reason is CancelReason.MARKET_REMAINDER:
                    assert rec.order_type is OrderType.MARKET
            elif isinstance(ev, OrderReplaced):
                rec = self.orders[ev.order_id]
                if ev.priority_kept:
                    assert ev.price == rec.price and ev.qty <= rec.remaining
                else:
                    rec.stamp = ev.seq
                    alive.discard(rec.order_id)
                rec.placed += ev.qty - rec.remaining
                rec.price = ev.price
            elif isinstance(ev, StopTriggered):
                rec = self.orders[ev.order_id]
                assert rec.pending_stop
                assert ev.stop_price == rec.stop_price
                rec.order_type = OrderType.LIMIT if rec.order_type is OrderType.STOP_LIMIT else OrderType.MARKET
                rec.stamp = ev.seq
                created.append(rec)
        # FOK: all or nothing, for every FOK order that ran in this command.
        for rec in created:
            if rec.tif is TimeInForce.FOK and not rec.pending_stop:
                assert rec.filled in (0, rec.placed), f"FOK order partially filled: {rec}"

    def _trade(self, ev: TradeExecuted, alive: set[int]) -> None:
        self.trades += 1
        maker = self.orders[ev.maker_order_id]
        taker = self.orders[ev.taker_order_id]
        assert ev.qty > 0
        assert ev.symbol == maker.symbol == taker.symbol
        assert maker.side is not taker.side and ev.aggressor_side is taker.side
        assert ev.maker_trader == maker.trader != taker.trader == ev.taker_trader, "self-trade"
        assert ev.price == maker.price, "trade not at the maker's price"
        if taker.price:
            inside = ev.price <= taker.price if taker.side is Side.BUY else ev.price >= taker.price
            assert inside, f"trade at {ev.price} outside the taker's limit {taker.price}"
        # FIFO: no order that was already queued at this level when the command
        # started, and is still there, may be ahead of the maker.
        queued = [
            self.orders[i]
            for i in alive
            if (self.orders[i].symbol, self.orders[i].side, self.orders[i].price) == (maker.symbol, maker.side, maker.price)
        ]
        if maker.order_id in alive:
            assert maker.stamp == min(o.stamp for o in queued), f"FIFO broken at {maker.price}: {queued}"
        else:
            assert not queued, f"order {maker.order_id} joined this command but traded before {queued}"
        maker.filled += ev.qty
        taker.filled += ev.qty
        assert maker.remaining == ev.maker_remaining, (maker, ev)
        assert taker.remaining == ev.taker_remaining, (taker, ev)
        if maker.remaining == 0:
            alive.discard(maker.order_id)

    # -------------------------------------------------------------- state
    def check_state(self) -> None:
        """Compare the ledger with the engine: orders touched by the command, every live order, the book."""
        engine = self.engine
        assert engine.seq == self.seq
        for order_id in self.touched:
            rec = self.orders[order_id]
            view = engine.order_status(rec.trader, order_id)
            assert view is not None, rec
            assert view.filled == rec.filled, (rec, view)
            # Quantity is conserved: placed = filled + cancelled + remaining.
            assert view.remaining == rec.remaining, (rec, view)
            if rec.remaining == 0:
                assert view.status in (OrderStatus.FILLED, OrderStatus.CANCELLED), view
                assert view.status is not OrderStatus.FILLED or rec.filled > 0
                self.live.discard(order_id)
            else:
                self.live.add(order_id)
        self.touched = set()
        from_orders: dict[LevelKey, list[int]] = defaultdict(lambda: [0, 0])
        self.resting = set()
        open_views = {v.order_id: v for t in self.traders for v in engine.open_orders(t)}
        assert set(open_views) == self.live, "open orders disagree with the ledger"
        for order_id in self.live:
            rec, view = self.orders[order_id], open_views[order_id]
            assert (view.remaining, view.filled) == (rec.remaining, rec.filled), (rec, view)
            if rec.pending_stop:
                assert view.status is OrderStatus.PENDING_TRIGGER, view
                continue
            assert view.status is (OrderStatus.PARTIALLY_FILLED if rec.filled else OrderStatus.NEW), view
            assert rec.order_type is OrderType.LIMIT and rec.tif is TimeInForce.GTC, f"a non-GTC-limit order rests: {rec}"
            assert view.price == rec.price
            level = from_orders[(rec.symbol, rec.side, rec.price)]
            level[0] += rec.remaining
            level[1] += 1
            self.resting.add(order_id)
        rebuilt = {k: (v[0], v[1]) for k, v in from_orders.items()}
        assert rebuilt == self.levels, "BookDelta stream disagrees with the open orders"
        for symbol in self.symbols:
            depth = engine.depth(symbol, 1_000)
            assert depth is not None
            assert depth.seq == self.seq
            bids = [(lv.price, lv.qty, lv.order_count) for lv in depth.bids]
            asks = [(lv.price, lv.qty, lv.order_count) for lv in depth.asks]
            assert bids == sorted(
                ((p, q, c) for (s, side, p), (q, c) in self.levels.items() if s == symbol and side is Side.BUY), reverse=True
            )
            assert asks == sorted((p, q, c) for (s, side, p), (q, c) in self.levels.items() if s == symbol and side is Side.SELL)
            if bids and asks:
                assert bids[0][0] < asks[0][0], f"crossed book in {symbol}: {bids[0]} / {asks[0]}"
