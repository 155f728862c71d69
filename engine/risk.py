"""Pre-trade risk limits.

Limits are configured in edge units (decimal quantities and notionals) and
compiled once per instrument into integer lots and tick*lot units, so the hot
path compares integers only. A compiled limit of ``NO_LIMIT`` means none; a
limit smaller than one lot compiles to 0, which no order passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from engine.instruments import Instrument

NO_LIMIT: Final = 1 << 62


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_order_qty: Decimal | None = None  # per order, in instrument quantity units
    max_notional: Decimal | None = None  # per order, price * quantity in quote units
    max_open_orders: int = 0  # per trader, resting orders plus pending stops; 0 = no limit

    def compile_for(self, instrument: Instrument) -> tuple[int, int]:
        """Return ``(max_lots, max_notional_units)`` for ``instrument`` (``NO_LIMIT`` = none)."""
        lots = NO_LIMIT
        if self.max_order_qty is not None:
            lots = max(0, int((self.max_order_qty / instrument.lot_size).to_integral_value(ROUND_FLOOR)))
        notional = NO_LIMIT
        if self.max_notional is not None:
            unit = instrument.tick_size * instrument.lot_size
            notional = max(0, int((self.max_notional / unit).to_integral_value(ROUND_FLOOR)))
        return lots, notional

    def to_dict(self) -> dict[str, object]:
        return {
            "max_order_qty": str(self.max_order_qty) if self.max_order_qty is not None else None,
            "max_notional": str(self.max_notional) if self.max_notional is not None else None,
            "max_open_orders": self.max_open_orders,
        }

    @staticmethod
    def from_dict(data: dict[str, object]) -> RiskLimits:
        qty = data.get("max_order_qty")
        notional = data.get("max_notional")
        open_orders = data.get("max_open_orders", 0)
        return RiskLimits(
            Decimal(str(qty)) if qty is not None else None,
            Decimal(str(notional)) if notional is not None else None,
            int(str(open_orders)),
        )
