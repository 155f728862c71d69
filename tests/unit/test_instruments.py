"""Instruments: decimal strings map exactly to integer ticks and lots, or fail loudly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine import ExchangeError, Instrument, InvalidDecimal, RejectReason


@pytest.fixture
def btc() -> Instrument:
    return Instrument.create("BTC-USD", "0.01", "0.001")


@pytest.mark.parametrize(
    ("text", "ticks"),
    [("100", 10_000), ("100.00", 10_000), ("100.5", 10_050), ("0.01", 1), ("12345.67", 1_234_567), ("0.010", 1)],
)
def test_price_string_converts_exactly_to_ticks(btc: Instrument, text: str, ticks: int) -> None:
    assert btc.parse_price(text) == ticks


@pytest.mark.parametrize(("text", "lots"), [("1", 1000), ("0.001", 1), ("2.5", 2500), ("0.123", 123)])
def test_quantity_string_converts_exactly_to_lots(btc: Instrument, text: str, lots: int) -> None:
    assert btc.parse_qty(text) == lots


def test_whole_units_may_be_given_as_int(btc: Instrument) -> None:
    assert btc.parse_price(100) == 10_000
    assert btc.parse_qty(2) == 2000


@pytest.mark.parametrize("text", ["100.005", "0.001", "100.0001", "0.0010"])
def test_off_tick_price_is_refused_not_rounded(btc: Instrument, text: str) -> None:
    with pytest.raises(InvalidDecimal) as info:
        btc.parse_price(text)
    assert info.value.reason is RejectReason.INVALID_PRICE
    assert "multiple" in info.value.message


@pytest.mark.parametrize("text", ["0.0005", "1.0001", "0.0015"])
def test_off_lot_quantity_is_refused_not_rounded(btc: Instrument, text: str) -> None:
    with pytest.raises(InvalidDecimal) as info:
        btc.parse_qty(text)
    assert info.value.reason is RejectReason.INVALID_QUANTITY


@pytest.mark.parametrize("value", [100.0, 0.01, 1.5, float("nan"), True, Decimal("1.00"), None, b"1.00", [1]])
def test_non_string_values_are_refused(btc: Instrument, value: object) -> None:
    with pytest.raises(InvalidDecimal) as info:
        btc.parse_price(value)
    assert info.value.reason is RejectReason.INVALID_PRICE
    with pytest.raises(InvalidDecimal) as info:
        btc.parse_qty(value)
    assert info.value.reason is RejectReason.INVALID_QUANTITY


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1e999999",
        "1e99999999999",
        "-1",
        "-0.01",
        "",
        "abc",
        "1.2.3",
        "0x10",
        "1,000",
        "x" * 10_000,
        "1" * 65,
        # Only plain decimals: no exponent, sign "+", whitespace, "_" or non-ASCII digits.
        "1e2",
        "+1",
        " 1.00 ",
        "1_000",
        "\u0661\u0660\u0660",
        "1.",
        ".5",
    ],
)
def test_hostile_price_gives_a_clear_error(btc: Instrument, text: str) -> None:
    with pytest.raises(InvalidDecimal) as info:
        btc.parse_price(text)
    assert info.value.reason is RejectReason.INVALID_PRICE
    assert str(info.value).startswith("INVALID_PRICE: ")
    assert len(info.value.message) < 200  # the error does not echo a huge input back


@pytest.mark.parametrize("text", ["NaN", "1e999999", "-1", "-0.001", "", "1" * 65])
def test_hostile_quantity_gives_a_clear_error(btc: Instrument, text: str) -> None:
    with pytest.raises(InvalidDecimal) as info:
        btc.parse_qty(text)
    assert info.value.reason is RejectReason.INVALID_QUANTITY


@pytest.mark.parametrize("text", ["1" + "0" * 29, "123456789012345678901234567.89", "1" * 30 + "." + "1" * 30])
def test_huge_price_within_the_digit_limit_parses_exactly_or_gives_invalid_decimal(btc: Instrument, text: str) -> None:
    # These once overflowed the decimal context's 28-digit precision and a raw
    # decimal.InvalidOperation escaped instead of the project's InvalidDecimal.
    try:
        ticks = btc.parse_price(text)
    except InvalidDecimal as exc:
        assert exc.reason is RejectReason.INVALID_PRICE
    else:
        # Compare as text: Decimal arithmetic would itself round at 28 digits.
        assert f"{ticks // 100}.{ticks % 100:02d}" == (text if "." in text else text + ".00")


@pytest.mark.parametrize("value", [10**30, -(10**40)])
def test_huge_int_quantity_parses_exactly_or_gives_invalid_decimal(btc: Instrument, value: int) -> None:
    # An int once skipped the range check and crashed in divmod with decimal.InvalidOperation.
    try:
        lots = btc.parse_qty(value)
    except InvalidDecimal as exc:
        assert exc.reason is RejectReason.INVALID_QUANTITY
    else:
        assert value >= 0
        assert Decimal(lots) * btc.lot_size == value


def test_largest_price_that_fits_parses_exactly(btc: Instrument) -> None:
    assert btc.parse_price("1" + "0" * 25) == 10**27


def test_invalid_decimal_is_an_exchange_error(btc: Instrument) -> None:
    with pytest.raises(ExchangeError):
        btc.parse_price("1.001")


@pytest.mark.parametrize(("text", "canonical"), [("100", "100.00"), ("100.5", "100.50"), ("0.01", "0.01"), ("007.10", "7.10")])
def test_price_format_round_trip_gives_canonical_spelling(btc: Instrument, text: str, canonical: str) -> None:
    assert btc.format_price(btc.parse_price(text)) == canonical
    assert btc.parse_price(btc.format_price(btc.parse_price(text))) == btc.parse_price(text)


@pytest.mark.parametrize(("lots", "text"), [(1, "0.001"), (1000, "1.000"), (2500, "2.500"), (0, "0.000")])
def test_quantity_format(btc: Instrument, lots: int, text: str) -> None:
    assert btc.format_qty(lots) == text
    assert btc.parse_qty(text) == lots


def test_integer_and_coarse_ticks_format_without_exponent() -> None:
    whole = Instrument.create("W", "1", "1")
    assert whole.format_price(42) == "42"
    tens = Instrument.create("T", "10", "5")
    assert tens.parse_price("120") == 12
    assert tens.format_price(12) == "120"
    with pytest.raises(InvalidDecimal):
        tens.parse_price("125")
    assert tens.parse_qty("15") == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"symbol": ""},
        {"symbol": "BTC USD"},
        {"symbol": "X" * 33},
        {"symbol": "BTC\n"},
        {"tick_size": "0"},
        {"tick_size": "-0.01"},
        {"lot_size": "0"},
        {"tick_size": "NaN"},
        {"lot_size": "abc"},
        {"price_band_bps": -1},
        {"min_qty": "0.0005"},
        {"min_qty": "2", "max_qty": "1"},
        {"reference_price": "100.005"},
    ],
)
def test_bad_instrument_definitions_are_refused(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}
    args.update(kwargs)
    with pytest.raises(InvalidDecimal) as info:
        Instrument.create(**args)  # type: ignore[arg-type]
    assert info.value.reason is RejectReason.INVALID_INSTRUMENT


def test_instrument_limits_are_in_lots_and_ticks() -> None:
    inst = Instrument.create("BTC-USD", "0.01", "0.001", min_qty="0.01", max_qty="5", price_band_bps=500, reference_price="100")
    assert inst.min_qty == 10
    assert inst.max_qty == 5000
    assert inst.reference_price == 10_000
    assert inst.price_band_bps == 500


def test_instrument_dict_round_trip() -> None:
    inst = Instrument.create("BTC-USD", "0.010", "0.001", min_qty="0.002", max_qty="10", price_band_bps=250, reference_price="99.5")
    assert Instrument.from_dict(inst.to_dict()) == inst
    plain = Instrument.create("ETH-USD", "0.01", "0.01")
    assert Instrument.from_dict(plain.to_dict()) == plain
