"""``decimals.converter`` gives exactly what the ``Instrument`` methods give, for every input.

The reference is ``Instrument.parse_price`` / ``parse_qty`` / ``format_price``
/ ``format_qty``: same result, or the same ``InvalidDecimal`` (class, reason
and message). The one difference on purpose: where the reference leaks
``decimal.InvalidOperation`` (a step count beyond the 28-digit context), the
converter raises ``InvalidDecimal`` with the field's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine import Instrument, InvalidDecimal, RejectReason
from tests.codec.strategies import FAST, FUZZ, STEP_SIZES, step_sizes
from transports.codec.decimals import DecimalConverter, converter

Outcome = tuple[Any, ...]


def outcome(fn: Callable[[Any], Any], arg: Any) -> Outcome:
    try:
        return ("ok", fn(arg))
    except InvalidDecimal as exc:
        return ("invalid", type(exc), exc.reason, exc.message)
    except ArithmeticError:
        return ("arithmetic",)


def expected_parse(reference: Outcome, what: str, reason: RejectReason, text: object) -> Outcome:
    if reference == ("arithmetic",):
        return ("invalid", InvalidDecimal, reason, f"{what} {text!r} is out of range")
    return reference


def instrument(tick: str, lot: str) -> Instrument:
    return Instrument.create("X", tick, lot)


plain = st.from_regex(r"\A[0-9]{1,20}(\.[0-9]{1,20})?\Z")
decimalish = st.from_regex(r"\A[ \t]?[+-]?[0-9]{0,32}(\.[0-9]{0,32})?([eE][+-]?[0-9]{1,4})?[ ]?\Z")
odd_text = st.text(alphabet="0123456789.eE+-_ \t\u0661\u00b2xNaInfity", max_size=70)
non_strings = st.one_of(
    st.integers(-(10**40), 10**40), st.booleans(), st.none(), st.floats(allow_nan=True), st.binary(max_size=4), st.just(Decimal("1"))
)
SPECIAL = [
    "", ".", "-", "+", "5.", ".5", "-0", "+1", "-1", "1e3", "1E3", "00012.50", "0012", " 1", "1 ", "1_000", "\u0661",
    "NaN", "-Infinity", "inf", "1e25", "1e30", "1e31", "9" * 31, "9" * 40, "1" + "0" * 27, "0." + "0" * 39 + "1",
    "1e-999999999999", "0.0000", "12345678901234567890123456.78", "x" * 65,
]  # fmt: skip


def on_tick_spellings(conv_ref: Instrument, n: int, price: bool) -> list[str]:
    canonical = conv_ref.format_price(n) if price else conv_ref.format_qty(n)
    out = [canonical, "000" + canonical]
    if "." in canonical:
        out += [canonical + "000", canonical.rstrip("0").rstrip(".") or "0"]
    return out


@FUZZ
@given(tick=step_sizes, lot=step_sizes, text=st.one_of(plain, decimalish, odd_text, non_strings, st.sampled_from(SPECIAL)))
@example(tick="0.0001", lot="0.0001", text="1e25")
@example(tick="0.01", lot="1", text="100.005")
def test_parse_is_identical_to_the_instrument(tick: str, lot: str, text: object) -> None:
    ref = instrument(tick, lot)
    conv = DecimalConverter(ref)
    for _ in range(2):  # the second call may come from the cache
        assert outcome(conv.parse_price, text) == expected_parse(outcome(ref.parse_price, text), "price", RejectReason.INVALID_PRICE, text)
        assert outcome(conv.parse_qty, text) == expected_parse(
            outcome(ref.parse_qty, text), "quantity", RejectReason.INVALID_QUANTITY, text
        )


@FAST
@given(tick=step_sizes, lot=step_sizes, n=st.one_of(st.integers(0, 10**6), st.integers(0, 10**30)), price=st.booleans())
def test_every_spelling_of_an_on_tick_value_parses_like_the_instrument(tick: str, lot: str, n: int, price: bool) -> None:
    ref = instrument(tick, lot)
    conv = DecimalConverter(ref)
    try:
        spellings = on_tick_spellings(ref, n, price)
    except ArithmeticError:  # the reference cannot even format it
        return
    for text in spellings:
        if price:
            assert outcome(conv.parse_price, text) == expected_parse(
                outcome(ref.parse_price, text), "price", RejectReason.INVALID_PRICE, text
            )
        else:
            assert outcome(conv.parse_qty, text) == expected_parse(
                outcome(ref.parse_qty, text), "quantity", RejectReason.INVALID_QUANTITY, text
            )


@FUZZ
@given(
    tick=step_sizes,
    lot=step_sizes,
    n=st.one_of(st.integers(0, 10**7), st.integers(-(10**4), 10**30), st.sampled_from([0, 1, 10**26, 10**27 - 1, 10**28, 10**29])),
)
def test_format_is_identical_to_the_instrument(tick: str, lot: str, n: int) -> None:
    ref = instrument(tick, lot)
    conv = DecimalConverter(ref)
    for _ in range(2):
        assert outcome(conv.format_price, n) == outcome(ref.format_price, n)
        assert outcome(conv.format_qty, n) == outcome(ref.format_qty, n)


@pytest.mark.parametrize("tick", STEP_SIZES)
def test_format_then_parse_gives_the_same_ticks(tick: str) -> None:
    conv = converter(instrument(tick, tick))
    for n in (0, 1, 7, 99, 100, 12345, 10**9 + 1):
        assert conv.parse_price(conv.format_price(n)) == n
        assert conv.parse_qty(conv.format_qty(n)) == n


def test_huge_values_are_exact_or_invalid_decimal() -> None:
    conv = converter(instrument("0.0001", "0.0001"))
    assert conv.parse_qty("123456789012345678901234567.8") == 1234567890123456789012345678000
    with pytest.raises(InvalidDecimal) as info:
        conv.parse_price("1e25")
    assert info.value.reason is RejectReason.INVALID_PRICE


def test_an_arithmetic_error_of_the_reference_becomes_invalid_decimal() -> None:
    # Instrument.create never makes such a step; a hand-built instrument can.
    odd = Instrument("ODD", Decimal("1E-80"), Decimal("1E-80"))
    with pytest.raises(InvalidDecimal) as info:
        DecimalConverter(odd).parse_qty("9" * 30)
    assert info.value.reason is RejectReason.INVALID_QUANTITY


def test_caches_are_bounded() -> None:
    conv = DecimalConverter(instrument("0.01", "1"), cache_size=8)
    for n in range(1, 1000):
        assert conv.parse_price(f"{n}.00") == n * 100
        assert conv.format_price(n) == f"{n // 100}.{n % 100:02d}"
    scale: Any = conv.parse_price.__self__  # type: ignore[attr-defined]
    assert len(scale._parse_cache) <= 8
    assert len(scale._format_cache) <= 8


def test_one_converter_per_instrument_object() -> None:
    a = instrument("0.01", "1")
    b = instrument("0.05", "1")
    assert converter(a) is converter(a)
    assert converter(a) is not converter(b)
    assert converter(b).parse_price("0.05") == 1
