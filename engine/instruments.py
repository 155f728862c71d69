"""Instruments: the exact mapping between decimal strings and integer ticks/lots.

Invariants:

* Inside the engine every price is an ``int`` number of ticks and every
  quantity an ``int`` number of lots. Floats never enter: the converters
  accept ``str`` (or ``int`` whole units) and raise on anything else.
* Conversion is exact or it fails. ``"100.005"`` on a 0.01 tick is an
  ``InvalidDecimal`` error, never rounded to 100.00 or 100.01.
* Only plain decimal strings are accepted (``-?digits[.digits]``, ASCII, at
  most 30 digits each side): no exponents, whitespace or underscores.
* ``format_price(parse_price(s))`` is the canonical spelling of ``s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation

from engine.errors import InvalidDecimal
from engine.reasons import RejectReason

# A decimal string on the wire: optional minus, ASCII digits, optional
# fraction. No exponent, sign "+", whitespace, "_" or non-ASCII digits: a
# price is exactly what it says. 30 digits either side is beyond any real
# price or quantity and small enough that hostile input costs nothing.
_DECIMAL = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,30})?")
_LIMIT = 10**30
# Exact arithmetic for anything the pattern admits (60 digits and more).
_EXACT = Context(prec=100, traps=[InvalidOperation])


def _to_decimal(text: object, what: str, reason: RejectReason) -> Decimal:
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InvalidDecimal(f"{what} must be a decimal string, got {type(text).__name__}", reason)
    if isinstance(text, int):
        if not -_LIMIT < text < _LIMIT:
            raise InvalidDecimal(f"{what} is out of range", reason)
        return Decimal(text)
    if _DECIMAL.fullmatch(text) is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise InvalidDecimal(f'{what} {shown!r} is not a plain decimal number such as "100.25"', reason)
    return Decimal(text)


def _steps(text: object, step: Decimal, what: str, reason: RejectReason) -> int:
    value = _to_decimal(text, what, reason)
    if value < 0:
        raise InvalidDecimal(f"{what} {text} is negative", reason)
    steps, rest = _EXACT.divmod(value, step)
    if rest != 0:
        raise InvalidDecimal(f"{what} {text} is not a multiple of {step}", reason)
    return int(steps)


def _format(steps: int, step: Decimal) -> str:
    exponent = step.as_tuple().exponent
    value = _EXACT.multiply(Decimal(steps), step)
    if isinstance(exponent, int) and exponent < 0:
        value = value.quantize(Decimal(1).scaleb(exponent), context=_EXACT)
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol.

    ``min_qty``/``max_qty`` are in lots; ``price_band_bps`` (0 = no band) limits
    how far a limit price may stray from the reference (the last trade, else
    ``reference_price`` in ticks, else no check).
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: int = 1
    max_qty: int = 1_000_000_000
    price_band_bps: int = 0
    reference_price: int = 0

    @staticmethod
    def create(
        symbol: str,
        tick_size: str,
        lot_size: str,
        min_qty: str | None = None,
        max_qty: str | None = None,
        price_band_bps: int = 0,
        reference_price: str | None = None,
    ) -> Instrument:
        """Build an instrument from edge (decimal string) values."""
        if not symbol or len(symbol) > 32 or not symbol.isprintable() or " " in symbol:
            raise InvalidDecimal(f"bad symbol {symbol!r}", RejectReason.INVALID_INSTRUMENT)
        tick = _to_decimal(tick_size, "tick_size", RejectReason.INVALID_INSTRUMENT)
        lot = _to_decimal(lot_size, "lot_size", RejectReason.INVALID_INSTRUMENT)
        if tick <= 0 or lot <= 0:
            raise InvalidDecimal("tick and lot sizes must be positive", RejectReason.INVALID_INSTRUMENT)
        if price_band_bps < 0:
            raise InvalidDecimal("price band must not be negative", RejectReason.INVALID_INSTRUMENT)
        lots_min = _steps(min_qty, lot, "min_qty", RejectReason.INVALID_INSTRUMENT) if min_qty else 1
        lots_max = _steps(max_qty, lot, "max_qty", RejectReason.INVALID_INSTRUMENT) if max_qty else 1_000_000_000
        if lots_min < 1 or lots_max < lots_min:
            raise InvalidDecimal("need 0 < min_qty <= max_qty", RejectReason.INVALID_INSTRUMENT)
        ref = _steps(reference_price, tick, "reference_price", RejectReason.INVALID_INSTRUMENT) if reference_price else 0
        return Instrument(symbol, tick.normalize(), lot.normalize(), lots_min, lots_max, price_band_bps, ref)

    # -- edge conversions -------------------------------------------------
    def parse_price(self, text: object) -> int:
        """Decimal string -> ticks. Raises ``InvalidDecimal`` (INVALID_PRICE)."""
        return _steps(text, self.tick_size, "price", RejectReason.INVALID_PRICE)

    def parse_qty(self, text: object) -> int:
        """Decimal string -> lots. Raises ``InvalidDecimal`` (INVALID_QUANTITY)."""
        return _steps(text, self.lot_size, "quantity", RejectReason.INVALID_QUANTITY)

    def format_price(self, ticks: int) -> str:
        return _format(ticks, self.tick_size)

    def format_qty(self, lots: int) -> str:
        return _format(lots, self.lot_size)

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "tick_size": format(self.tick_size, "f"),
            "lot_size": format(self.lot_size, "f"),
            "min_qty": self.format_qty(self.min_qty),
            "max_qty": self.format_qty(self.max_qty),
            "price_band_bps": self.price_band_bps,
            "reference_price": self.format_price(self.reference_price) if self.reference_price else None,
        }

    @staticmethod
    def from_dict(data: dict[str, object]) -> Instrument:
        ref = data.get("reference_price")
        band = data.get("price_band_bps", 0)
        if isinstance(band, bool) or not isinstance(band, int):
            raise InvalidDecimal("price_band_bps must be an integer", RejectReason.INVALID_INSTRUMENT)
        return Instrument.create(
            str(data["symbol"]),
            str(data["tick_size"]),
            str(data["lot_size"]),
            str(data["min_qty"]) if data.get("min_qty") is not None else None,
            str(data["max_qty"]) if data.get("max_qty") is not None else None,
            band,
            str(ref) if ref is not None else None,
        )
