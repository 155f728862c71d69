"""A seeded, realistic order stream for one trader: ``dex-trader``'s workload, and nats-auto's load generator's.

It lives in the transport core so that both ``traders/`` and the transport
folders may import it (a transport never imports ``traders``: an
import-linter contract).

The stream's shape (prices, sides, sizes, which slots are cancels or
replaces) is a pure function of ``(seed, stream, instruments)``, where
``stream`` defaults to the trader id: the same seed gives the same shape on
every transport and every run. The trader id only names things (it is the
prefix of every client order id), so a run can trade under fresh ids
(``dex-trader``'s run id) and still send the same stream.

Two ways to manage (cancel or replace) earlier orders:

* ``next_command`` / ``batch`` (``--workload exercise-unknown``): a fixed
  stream that never looks at replies. Cancels and replaces name one of the
  trader's recent orders by client order id; one that has meanwhile filled or
  been cancelled (self-trade prevention) gets ``UNKNOWN_ORDER``, about 13% of
  all commands.
* ``plan`` / ``resolve`` / ``settle`` (the harness's default): ``plan`` writes
  the places and leaves each cancel or replace as a slot; ``settle`` reads a
  batch's outcomes (an order accepted with ``leaves > 0`` is live; a replace
  that was refused or filled is not), and ``resolve``, at send time, names
  only orders still live: at most 64, none placed more than one batch (or 64
  positions) before the slot, since an older one has likely been filled as
  the maker by another trader, which no reply of this trader's says; a slot
  finding none becomes a stand-in passive place, so batches keep their size.
  What the replies cannot tell still gets ``UNKNOWN_ORDER`` (under 1% of
  commands in process, a few % with many traders over a network wire).
  Invariant: the places and the slots' shape do not depend on replies; only
  the named targets (and stand-ins) do.

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
from typing import Final

from engine import CancelOrder, Command, Instrument, OrderType, PlaceOrder, ReplaceOrder, Side, TimeInForce
from transports.codec.lean import ACCEPTED, REPLACED

_RECENT = 64  # how many of its own orders a trader remembers for cancel/replace
_MAX_AGE = 64  # plan mode: an order placed more positions ago than this (or two batches) is no longer managed
_PERIOD = 4000  # commands per full swing of the mid
_SWING_BPS = 20  # amplitude of the swing, in basis points of the reference price
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_MANAGE_FROM = 0.73  # rolls at or above: cancel or replace
_CANCEL_BELOW = 0.88  # manage rolls below: cancel; above: replace

# A cancel or replace written before its target is known, packed in one int (8 bytes in an array):
# count << 39 | instrument << 27 | how << 21 | ticks << 16 | pick. count: the stream position
# (the mid); instrument: its index, for a stand-in; how: _CANCEL, _NEW_PRICE or _LEAST_QTY;
# ticks: 0-19, the distance from the mid less one; pick: which live order, in 1/65536ths.
_CANCEL = 0
_NEW_PRICE = 1
_LEAST_QTY = 2
_PICK_BITS = 16
_TICK_SHIFT = 16
_HOW_SHIFT = 21
_INSTRUMENT_SHIFT = 27
_COUNT_SHIFT = 39
_MAX_INSTRUMENTS = 1 << 12


class OrderFlow:
    """Commands for one trader, one call at a time (``next_command``) or in batches."""

    def __init__(self, seed: int, trader: str, instruments: Sequence[Instrument], stream: str = "") -> None:
        if not instruments:
            raise ValueError("an order flow needs at least one instrument")
        self.trader = trader
        self.instruments = list(instruments)
        self._rng = random.Random(f"{seed}:{stream or trader}")
        self._random = self._rng.random
        self._by_symbol = {i.symbol: i for i in self.instruments}
        self._index = {i.symbol: n for n, i in enumerate(self.instruments)}
        self._count = 0
        self._recent: deque[tuple[str, str, Side]] = deque(maxlen=_RECENT)
        # plan mode: keys of the orders known to rest, oldest first: at most _RECENT, none older than _max_age positions
        self._live: list[int] = []
        self._max_age = _MAX_AGE

    def mid(self, instrument: Instrument) -> int:
        """The mid in ticks after ``self._count`` commands (a triangle wave)."""
        return self._mid_at(instrument, self._count)

    def _mid_at(self, instrument: Instrument, count: int) -> int:
        ref = instrument.reference_price or 10_000
        amplitude = max(1, ref * _SWING_BPS // 10_000)
        phase = count % _PERIOD
        half = _PERIOD // 2
        offset = (phase if phase < half else _PERIOD - phase) - half // 2
        return ref + amplitude * offset // (half // 2)

    def next_command(self) -> Command:
        rnd = self._random
        self._count += 1
        instruments = self.instruments
        instrument = instruments[int(rnd() * len(instruments))]
        roll = rnd()
        if self._recent and roll >= _MANAGE_FROM:
            return self._manage(roll, instrument)
        return self._place(roll, instrument)

    def batch(self, size: int) -> list[Command]:
        return [self.next_command() for _ in range(size)]

    # ------------------------------------------------ plan mode: manage only what is live
    def plan(self, size: int) -> tuple[list[PlaceOrder], list[int], list[int]]:
        """``size`` stream positions: the places, their keys (for ``settle``) and the cancel/replace slots (for ``resolve``)."""
        if len(self.instruments) > _MAX_INSTRUMENTS:
            raise ValueError(f"plan mode trades at most {_MAX_INSTRUMENTS} instruments")
        self._max_age = max(_MAX_AGE, size)  # the last reply: orders up to one batch old
        places: list[PlaceOrder] = []
        keys: list[int] = []
        slots: list[int] = []
        rnd = self._random
        instruments = self.instruments
        for _ in range(size):
            self._count += 1
            index = int(rnd() * len(instruments))
            roll = rnd()
            if roll >= _MANAGE_FROM:
                how = _CANCEL if roll < _CANCEL_BELOW else _NEW_PRICE if rnd() < 0.5 else _LEAST_QTY
                ticks = self._below(20)
                pick = int(rnd() * (1 << _PICK_BITS))
                slots.append(
                    (self._count << _COUNT_SHIFT) | (index << _INSTRUMENT_SHIFT) | (how << _HOW_SHIFT) | (ticks << _TICK_SHIFT) | pick
                )
                continue
            place = self._place(roll, instruments[index])
            places.append(place)
            keys.append(self._key(self._count, index, place.side))
        return places, keys, slots

    def instrument_index(self, symbol: str) -> int:
        """Where ``symbol`` is in this flow's instruments."""
        return self._index[symbol]

    def _key(self, count: int, index: int, side: Side) -> int:
        """One int for an order of this flow: its stream position, instrument index and side."""
        return (count * len(self.instruments) + index) * 2 + (1 if side is _SELL else 0)

    def resolve(self, slots: list[int], instrument: int = -1) -> tuple[list[Command], list[int]]:
        """The slots as commands, and for each what ``settle`` must learn from its outcome.

        A slot names one of the live orders: a cancel (target -1: forgotten now)
        or a replace (target: its key). A slot that finds none live becomes a
        stand-in passive place of the smallest quantity (target: -2 - its key),
        so a batch always sends its full size; it trades ``instrument`` (an
        index) when given, else the slot's own. Cancels and replaces carry no
        symbol, so when every stand-in trades the batch's first place's
        instrument, these commands encoded alone and appended to the places'
        encoding keep every symbol index right (see ``traders.harness.runner``).
        """
        commands: list[Command] = []
        targets: list[int] = []
        trader = self.trader
        n = len(self.instruments)
        for slot in slots:
            count = slot >> _COUNT_SHIFT
            how = (slot >> _HOW_SHIFT) & 3
            ticks = (slot >> _TICK_SHIFT) & 31
            key = self._pick(slot & ((1 << _PICK_BITS) - 1), count)
            if key < 0:
                index = instrument if instrument >= 0 else (slot >> _INSTRUMENT_SHIFT) & (_MAX_INSTRUMENTS - 1)
                side = _BUY if slot & 1 else _SELL
                place = self._stand_in(count, self.instruments[index], side, ticks)
                commands.append(place)
                targets.append(-2 - self._key(count, index, side))
                continue
            position, index = divmod(key >> 1, n)
            coid = f"{trader}-{position}"
            if how == _CANCEL:
                self._live.remove(key)
                commands.append(CancelOrder(trader, 0, coid))
                targets.append(-1)
                continue
            targets.append(key)
            target = self.instruments[index]
            if how == _NEW_PRICE:
                sign = -1 if key & 1 else 1
                price = max(1, self._mid_at(target, count) - sign * (1 + ticks))
                commands.append(ReplaceOrder(trader, 0, price, 0, "", coid))
            else:
                commands.append(ReplaceOrder(trader, 0, 0, target.min_qty, "", coid))
        return commands, targets

    def _pick(self, pick: int, count: int) -> int:
        """A live order's key (``pick`` in 1/65536ths of the list), after forgetting those too old; -1 if none.

        An old order has likely been filled as a maker since, which no reply
        of this trader's would say: it rests unmanaged.
        """
        live = self._live
        n = len(self.instruments)
        oldest = count - self._max_age
        drop = 0
        while drop < len(live) and (live[drop] >> 1) // n < oldest:
            drop += 1
        if drop:
            del live[:drop]
        if not live:
            return -1
        return live[(pick * len(live)) >> _PICK_BITS]

    def _stand_in(self, count: int, instrument: Instrument, side: Side, ticks: int) -> PlaceOrder:
        sign = 1 if side is _BUY else -1
        price = max(1, self._mid_at(instrument, count) - sign * (1 + ticks))
        return PlaceOrder(self.trader, f"{self.trader}-{count}", instrument.symbol, side, instrument.min_qty, price)

    def settle(self, keys: list[int], targets: list[int], outcome: list[int], leaves: list[int]) -> None:
        """Read a sent batch's outcomes: its places (``keys``) first, then its resolved slots (``targets``), in order.

        A place accepted with ``leaves > 0`` rests; a replace refused, or filled
        to nothing, names no live order any more.
        """
        live = self._live
        places = len(keys)
        for i in range(places):
            if outcome[i] == ACCEPTED and leaves[i] > 0:
                live.append(keys[i])
        for j in range(len(targets)):
            key = targets[j]
            i = places + j
            if key >= 0:
                if (outcome[i] != REPLACED or leaves[i] == 0) and key in live:
                    live.remove(key)
            elif key <= -2 and outcome[i] == ACCEPTED and leaves[i] > 0:
                live.append(-2 - key)
        if len(live) > _RECENT:
            del live[: len(live) - _RECENT]

    @property
    def live_orders(self) -> int:
        """How many orders ``settle`` knows to rest (plan mode)."""
        return len(self._live)

    def _below(self, n: int) -> int:
        """0 .. n-1, uniformly enough for a workload (``random()`` is several times cheaper than ``randrange``)."""
        return int(self._random() * n)

    def _qty(self, instrument: Instrument, scale: int = 10) -> int:
        return instrument.min_qty * (1 + self._below(scale))

    def _place(self, roll: float, instrument: Instrument) -> PlaceOrder:
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
        if roll < _CANCEL_BELOW:
            del recent[index]
            return CancelOrder(self.trader, 0, coid)
        target = self._by_symbol[symbol]
        sign = 1 if side is Side.BUY else -1
        if self._random() < 0.5:
            return ReplaceOrder(self.trader, 0, max(1, self.mid(target) - sign * (1 + self._below(20))), 0, symbol, coid)
        return ReplaceOrder(self.trader, 0, 0, target.min_qty, symbol, coid)
