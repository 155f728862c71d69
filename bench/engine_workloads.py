"""Seeded workloads for the in-process engine benchmark.

Every workload is generated *before* anything is timed, by driving a scratch
``Engine`` once and reading its events (``OrderAccepted.order_id``, trades,
cancels, replaces): cancels and replaces therefore always target an order that
the engine really has live, and the exchange order ids in the commands are
exact. The timed runs replay the same command list on a fresh engine.

The same pass also writes the equivalent stream for the peer libraries as
plain tuples (``PeerOp``), with the peers' own order ids: both peers number
orders 1, 2, 3... per *add*, and a peer has no replace, so a replace there is
a cancel plus an add that takes the next id.

Two rules keep the peers' books identical to ours, order for order, so that
the peer streams never cancel an order the peer does not have:

* buyers and sellers are disjoint traders, so our self-trade prevention never
  fires (the peers have none);
* every replace loses time priority in our engine (it moves the price, or
  raises the quantity), exactly like the peers' cancel + add.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from engine import (
    AddInstrument,
    BookDelta,
    CancelOrder,
    Engine,
    Event,
    Instrument,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    PlaceOrder,
    ReplaceOrder,
    Side,
    TimeInForce,
    TradeExecuted,
)

SYMBOL: Final = "BENCH"
BUYERS: Final = ("buyer-1", "buyer-2", "buyer-3", "buyer-4")
SELLERS: Final = ("seller-1", "seller-2", "seller-3", "seller-4")

# Peer operations: (kind, side 1=buy/2=sell, is_buy, price, qty, peer id, old peer id).
OP_LIMIT: Final = 0  # GTC limit: add ``peer id``
OP_IOC: Final = 1  # limit, then cancel whatever rests
OP_CANCEL: Final = 2  # cancel ``peer id``
OP_REPLACE: Final = 3  # cancel ``old peer id``, then add ``peer id`` at ``price``/``qty``
PeerOp = tuple[int, int, bool, int, int, int, int]

Command = PlaceOrder | CancelOrder | ReplaceOrder


def instrument() -> Instrument:
    """Tick 1 and lot 1: engine ticks and lots equal the workload's numbers."""
    return Instrument.create(SYMBOL, "1", "1")


def add_instrument() -> AddInstrument:
    return AddInstrument(instrument())


@dataclass(frozen=True, slots=True)
class BookState:
    """What every engine must agree on after a workload."""

    resting_orders: int
    resting_qty: int
    best_bid: int  # 0 = no bid
    best_ask: int  # 0 = no ask


@dataclass
class Workload:
    name: str
    description: str
    setup: list[Command]  # untimed pre-fill
    commands: list[Command]  # the timed stream
    peer_setup: list[PeerOp]
    peer_ops: list[PeerOp]
    expected: BookState  # book after setup + commands
    mix: dict[str, int] = field(default_factory=dict)  # timed commands by kind
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Live:
    trader: str
    is_buy: bool
    price: int
    qty: int
    pid: int  # the peers' id for this order


class _Driver:
    """A scratch engine plus what a client learns from its events."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.engine = Engine()
        self.engine.handle(add_instrument())
        self.live: dict[int, _Live] = {}
        self._ids: list[int] = []  # live order ids, for uniform random choice
        self._pos: dict[int, int] = {}
        self.bids: dict[int, int] = {}  # level 2, from BookDelta
        self.asks: dict[int, int] = {}
        self.next_pid = 0
        self.next_coid = 0
        self.last_trade = 0
        self.trades = 0
        self.events = 0
        self._pending: tuple[str, bool, int] | None = None  # (trader, is_buy, peer id) of a place in flight

    # -- book view -------------------------------------------------------
    def best_bid(self) -> int:
        return max(self.bids) if self.bids else 0

    def best_ask(self) -> int:
        return min(self.asks) if self.asks else 0

    def random_live(self) -> int:
        return self._ids[self.rng.randrange(len(self._ids))]

    def state(self) -> BookState:
        return BookState(len(self.live), sum(o.qty for o in self.live.values()), self.best_bid(), self.best_ask())

    # -- commands ---------------------------------------------------------
    def place(self, is_buy: bool, price: int, qty: int, ioc: bool = False) -> tuple[PlaceOrder, PeerOp]:
        trader = self.rng.choice(BUYERS if is_buy else SELLERS)
        self.next_coid += 1
        self.next_pid += 1
        cmd = PlaceOrder(
            trader,
            f"c-{self.next_coid:07d}",
            SYMBOL,
            Side.BUY if is_buy else Side.SELL,
            qty,
            price,
            tif=TimeInForce.IOC if ioc else TimeInForce.GTC,
        )
        self._pending = (trader, is_buy, self.next_pid)
        self._run(cmd)
        op = (OP_IOC if ioc else OP_LIMIT, 1 if is_buy else 2, is_buy, price, qty, self.next_pid, 0)
        return cmd, op

    def cancel(self, order_id: int) -> tuple[CancelOrder, PeerOp]:
        order = self.live[order_id]
        cmd = CancelOrder(order.trader, order_id)
        op = (OP_CANCEL, 1 if order.is_buy else 2, order.is_buy, 0, 0, order.pid, 0)
        self._run(cmd)
        return cmd, op

    def replace(self, order_id: int, new_price: int, new_qty: int) -> tuple[ReplaceOrder, PeerOp]:
        """``0`` keeps a field. The replace must lose priority (see the module docstring)."""
        order = self.live[order_id]
        price = new_price or order.price
        qty = new_qty or order.qty
        if price == order.price and qty <= order.qty:
            raise ValueError("a replace that keeps priority has no cancel + add equivalent")
        old_pid = order.pid
        self.next_pid += 1
        order.pid = self.next_pid
        cmd = ReplaceOrder(order.trader, order_id, new_price=new_price, new_qty=new_qty)
        op = (OP_REPLACE, 1 if order.is_buy else 2, order.is_buy, price, qty, self.next_pid, old_pid)
        self._run(cmd)
        return cmd, op

    # -- events -------------------------------------------------------------
    def _run(self, cmd: Command) -> None:
        events = self.engine.handle(cmd)
        self.events += len(events)
        for ev in events:
            self._apply(ev)
        self._pending = None

    def _apply(self, ev: Event) -> None:
        if isinstance(ev, BookDelta):
            levels = self.bids if ev.side is Side.BUY else self.asks
            if ev.qty:
                levels[ev.price] = ev.qty
            else:
                levels.pop(ev.price, None)
        elif isinstance(ev, OrderAccepted):
            assert self._pending is not None
            trader, is_buy, pid = self._pending
            self._add_live(ev.order_id, _Live(trader, is_buy, ev.price, ev.qty, pid))
        elif isinstance(ev, TradeExecuted):
            self.trades += 1
            self.last_trade = ev.price
            self._set_qty(ev.maker_order_id, ev.maker_remaining)
            self._set_qty(ev.taker_order_id, ev.taker_remaining)
        elif isinstance(ev, OrderCancelled):
            self._set_qty(ev.order_id, ev.remaining)
        elif isinstance(ev, OrderReplaced):
            order = self.live[ev.order_id]
            order.price = ev.price
            order.qty = ev.qty
        elif isinstance(ev, OrderRejected):
            raise AssertionError(f"the workload generator produced a rejected command: {ev!r}")

    def _add_live(self, order_id: int, order: _Live) -> None:
        self.live[order_id] = order
        self._pos[order_id] = len(self._ids)
        self._ids.append(order_id)

    def _set_qty(self, order_id: int, qty: int) -> None:
        order = self.live.get(order_id)
        if order is None:
            return
        if qty:
            order.qty = qty
            return
        del self.live[order_id]
        pos = self._pos.pop(order_id)
        last = self._ids.pop()
        if last != order_id:
            self._ids[pos] = last
            self._pos[last] = pos


class _Builder:
    """Collects the setup part and the timed part of a workload."""

    def __init__(self, driver: _Driver) -> None:
        self.driver = driver
        self.timed = False
        self.setup: list[Command] = []
        self.peer_setup: list[PeerOp] = []
        self.commands: list[Command] = []
        self.peer_ops: list[PeerOp] = []
        self.mix: dict[str, int] = {}
        self.resting_sum = 0
        self.trades_at_start = 0

    def start_timed(self) -> None:
        self.timed = True
        self.trades_at_start = self.driver.trades
        self.events_at_start = self.driver.events

    def add(self, kind: str, item: tuple[Command, PeerOp]) -> None:
        if self.timed:
            self.commands.append(item[0])
            self.peer_ops.append(item[1])
            self.mix[kind] = self.mix.get(kind, 0) + 1
            self.resting_sum += len(self.driver.live)
        else:
            self.setup.append(item[0])
            self.peer_setup.append(item[1])

    def build(self, name: str, description: str) -> Workload:
        d = self.driver
        n = max(1, len(self.commands))
        stats = {
            "avg_resting_orders": round(self.resting_sum / n, 1),
            "resting_orders_at_end": float(len(d.live)),
            "price_levels_at_end": float(len(d.bids) + len(d.asks)),
            "trades": float(d.trades - self.trades_at_start),
            "events_per_command": round((d.events - self.events_at_start) / n, 3),
        }
        mix = dict(sorted(self.mix.items()))
        return Workload(name, description, self.setup, self.commands, self.peer_setup, self.peer_ops, d.state(), mix, stats)


# ---------------------------------------------------------------- workloads
MIXED_CENTER: Final = 100_000
MIXED_RESTING: Final = 1_000


def _passive_offset(rng: random.Random) -> int:
    """How far behind the touch a passive order joins: mostly near, a tail far out."""
    return min(int(rng.expovariate(1 / 12)), 400)


def mixed(ops: int, seed: int) -> Workload:
    """58% GTC limit places (one in six priced through the opposite best), 42% cancels, ~1,000 resting."""
    rng = random.Random(seed)
    d = _Driver(rng)
    b = _Builder(d)
    for i in range(MIXED_RESTING):
        is_buy = i % 2 == 0
        off = 1 + _passive_offset(rng)
        b.add("place", d.place(is_buy, MIXED_CENTER - off if is_buy else MIXED_CENTER + off, rng.randint(1, 100)))
    b.start_timed()
    while len(b.commands) < ops:
        live = len(d.live)
        # A gentle pull towards the target book size; the mix stays near 58/42.
        p_place = 0.58 + max(-0.08, min(0.08, (MIXED_RESTING - live) / MIXED_RESTING * 0.4))
        if not live or rng.random() < p_place:
            is_buy = rng.random() < 0.5
            best_bid, best_ask = d.best_bid(), d.best_ask()
            opposite = best_ask if is_buy else best_bid
            if opposite and rng.random() < 1 / 6:
                # Priced through the opposite best: trades at once, may rest a remainder.
                price = opposite + rng.randint(0, 2) if is_buy else opposite - rng.randint(0, 2)
                b.add("place_crossing", d.place(is_buy, max(1, price), rng.randint(1, 100)))
                continue
            if is_buy:
                touch = best_ask or (best_bid + 1 if best_bid else MIXED_CENTER)
                price = touch - 1 - _passive_offset(rng)
            else:
                touch = best_bid or (best_ask - 1 if best_ask else MIXED_CENTER)
                price = touch + 1 + _passive_offset(rng)
            b.add("place", d.place(is_buy, max(1, price), rng.randint(1, 100)))
        else:
            b.add("cancel", d.cancel(d.random_live()))
    return b.build(
        "mixed",
        "58% GTC limit places (1 in 6 priced through the opposite best) and 42% cancels of live orders; "
        f"{MIXED_RESTING} orders pre-filled and about that many resting throughout",
    )


def add_only(ops: int, seed: int) -> Workload:
    """Liquibook's pt_order_book: alternate buy 1880+U[0,9] / sell 1884+U[0,9], qty U[1,10]*100, all GTC."""
    rng = random.Random(seed)
    d = _Driver(rng)
    b = _Builder(d)
    b.start_timed()
    for i in range(ops):
        is_buy = i % 2 == 0
        price = (1880 if is_buy else 1884) + rng.randrange(10)
        b.add("place", d.place(is_buy, price, (rng.randrange(10) + 1) * 100))
    return b.build(
        "add_only",
        "Liquibook's generator: buys at 1880+U[0,9] alternating with sells at 1884+U[0,9], qty U[1,10]*100, all GTC limits; "
        "the ranges overlap so some trade, the rest pile up",
    )


EC_CENTER: Final = 10_000
EC_MIN_PRICE: Final = EC_CENTER // 2
EC_MAX_PRICE: Final = EC_CENTER * 3 // 2
EC_RESTING: Final = 1_000
EC_DEVIATION: Final = 100


def _ec_size(rng: random.Random) -> int:
    return 1 + rng.randrange(6) * rng.randrange(6) * rng.randrange(6)


def _ec_gtc_price(rng: random.Random, last: int, is_buy: bool) -> int:
    """exchange-core's TestOrdersGenerator: a deviation around the last trade, on the order's side."""
    dev = 1 + int(rng.random() ** 2 * EC_DEVIATION)
    p = sum(rng.randrange(dev) for _ in range(4)) // 4 * 2 - dev
    p = abs(p)
    return max(1, last - p if is_buy else last + p)


def exchange_core(ops: int, seed: int) -> Workload:
    """exchange-core's mix: 9% GTC, 3% IOC, 6% cancels, 82% replaces, on a pre-filled book of ~1,000 orders."""
    rng = random.Random(seed)
    d = _Driver(rng)
    b = _Builder(d)
    d.last_trade = EC_CENTER
    i = 0
    while len(d.live) < EC_RESTING:
        is_buy = i % 2 == 0
        i += 1
        b.add("gtc", d.place(is_buy, _ec_gtc_price(rng, d.last_trade, is_buy), _ec_size(rng)))
    b.start_timed()
    while len(b.commands) < ops:
        live = len(d.live)
        q = rng.random()
        is_buy = rng.random() < 0.5
        if q < 0.15 or not live:
            # 9% GTC + 6% cancels; the split leans towards whichever keeps the book near its size.
            p_gtc = 0.6 + max(-0.2, min(0.2, (EC_RESTING - live) / EC_RESTING * 2))
            if not live or q < 0.15 * p_gtc:
                b.add("gtc", d.place(is_buy, _ec_gtc_price(rng, d.last_trade, is_buy), _ec_size(rng)))
            else:
                b.add("cancel", d.cancel(d.random_live()))
        elif q < 0.18:
            b.add("ioc", d.place(is_buy, EC_MAX_PRICE if is_buy else EC_MIN_PRICE, _ec_size(rng), ioc=True))
        else:
            order_id = d.random_live()
            order = d.live[order_id]
            # exchange-core's move: half way towards the last trade price, or one tick either way when on it.
            last, prev = d.last_trade, order.price
            if prev == last:
                move = rng.choice((-1, 1))
            elif prev > last:
                move = (last - prev) // 2  # floor: at least one tick down
            else:
                move = -((prev - last) // 2)  # ceil: at least one tick up
            new_price = max(1, prev + move)
            # Stay passive: a move stops one tick short of the opposite best (trades come from GTC and IOC orders).
            if order.is_buy:
                best_ask = d.best_ask()
                if best_ask and new_price >= best_ask:
                    new_price = best_ask - 1
            else:
                best_bid = d.best_bid()
                if best_bid and new_price <= best_bid:
                    new_price = best_bid + 1
            if new_price == prev:
                new_price = prev - 1 if order.is_buy else prev + 1
            r = rng.random()
            if r < 0.7:
                b.add("replace_price", d.replace(order_id, new_price, 0))
            elif r < 0.9:
                b.add("replace_price_qty", d.replace(order_id, new_price, _ec_size(rng)))
            else:
                b.add("replace_qty_up", d.replace(order_id, 0, order.qty + 1 + rng.randrange(10)))
    return b.build(
        "exchange_core",
        "exchange-core's TestOrdersGenerator mix: 9% GTC limits, 3% IOC (priced at the band edge), 6% cancels, "
        "82% replaces (move half way to the last trade price; 20% also change qty, 10% raise qty only); "
        f"{EC_RESTING} orders pre-filled",
    )


GENERATORS = {"mixed": mixed, "add_only": add_only, "exchange_core": exchange_core}


# ------------------------------------------------------------------- memory
MEMORY_CENTER: Final = 100_000
MEMORY_TRADERS: Final = ("mm-1", "mm-2", "mm-3", "mm-4")


def resting_orders(n: int, seed: int) -> Iterator[tuple[str, str, bool, int, int]]:
    """``n`` non-crossing GTC limits over ~2,000 price levels, made lazily: (trader, coid, is_buy, price, qty)."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        is_buy = rng.random() < 0.5
        off = 1 + rng.randrange(1000)
        yield (
            MEMORY_TRADERS[rng.randrange(len(MEMORY_TRADERS))],
            f"c-{i:07d}",
            is_buy,
            MEMORY_CENTER - off if is_buy else MEMORY_CENTER + off,
            rng.randint(1, 100),
        )
