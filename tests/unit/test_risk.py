"""Pre-trade risk: per-order quantity and notional, open orders per trader, per-trader overrides, price band."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from engine import (
    AddInstrument,
    CancelReason,
    Engine,
    Instrument,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    RejectReason,
    RiskLimits,
    TradeExecuted,
)
from tests.conftest import BUY, SELL, SYMBOL, book, cancel, events_of, ioc, one, order_id, place, place_stop, replace


def risk_engine(risk: RiskLimits | None = None, trader_limits: dict[str, RiskLimits] | None = None, **instrument: object) -> Engine:
    engine = Engine(risk=risk, trader_limits=trader_limits)
    engine.handle(AddInstrument(Instrument.create(SYMBOL, "1", "1", **instrument)))  # type: ignore[arg-type]
    return engine


def rejected_for(events: Sequence[object], reason: RejectReason) -> OrderRejected:
    assert len(events) == 1, events
    rejected = one(OrderRejected, events)
    assert rejected.reason is reason
    assert rejected.message
    return rejected


# --------------------------------------------------------- order quantity


def test_order_quantity_limit() -> None:
    engine = risk_engine(RiskLimits(max_order_qty=Decimal(10)))
    assert events_of(OrderAccepted, place(engine, "a", "ok", BUY, 10, 100))
    rejected_for(place(engine, "a", "big", BUY, 11, 100), RejectReason.RISK_MAX_ORDER_QTY)
    rejected_for(place(engine, "a", "big-mkt", SELL, 11), RejectReason.RISK_MAX_ORDER_QTY)
    rejected_for(place_stop(engine, "a", "big-stop", SELL, 11, stop=90), RejectReason.RISK_MAX_ORDER_QTY)
    assert book(engine) == ([(100, 10, 1)], [])


def test_order_quantity_limit_is_in_instrument_units() -> None:
    engine = Engine(risk=RiskLimits(max_order_qty=Decimal("0.5")))
    engine.handle(AddInstrument(Instrument.create(SYMBOL, "0.01", "0.001")))
    assert events_of(OrderAccepted, place(engine, "a", "ok", BUY, 500, 10_000))
    rejected_for(place(engine, "a", "big", BUY, 501, 10_000), RejectReason.RISK_MAX_ORDER_QTY)


def test_order_quantity_limit_below_one_lot_refuses_every_order() -> None:
    # Engine bug: compile_for floors the limit to 0 lots and then lifts it to
    # max(1, 0) == 1 lot, so a 0.001 order passes a 0.0005 limit.
    engine = Engine(risk=RiskLimits(max_order_qty=Decimal("0.0005")))
    engine.handle(AddInstrument(Instrument.create(SYMBOL, "0.01", "0.001")))
    rejected_for(place(engine, "a", "one-lot", BUY, 1, 10_000), RejectReason.RISK_MAX_ORDER_QTY)


def test_replace_to_a_quantity_above_the_limit_is_rejected() -> None:
    engine = risk_engine(RiskLimits(max_order_qty=Decimal(10)))
    oid = order_id(place(engine, "a", "c1", BUY, 5, 100))
    rejected = rejected_for(replace(engine, "a", oid, new_qty=11), RejectReason.RISK_MAX_ORDER_QTY)
    assert rejected.order_id == oid
    assert book(engine) == ([(100, 5, 1)], [])


# --------------------------------------------------------------- notional


def test_notional_limit_on_limit_orders() -> None:
    engine = risk_engine(RiskLimits(max_notional=Decimal(1000)))
    assert events_of(OrderAccepted, place(engine, "a", "ok", BUY, 10, 100))
    rejected_for(place(engine, "a", "big", BUY, 11, 100), RejectReason.RISK_MAX_NOTIONAL)
    rejected_for(place(engine, "a", "pricey", SELL, 2, 501), RejectReason.RISK_MAX_NOTIONAL)


def test_notional_limit_is_in_quote_units() -> None:
    engine = Engine(risk=RiskLimits(max_notional=Decimal(1000)))
    engine.handle(AddInstrument(Instrument.create(SYMBOL, "0.01", "0.001")))
    # 10.000 at 100.00 = 1000; 10.001 at 100.00 = 1000.1
    assert events_of(OrderAccepted, place(engine, "a", "ok", BUY, 10_000, 10_000))
    rejected_for(place(engine, "a", "big", BUY, 10_001, 10_000), RejectReason.RISK_MAX_NOTIONAL)


def test_market_order_notional_is_valued_at_the_last_trade() -> None:
    engine = risk_engine(RiskLimits(max_notional=Decimal(1000)))
    place(engine, "m", "a1", SELL, 1, 100)
    place(engine, "t", "b1", BUY, 1, 100)  # last trade: 100
    rejected_for(place(engine, "a", "mkt", BUY, 11), RejectReason.RISK_MAX_NOTIONAL)


def test_market_order_notional_is_valued_at_the_reference_price_when_the_book_is_empty() -> None:
    engine = risk_engine(RiskLimits(max_notional=Decimal(1000)), reference_price="100")
    rejected_for(place(engine, "a", "mkt", SELL, 11), RejectReason.RISK_MAX_NOTIONAL)
    # A stop-market is valued at its stop price: 11 x 95 is over the limit, 10 x 95 is not.
    rejected_for(place_stop(engine, "a", "stop", SELL, 11, stop=95), RejectReason.RISK_MAX_NOTIONAL)
    assert isinstance(place_stop(engine, "a", "stop2", SELL, 10, stop=95)[0], OrderAccepted)


def test_stop_market_notional_falls_back_to_the_stop_price() -> None:
    engine = risk_engine(RiskLimits(max_notional=Decimal(1000)))
    rejected_for(place_stop(engine, "a", "stop", BUY, 11, stop=100), RejectReason.RISK_MAX_NOTIONAL)
    assert events_of(OrderAccepted, place_stop(engine, "a", "stop-ok", BUY, 10, stop=100))


def test_market_order_cannot_exceed_the_notional_limit_before_the_first_trade() -> None:
    # Engine bug: with no last trade and no reference price a market order's
    # notional is valued at 0, so it passes the check and sweeps the book.
    engine = risk_engine(None, {"a": RiskLimits(max_notional=Decimal(1000))})
    assert events_of(OrderAccepted, place(engine, "m", "a1", SELL, 100, 100))
    events = place(engine, "a", "mkt", BUY, 50)
    traded = sum(t.price * t.qty for t in events_of(TradeExecuted, events))
    if events_of(OrderRejected, events):
        rejected_for(events, RejectReason.RISK_MAX_NOTIONAL)
    else:
        assert traded <= 1000, f"a market order traded a notional of {traded} against a limit of 1000"


def test_replace_to_a_notional_above_the_limit_is_rejected() -> None:
    engine = risk_engine(RiskLimits(max_notional=Decimal(1000)))
    oid = order_id(place(engine, "a", "c1", BUY, 10, 50))
    rejected_for(replace(engine, "a", oid, new_price=101), RejectReason.RISK_MAX_NOTIONAL)
    assert book(engine) == ([(50, 10, 1)], [])


# ------------------------------------------------------------ open orders


def test_open_order_limit_counts_resting_orders_and_pending_stops() -> None:
    engine = risk_engine(RiskLimits(max_open_orders=2))
    oid = order_id(place(engine, "a", "c1", BUY, 1, 100))
    place_stop(engine, "a", "c2", BUY, 1, stop=200)
    rejected = rejected_for(place(engine, "a", "c3", BUY, 1, 99), RejectReason.RISK_MAX_OPEN_ORDERS)
    assert "2" in rejected.message
    rejected_for(place_stop(engine, "a", "c4", SELL, 1, stop=50), RejectReason.RISK_MAX_OPEN_ORDERS)
    # Orders that cannot rest are not limited.
    assert events_of(OrderAccepted, ioc(engine, "a", "c5", BUY, 1, 100))
    assert events_of(OrderAccepted, place(engine, "a", "c6", BUY, 1))
    # Another trader has a separate count.
    assert events_of(OrderAccepted, place(engine, "b", "c1", BUY, 1, 98))
    # A cancel frees a slot.
    cancel(engine, "a", oid)
    assert events_of(OrderAccepted, place(engine, "a", "c7", BUY, 1, 99))


def test_a_fill_frees_an_open_order_slot() -> None:
    engine = risk_engine(RiskLimits(max_open_orders=1))
    place(engine, "a", "c1", SELL, 1, 100)
    place(engine, "b", "b1", BUY, 1, 100)
    assert events_of(OrderAccepted, place(engine, "a", "c2", SELL, 1, 100))


def test_open_order_limit_spans_symbols() -> None:
    engine = Engine(risk=RiskLimits(max_open_orders=1))
    for symbol in ("BTC-USD", "ETH-USD"):
        engine.handle(AddInstrument(Instrument.create(symbol, "1", "1")))
    place(engine, "a", "c1", BUY, 1, 100, symbol="BTC-USD")
    rejected_for(place(engine, "a", "c2", BUY, 1, 100, symbol="ETH-USD"), RejectReason.RISK_MAX_OPEN_ORDERS)


# --------------------------------------------------------------- overrides


def test_per_trader_limits_override_the_defaults() -> None:
    engine = risk_engine(
        RiskLimits(max_order_qty=Decimal(10)),
        {"whale": RiskLimits(max_order_qty=Decimal(100)), "minnow": RiskLimits(max_order_qty=Decimal(1))},
    )
    assert events_of(OrderAccepted, place(engine, "whale", "w1", BUY, 100, 100))
    rejected_for(place(engine, "whale", "w2", BUY, 101, 100), RejectReason.RISK_MAX_ORDER_QTY)
    rejected_for(place(engine, "minnow", "m1", BUY, 2, 100), RejectReason.RISK_MAX_ORDER_QTY)
    rejected_for(place(engine, "anyone", "x1", BUY, 11, 100), RejectReason.RISK_MAX_ORDER_QTY)
    assert events_of(OrderAccepted, place(engine, "anyone", "x2", BUY, 10, 100))


def test_per_trader_open_order_and_notional_limits() -> None:
    engine = risk_engine(None, {"small": RiskLimits(max_notional=Decimal(100), max_open_orders=1)})
    rejected_for(place(engine, "small", "s1", BUY, 2, 51), RejectReason.RISK_MAX_NOTIONAL)
    place(engine, "small", "s2", BUY, 1, 50)
    rejected_for(place(engine, "small", "s3", BUY, 1, 50), RejectReason.RISK_MAX_OPEN_ORDERS)
    for i in range(3):
        assert events_of(OrderAccepted, place(engine, "big", f"b{i}", BUY, 1000, 50))


def test_per_trader_limits_apply_to_instruments_listed_later() -> None:
    engine = Engine(trader_limits={"small": RiskLimits(max_order_qty=Decimal(1))})
    engine.handle(AddInstrument(Instrument.create("BTC-USD", "1", "1")))
    place(engine, "small", "s1", BUY, 1, 100, symbol="BTC-USD")
    engine.handle(AddInstrument(Instrument.create("ETH-USD", "0.01", "0.001")))
    rejected_for(place(engine, "small", "s2", BUY, 1001, 100, symbol="ETH-USD"), RejectReason.RISK_MAX_ORDER_QTY)
    assert events_of(OrderAccepted, place(engine, "small", "s3", BUY, 1000, 100, symbol="ETH-USD"))


# -------------------------------------------------------------- price band


@pytest.mark.parametrize(("price", "accepted"), [(110, True), (111, False), (90, True), (89, False), (100, True)])
def test_price_band_around_the_reference_price(price: int, accepted: bool) -> None:
    engine = risk_engine(price_band_bps=1000, reference_price="100")  # +-10%
    events = place(engine, "a", "c1", BUY, 1, price)
    if accepted:
        assert events_of(OrderAccepted, events)
    else:
        rejected_for(events, RejectReason.PRICE_OUT_OF_BAND)


def test_price_band_follows_the_last_trade() -> None:
    engine = risk_engine(price_band_bps=1000, reference_price="100")
    place(engine, "m", "a1", SELL, 1, 105)
    place(engine, "t", "b1", BUY, 1, 105)
    assert events_of(OrderAccepted, place(engine, "a", "ok", SELL, 1, 115))
    rejected_for(place(engine, "a", "far", SELL, 1, 116), RejectReason.PRICE_OUT_OF_BAND)
    assert events_of(OrderAccepted, place(engine, "a", "low", BUY, 1, 95))


def test_no_band_without_a_reference() -> None:
    engine = risk_engine(price_band_bps=100)
    assert events_of(OrderAccepted, place(engine, "a", "c1", BUY, 1, 1))
    assert events_of(OrderAccepted, place(engine, "a", "c2", SELL, 1, 1_000_000))


def test_band_applies_to_stop_limit_prices() -> None:
    engine = risk_engine(price_band_bps=1000, reference_price="100")
    rejected_for(place_stop(engine, "a", "s1", BUY, 1, stop=105, price=120), RejectReason.PRICE_OUT_OF_BAND)


def test_replace_out_of_the_band_is_rejected() -> None:
    engine = risk_engine(price_band_bps=1000, reference_price="100")
    oid = order_id(place(engine, "a", "c1", BUY, 1, 100))
    rejected = rejected_for(replace(engine, "a", oid, new_price=120), RejectReason.PRICE_OUT_OF_BAND)
    assert rejected.order_id == oid
    assert book(engine) == ([(100, 1, 1)], [])


def test_market_order_does_not_trade_outside_the_band() -> None:
    engine = risk_engine(price_band_bps=1000, reference_price="100")  # +-10%
    place(engine, "m", "bid", BUY, 1, 100)
    place(engine, "m", "ask", SELL, 1, 105)
    place(engine, "t", "lift", BUY, 1, 105)  # last 105: 115 is now inside the band
    place(engine, "m", "far-ask", SELL, 1, 115)
    place(engine, "t", "hit", SELL, 1, 100)  # last 100: the band is back to 90..110
    events = place(engine, "t", "mkt", BUY, 5)
    assert events_of(TradeExecuted, events) == []
    assert one(OrderCancelled, events).reason is CancelReason.MARKET_REMAINDER
    assert book(engine) == ([], [(115, 1, 1)])


def test_market_order_trades_up_to_the_band_edge() -> None:
    engine = risk_engine(price_band_bps=1000, reference_price="100")
    place(engine, "m", "a1", SELL, 1, 105)
    place(engine, "m", "a2", SELL, 1, 110)
    events = place(engine, "t", "mkt", BUY, 5)
    assert [t.price for t in events_of(TradeExecuted, events)] == [105, 110]
    assert one(OrderCancelled, events).qty == 3


def test_risk_checks_come_after_the_duplicate_check() -> None:
    engine = risk_engine(RiskLimits(max_order_qty=Decimal(10)))
    place(engine, "a", "c1", BUY, 1, 100)
    rejected_for(place(engine, "a", "c1", BUY, 11, 100), RejectReason.DUPLICATE_CLIENT_ORDER_ID)
