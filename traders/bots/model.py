"""The bot domain: a bot's configuration, its position, and the order intents strategies produce.

Invariants: quantities and prices are ``Decimal`` (base units and quote
currency); conversion to the exchange's integer ticks and lots happens once,
in ``traders.bots.orders``. A position changes only from the bot's own fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from engine import Side

STRATEGIES = ("momentum", "mean_reversion", "grid")


@dataclass(frozen=True, slots=True)
class BotConfig:
    bot_id: str
    pair: str
    strategy: str
    size: Decimal  # base units per order
    max_position: Decimal  # absolute base units
    max_exposure: Decimal  # absolute notional in quote units
    take_profit_bps: int = 100
    stop_loss_bps: int = 100
    cooldown_ms: int = 1000
    max_orders_per_min: int = 30
    params: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    _ints: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsed once: strategies read their parameters for every update, for thousands of bots.
        ints = {k: int(v) for k, v in self.params.items() if v.lstrip("-").isdigit()}
        object.__setattr__(self, "_ints", ints)

    def param(self, name: str, default: int) -> int:
        """An integer strategy parameter (stored as text in the bot's row)."""
        return self._ints.get(name, default)


@dataclass(slots=True)
class RestingOrder:
    """A grid bot's post-only order on the exchange; its fills are learned when it is cancelled for the next one."""

    order_id: int
    side: Side
    lots: int
    price: Decimal
    filled_lots: int = 0  # already applied to the position


@dataclass(slots=True)
class Position:
    qty: Decimal = Decimal(0)  # signed: > 0 long, < 0 short
    avg_price: Decimal = Decimal(0)  # average entry price of the open quantity
    realized: Decimal = Decimal(0)
    last_seq: int = 0  # the latest price update whose order outcome is applied
    last_order_ns: int = 0
    orders: int = 0
    resting: RestingOrder | None = None

    def apply_fill(self, side: Side, qty: Decimal, price: Decimal) -> None:
        """Apply one of the bot's own fills: average in when adding, realize P&L when reducing."""
        signed = qty if side is Side.BUY else -qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = self.qty + signed
            self.avg_price = (self.avg_price * abs(self.qty) + price * qty) / abs(total)
            self.qty = total
            return
        closing = min(qty, abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        self.realized += (price - self.avg_price) * closing * direction
        self.qty += signed
        if self.qty == 0:
            self.avg_price = Decimal(0)
        elif (self.qty > 0) != (direction > 0):  # flipped through zero: the rest opens at this price
            self.avg_price = price


class Purpose(Enum):
    ENTRY = "entry"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"


@dataclass(frozen=True, slots=True)
class Intent:
    """An order a bot wants: taker (IOC at the far side) or maker (post-only, resting at the near side)."""

    side: Side
    qty: Decimal
    price: Decimal
    maker: bool
    purpose: Purpose = Purpose.ENTRY

    @property
    def is_exit(self) -> bool:
        return self.purpose is not Purpose.ENTRY
