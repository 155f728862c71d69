"""Fast exact conversion between decimal strings and integer ticks/lots, per instrument.

Every price and quantity crosses every wire as a decimal string. The reference
conversion is ``Instrument.parse_price`` / ``parse_qty`` / ``format_price`` /
``format_qty``: exact, through ``decimal.Decimal``, and about a microsecond
each. ``converter(instrument)`` gives the same results with integer arithmetic
and a small cache.

Invariants:

* Identical to the reference. The fast path takes only what the reference
  accepts and computes exactly: unsigned plain ASCII decimals (``"123"``,
  ``"0.125"``, leading zeros allowed, at most 30 digits either side) that are
  exact multiples of the step. Anything else (a sign, an exponent, whitespace,
  underscores, other digits, an off-tick or very long value, a non-string) is
  handed to the reference, so every error and every message is its own.
* Total: parsing raises ``InvalidDecimal`` and nothing else. Should the
  reference ever raise an ``ArithmeticError`` (none does for an instrument
  that ``Instrument.create`` made), it becomes ``InvalidDecimal`` with the
  field's reason: decoders never leak anything but ``MalformedMessage``.
* Integers only; a float never appears.
* Bounded memory. Each cache holds at most ``cache_size`` entries and is
  emptied when full: prices cluster near the market, so the hot values come
  back at once. Only successful conversions are cached, keyed by the exact
  string (or integer), so a cache hit can never change a result.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from engine import Instrument, InvalidDecimal, RejectReason

DEFAULT_CACHE_SIZE = 4096

# Plain decimal strings longer than this go to the reference (which also bounds length).
_FAST_MAX_LEN = 40
# The reference's plain-decimal pattern: at most this many digits either side of the point.
_MAX_DIGITS = 30
# Formatting takes the fast path below this many units of the step's last digit: far
# inside the reference's exact 100-digit context, so both give the same digits.
_FORMAT_LIMIT = 10**60
_POW10: tuple[int, ...] = tuple(10**i for i in range(_FAST_MAX_LEN + 64))
_MAX_CONVERTERS = 1024


class _Scale:
    """Conversions for one step (a tick size or a lot size): ``value = steps * coef * 10**exp``."""

    __slots__ = ("_cache_size", "_coef", "_exp", "_fast", "_format_cache", "_parse_cache", "_reason", "_ref_format", "_ref_parse", "_what")

    def __init__(
        self,
        step: Decimal,
        ref_parse: Callable[[object], int],
        ref_format: Callable[[int], str],
        what: str,
        reason: RejectReason,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._ref_parse = ref_parse
        self._ref_format = ref_format
        self._what = what
        self._reason = reason
        self._cache_size = cache_size
        self._parse_cache: dict[str, int] = {}
        self._format_cache: dict[int, str] = {}
        sign, digits, exponent = step.as_tuple()
        # Anything but a positive finite step (which Instrument.create guarantees) takes the reference path.
        self._fast = sign == 0 and isinstance(exponent, int) and any(digits) and abs(exponent) < 64
        self._coef = int("".join(map(str, digits))) if self._fast else 1
        self._exp = exponent if isinstance(exponent, int) and self._fast else 0

    def parse(self, text: object) -> int:
        if type(text) is str:
            hit = self._parse_cache.get(text)
            if hit is not None:
                return hit
            if self._fast and len(text) <= _FAST_MAX_LEN and text.isascii():
                whole, dot, frac = text.partition(".")
                if whole.isdigit() and len(whole) <= _MAX_DIGITS and (not dot or (frac.isdigit() and len(frac) <= _MAX_DIGITS)):
                    # value = int(whole + frac) / 10**places; steps = value / (coef * 10**exp)
                    places = len(frac)
                    shift = self._exp + places
                    digits = int(whole + frac)
                    if shift >= 0:
                        steps, rest = divmod(digits, self._coef * _POW10[shift])
                    else:
                        steps, rest = divmod(digits * _POW10[-shift], self._coef)
                    if not rest:
                        cache = self._parse_cache
                        if self._cache_size:
                            if len(cache) >= self._cache_size:
                                cache.clear()
                            cache[text] = steps
                        return steps
        try:
            return self._ref_parse(text)
        except ArithmeticError:
            raise InvalidDecimal(f"{self._what} {text!r} is out of range", self._reason) from None

    def format(self, steps: int) -> str:
        if type(steps) is int:
            hit = self._format_cache.get(steps)
            if hit is not None:
                return hit
            scaled = steps * self._coef
            if self._fast and 0 <= scaled < _FORMAT_LIMIT:
                exp = self._exp
                if exp < 0:
                    places = -exp
                    text = str(scaled)
                    if len(text) <= places:
                        text = "0" * (places + 1 - len(text)) + text
                    text = f"{text[:-places]}.{text[-places:]}"
                else:
                    text = str(scaled * _POW10[exp])
                cache = self._format_cache
                if self._cache_size:
                    if len(cache) >= self._cache_size:
                        cache.clear()
                    cache[steps] = text
                return text
        return self._ref_format(steps)


class DecimalConverter:
    """``Instrument``'s four edge conversions, fast and identical (see the module docstring)."""

    __slots__ = ("format_price", "format_qty", "instrument", "parse_price", "parse_qty")

    def __init__(self, instrument: Instrument, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.instrument = instrument
        price = _Scale(
            instrument.tick_size, instrument.parse_price, instrument.format_price, "price", RejectReason.INVALID_PRICE, cache_size
        )
        qty = _Scale(
            instrument.lot_size, instrument.parse_qty, instrument.format_qty, "quantity", RejectReason.INVALID_QUANTITY, cache_size
        )
        # Bound methods as attributes: one call per conversion on the hot path.
        self.parse_price: Callable[[object], int] = price.parse
        self.parse_qty: Callable[[object], int] = qty.parse
        self.format_price: Callable[[int], str] = price.format
        self.format_qty: Callable[[int], str] = qty.format


# Keyed by id(): hashing a frozen dataclass hashes every field on each call. The
# converter holds its instrument, so an id cannot be reused while it is cached.
_CONVERTERS: dict[int, DecimalConverter] = {}


def converter(instrument: Instrument) -> DecimalConverter:
    """The shared converter of ``instrument`` (created on first use)."""
    conv = _CONVERTERS.get(id(instrument))
    if conv is not None and conv.instrument is instrument:
        return conv
    if len(_CONVERTERS) >= _MAX_CONVERTERS:
        _CONVERTERS.clear()
    conv = DecimalConverter(instrument)
    _CONVERTERS[id(instrument)] = conv
    return conv
