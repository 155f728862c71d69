"""IOC and FOK scenarios adapted from Liquibook's ut_immediate_or_cancel.cpp.

Source: enewhuis/liquibook, test/unit/ut_immediate_or_cancel.cpp. Restated in our
terms; no code is copied.

Mapping: Liquibook's IOC condition is our ``TimeInForce.IOC``; its FOK
(all-or-none + immediate-or-cancel) is our ``TimeInForce.FOK``. Liquibook orders
have no owner, so each order here gets its own trader and self-trade prevention
never applies. Liquibook's FillCheck (filled quantity and filled cost per order)
becomes the sum of an order's trades; its DepthCheck becomes the engine's depth.
"""

from __future__ import annotations

import pytest

from engine import CancelReason, Engine, Event, OrderAccepted, OrderCancelled, OrderStatus, Side, TimeInForce, TradeExecuted
from tests.conftest import BUY, SELL, book, events_of, make_engine, one, order_id, place

Order = tuple[str, Side, int, int]  # name, side, price, qty


def market_with(*orders: Order) -> Engine:
    engine = make_engine()
    for name, side, price, qty in orders:
        assert not events_of(TradeExecuted, place(engine, name, name, side, qty, price))
    return engine


def filled(events: list[Event], name: str) -> tuple[int, int]:
    """(quantity, cost) an order traded in ``events``: Liquibook's FillCheck."""
    mine = [t for t in events_of(TradeExecuted, events) if name in (t.maker_trader, t.taker_trader)]
    return sum(t.qty for t in mine), sum(t.qty * t.price for t in mine)


def send(engine: Engine, name: str, side: Side, price: int, qty: int, tif: TimeInForce) -> list[Event]:
    return place(engine, name, name, side, qty, price, tif=tif)


def assert_finished(engine: Engine, name: str, events: list[Event], qty: int, cost: int, reason: CancelReason | None) -> None:
    """The aggressor traded (qty, cost), never rests, and its rest was cancelled for ``reason`` (None: fully filled)."""
    assert filled(events, name) == (qty, cost)
    view = engine.order_status(name, order_id(events))
    assert view is not None
    assert view.filled == qty
    cancels = [(c.reason, c.qty) for c in events_of(OrderCancelled, events)]
    if reason is None:
        assert view.status is OrderStatus.FILLED
        assert cancels == []
    else:
        sent = one(OrderAccepted, events).qty
        assert view.status is OrderStatus.CANCELLED
        assert cancels == [(reason, sent - qty)]
    assert engine.open_orders(name) == []


# Liquibook's common layout: two asks above, two bids below the 1250 where the aggressor arrives.
THIN = (("ask1", SELL, 1251, 100), ("ask2", SELL, 1252, 100), ("bid1", BUY, 1249, 100), ("bid2", BUY, 1248, 100))


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_bid_no_match(tif: TimeInForce) -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocBidNoMatch and TestFokBidNoMatch.
    engine = market_with(*THIN)
    before = book(engine)
    assert before == ([(1249, 100, 1), (1248, 100, 1)], [(1251, 100, 1), (1252, 100, 1)])
    events = send(engine, "bid0", BUY, 1250, 100, tif)
    reason = CancelReason.IOC_REMAINDER if tif is TimeInForce.IOC else CancelReason.FOK_NOT_FILLED
    assert_finished(engine, "bid0", events, 0, 0, reason)
    assert book(engine) == before


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_ask_no_match(tif: TimeInForce) -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocAskNoMatch and TestFokAskNoMatch.
    engine = market_with(*THIN)
    before = book(engine)
    events = send(engine, "ask0", SELL, 1250, 100, tif)
    reason = CancelReason.IOC_REMAINDER if tif is TimeInForce.IOC else CancelReason.FOK_NOT_FILLED
    assert_finished(engine, "ask0", events, 0, 0, reason)
    assert book(engine) == before


def test_ioc_bid_partial_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocBidPartialMatch.
    engine = market_with(("ask0", SELL, 1250, 100), *THIN)
    events = send(engine, "bid0", BUY, 1250, 300, TimeInForce.IOC)
    assert_finished(engine, "bid0", events, 100, 125_000, CancelReason.IOC_REMAINDER)
    assert one_cancel(events) == 200
    assert filled(events, "ask0") == (100, 125_000)
    assert book(engine) == ([(1249, 100, 1), (1248, 100, 1)], [(1251, 100, 1), (1252, 100, 1)])


def test_ioc_bid_full_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocBidFullMatch.
    engine = market_with(("ask0", SELL, 1250, 400), *THIN)
    events = send(engine, "bid0", BUY, 1250, 300, TimeInForce.IOC)
    assert_finished(engine, "bid0", events, 300, 1250 * 300, None)
    assert filled(events, "ask0") == (300, 1250 * 300)
    assert book(engine) == ([(1249, 100, 1), (1248, 100, 1)], [(1250, 100, 1), (1251, 100, 1), (1252, 100, 1)])


def test_ioc_bid_multi_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocBidMultiMatch.
    engine = market_with(("ask0", SELL, 1250, 400), *THIN)
    events = send(engine, "bid0", BUY, 1251, 500, TimeInForce.IOC)
    assert_finished(engine, "bid0", events, 500, 625_100, None)
    assert filled(events, "ask0") == (400, 1250 * 400)
    assert filled(events, "ask1") == (100, 1251 * 100)
    assert book(engine) == ([(1249, 100, 1), (1248, 100, 1)], [(1252, 100, 1)])


def test_fok_bid_partial_match_does_not_fill() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestFokBidPartialMatch.
    engine = market_with(("ask0", SELL, 1250, 100), *THIN)
    before = book(engine)
    events = send(engine, "bid0", BUY, 1250, 300, TimeInForce.FOK)
    assert events_of(TradeExecuted, events) == []
    assert_finished(engine, "bid0", events, 0, 0, CancelReason.FOK_NOT_FILLED)
    assert one_cancel(events) == 300
    assert book(engine) == before


def test_fok_bid_full_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestFokBidFullMatch.
    engine = market_with(("ask0", SELL, 1250, 400), *THIN)
    events = send(engine, "bid0", BUY, 1250, 300, TimeInForce.FOK)
    assert_finished(engine, "bid0", events, 300, 1250 * 300, None)
    assert book(engine)[1] == [(1250, 100, 1), (1251, 100, 1), (1252, 100, 1)]


def test_fok_bid_multi_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestFokBidMultiMatch.
    engine = market_with(("ask0", SELL, 1250, 400), *THIN)
    events = send(engine, "bid0", BUY, 1251, 500, TimeInForce.FOK)
    assert_finished(engine, "bid0", events, 500, 625_100, None)
    assert filled(events, "ask0") == (400, 500_000)
    assert filled(events, "ask1") == (100, 125_100)
    assert book(engine) == ([(1249, 100, 1), (1248, 100, 1)], [(1252, 100, 1)])


def test_ioc_ask_partial_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocAskPartialMatch.
    engine = market_with(("bid0", BUY, 1250, 100), *THIN)
    events = send(engine, "ask0", SELL, 1250, 300, TimeInForce.IOC)
    assert_finished(engine, "ask0", events, 100, 125_000, CancelReason.IOC_REMAINDER)
    assert one_cancel(events) == 200
    assert filled(events, "bid0") == (100, 125_000)
    assert book(engine) == ([(1249, 100, 1), (1248, 100, 1)], [(1251, 100, 1), (1252, 100, 1)])


def test_ioc_ask_full_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocAskFullMatch.
    engine = market_with(("bid0", BUY, 1250, 300), *THIN)
    events = send(engine, "ask0", SELL, 1250, 300, TimeInForce.IOC)
    assert_finished(engine, "ask0", events, 300, 375_000, None)
    assert book(engine) == ([(1249, 100, 1), (1248, 100, 1)], [(1251, 100, 1), (1252, 100, 1)])


def test_ioc_ask_multi_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestIocAskMultiMatch.
    engine = market_with(("bid0", BUY, 1250, 300), *THIN)
    events = send(engine, "ask0", SELL, 1249, 400, TimeInForce.IOC)
    assert_finished(engine, "ask0", events, 400, 499_900, None)
    assert filled(events, "bid0") == (300, 1250 * 300)
    assert filled(events, "bid1") == (100, 1249 * 100)
    assert book(engine) == ([(1248, 100, 1)], [(1251, 100, 1), (1252, 100, 1)])


def test_fok_ask_partial_match_does_not_fill() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestFokAskPartialMatch.
    engine = market_with(("bid0", BUY, 1250, 100), *THIN)
    before = book(engine)
    events = send(engine, "ask0", SELL, 1250, 300, TimeInForce.FOK)
    assert events_of(TradeExecuted, events) == []
    assert_finished(engine, "ask0", events, 0, 0, CancelReason.FOK_NOT_FILLED)
    assert book(engine) == before


def test_fok_ask_full_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestFokAskFullMatch.
    engine = market_with(("bid0", BUY, 1250, 300), *THIN)
    events = send(engine, "ask0", SELL, 1250, 300, TimeInForce.FOK)
    assert_finished(engine, "ask0", events, 300, 375_000, None)
    assert book(engine) == ([(1249, 100, 1), (1248, 100, 1)], [(1251, 100, 1), (1252, 100, 1)])


def test_fok_ask_multi_match() -> None:
    # Adapted from Liquibook ut_immediate_or_cancel TestFokAskMultiMatch.
    engine = market_with(("bid0", BUY, 1250, 300), *THIN)
    events = send(engine, "ask0", SELL, 1249, 400, TimeInForce.FOK)
    assert_finished(engine, "ask0", events, 400, 499_900, None)
    assert book(engine) == ([(1248, 100, 1)], [(1251, 100, 1), (1252, 100, 1)])


def one_cancel(events: list[Event]) -> int:
    (cancelled,) = events_of(OrderCancelled, events)
    return cancelled.qty
