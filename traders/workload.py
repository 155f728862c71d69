"""A seeded, realistic order stream for one trader.

The stream is a pure function of ``(seed, trader, instruments)``: it never
looks at replies, so the same seed gives the same commands on every transport
and every run. Cancels and replaces name earlier orders by client order id; an
order that has meanwhile filled simply gets ``UNKNOWN_ORDER``, as it would for
a real trader racing the market.

The mix, per command (percentages of all commands):

====  ==========================================================
52%   GTC limit on the passive side, 1-20 ticks from the mid (rests)
12%   GTC limit crossing the mid by 0-5 ticks (takes, rest rests)
 6%   IOC limit 2 ticks through the mid
 3%   market order, small
15%   cancel of one of this trader's recent orders
12%   replace of one of this trader's recent orders (new price or smaller qty)
====  ==========================================================

The mid follows a slow integer triangle wave around each instrument's
reference price, the same for every trader, so traders meet in one market.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

from engine import CancelOrder, Command, Instrument, OrderType, PlaceOrder, ReplaceOrder, Side, TimeInForce

_RECENT = 64  # how many of its own orders a trader remembers for cancel/replace
_PERIOD = 4000  # commands per full swing of the mid
_SWING_BPS = 20  # amplitude of the swing, in basis points of the reference price


class OrderFlow:
    """Commands for one trader, one call at a time (``next_command``) or in batches."""

    def __init__(self, seed: int, trader: str, instruments: Sequence[Instrument]) -> None:
        if not instruments:
            raise ValueError("an order flow needs at least one instrument")
        self.trader = trader
        self.instruments = list(instruments)
        self._rng = random.Random(f"{seed}:{trader}")
        self._random = self._rng.random
        self._by_symbol = {i.symbol: i for i in self.instruments}
        self._count = 0
        self._recent: deque[tuple[str, str, Side]] = deque(maxlen=_RECENT)

    def mid(self, instrument: Instrument) -> int:
        """The mid in ticks after ``self._count`` commands (a triangle wave)."""
        ref = instrument.reference_price or 10_000
        amplitude = max(1, ref * _SWING_BPS // 10_000)
        phase = self._count % _PERIOD
        half = _PERIOD // 2
        offset = (phase if phase < half else _PERIOD - phase) - half // 2
        return ref + amplitude * offset // (half // 2)

    def next_command(self) -> Command:
        rnd = self._random
        self._count += 1
        instruments = self.instruments
        instrument = instruments[int(rnd() * len(instruments))]
        roll = rnd()
        if self._recent and roll >= 0.73:
            return self._manage(roll, instrument)
        return self._place(roll, instrument)

    def batch(self, size: int) -> list[Command]:
        return [self.next_command() for _ in range(size)]

    def _below(self, n: int) -> int:
        """0 .. n-1, uniformly enough for a workload (``random()`` is several times cheaper than ``randrange``)."""
        return int(self._random() * n)

    def _qty(self, instrument: Instrument, scale: int = 10) -> int:
        return instrument.min_qty * (1 + self._below(scale))

    def _place(self, roll: float, instrument: Instrument) -> Command:
        side = Side.BUY if self._random() < 0.5 else Side.SELL
        sign = 1 if side is Side.BUY else -1
        mid = self.mid(instrument)
        coid = f"{self.trader}-{self._count}"
        symbol = instrument.symbol
        if roll < 0.52:  # passive: rests on its own side of the mid
            price = mid - sign * (1 + self._below(20))
            self._recent.append((coid, symbol, side))
            return PlaceOrder(self.trader, coid, symbol, side, self._qty(instrument), max(1, price))
        if roll < 0.64:  # aggressive GTC: crosses, the rest rests
            price = mid + sign * self._below(6)
            self._recent.append((coid, symbol, side))
            return PlaceOrder(self.trader, coid, symbol, side, self._qty(instrument), max(1, price))
        if roll < 0.70:
            price = mid + sign * 2
            return PlaceOrder(self.trader, coid, symbol, side, self._qty(instrument), max(1, price), tif=TimeInForce.IOC)
        return PlaceOrder(self.trader, coid, symbol, side, self._qty(instrument, 3), 0, OrderType.MARKET, TimeInForce.IOC)

    def _manage(self, roll: float, instrument: Instrument) -> Command:
        recent = self._recent
        index = self._below(len(recent))
        coid, symbol, side = recent[index]
        if roll < 0.88:
            del recent[index]
            return CancelOrder(self.trader, 0, coid)
        target = self._by_symbol[symbol]
        sign = 1 if side is Side.BUY else -1
        if self._random() < 0.5:
            return ReplaceOrder(self.trader, 0, max(1, self.mid(target) - sign * (1 + self._below(20))), 0, symbol, coid)
        return ReplaceOrder(self.trader, 0, 0, target.min_qty, symbol, coid)
