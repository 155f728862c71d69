"""``PairMarket``: what a worker remembers of one pair's recent prices, shared by all bots of that pair.

Invariants: an update is observed at most once (by ``seq``; each update reaches
a worker once per partition queue); the window holds the last ``window``
prices, oldest first. Spread and volatility are in basis points, exact
(``Decimal``) and then rounded down to an integer.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from pricefeed.update import PriceUpdate


class PairMarket:
    def __init__(self, window: int = 20) -> None:
        self.prices: deque[Decimal] = deque(maxlen=window)
        self.last: PriceUpdate | None = None
        # Derived once per observed update, read by every bot of the pair (hundreds per update).
        self._mean = Decimal(0)
        self._high = Decimal(0)
        self._low = Decimal(0)
        self.moves_bps: list[int] = []  # moves_bps[k - 1]: move of the latest price from k updates before
        self.deviation_bps = 0  # latest price against the window mean
        self.below_high_bps = 0
        self.above_low_bps = 0
        self.volatility = 0

    def observe(self, update: PriceUpdate) -> bool:
        """Record ``update`` unless it is not newer than the last one seen; True if recorded."""
        if self.last is not None and update.seq <= self.last.seq:
            return False
        self.last = update
        self.prices.append(update.price)
        self._mean = sum(self.prices, Decimal(0)) / len(self.prices)
        self._high = max(self.prices)
        self._low = min(self.prices)
        price = update.price
        prices = self.prices
        self.moves_bps = [move_bps(price, prices[-1 - k]) for k in range(1, len(prices))]
        self.deviation_bps = move_bps(price, self._mean)
        self.below_high_bps = -move_bps(price, self._high)
        self.above_low_bps = move_bps(price, self._low)
        self.volatility = int((self._high - self._low) * 10_000 / self._low) if len(prices) > 1 else 0
        return True

    def move(self, steps: int) -> int | None:
        """The latest price's move in bps from ``steps`` updates before (None if the window is shorter)."""
        return self.moves_bps[steps - 1] if 0 < steps <= len(self.moves_bps) else None

    def ago(self, steps: int) -> Decimal | None:
        """The price ``steps`` updates before the latest (None if the window is shorter)."""
        if steps >= len(self.prices):
            return None
        return self.prices[-1 - steps]

    def mean(self) -> Decimal:
        return self._mean

    def high(self) -> Decimal:
        return self._high

    def low(self) -> Decimal:
        return self._low

    def volatility_bps(self) -> int:
        """The window's range relative to its low, in basis points."""
        return self.volatility


def spread_bps(update: PriceUpdate) -> int:
    mid = (update.bid + update.ask) / 2
    return int((update.ask - update.bid) * 10_000 / mid) if mid > 0 else 0


def move_bps(now: Decimal, before: Decimal) -> int:
    """Signed move from ``before`` to ``now`` in basis points (toward zero)."""
    return int((now - before) * 10_000 / before)
