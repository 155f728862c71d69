"""Matching: price-time priority, trades at the maker's price, partial fills, IOC/FOK/market remainders."""

from __future__ import annotations

from collections.abc import Sequence

from engine import CancelReason, Engine, OrderCancelled, OrderStatus, TradeExecuted
from tests.conftest import BUY, SELL, book, events_of, fok, ioc, kinds, one, order_id, place


def fills(events: Sequence[object]) -> list[tuple[str, int, int]]:
    """(maker client order id, price, qty) of each trade, in order."""
    return [(t.maker_client_order_id, t.price, t.qty) for t in events_of(TradeExecuted, events)]


def test_better_price_trades_first_even_if_it_arrived_later(engine: Engine) -> None:
    place(engine, "m1", "far", SELL, 1, 102)
    place(engine, "m2", "near", SELL, 1, 100)
    place(engine, "m3", "mid", SELL, 1, 101)
    events = place(engine, "t", "t1", BUY, 3, 102)
    assert fills(events) == [("near", 100, 1), ("mid", 101, 1), ("far", 102, 1)]


def test_same_price_trades_first_in_first_out(engine: Engine) -> None:
    for coid in ("first", "second", "third"):
        place(engine, f"m-{coid}", coid, BUY, 2, 100)
    events = place(engine, "t", "t1", SELL, 5, 100)
    assert fills(events) == [("first", 100, 2), ("second", 100, 2), ("third", 100, 1)]
    assert book(engine) == ([(100, 1, 1)], [])


def test_trade_prints_at_the_resting_price_for_a_buyer(engine: Engine) -> None:
    place(engine, "m", "ask", SELL, 1, 100)
    events = place(engine, "t", "bid", BUY, 1, 110)
    assert one(TradeExecuted, events).price == 100


def test_trade_prints_at_the_resting_price_for_a_seller(engine: Engine) -> None:
    place(engine, "m", "bid", BUY, 1, 110)
    events = place(engine, "t", "ask", SELL, 1, 100)
    assert one(TradeExecuted, events).price == 110


def test_limit_order_never_trades_through_its_limit(engine: Engine) -> None:
    place(engine, "m", "a100", SELL, 1, 100)
    place(engine, "m", "a105", SELL, 1, 105)
    events = place(engine, "t", "bid", BUY, 3, 104)
    assert fills(events) == [("a100", 100, 1)]
    assert book(engine) == ([(104, 2, 1)], [(105, 1, 1)])


def test_orders_that_do_not_cross_both_rest(engine: Engine) -> None:
    place(engine, "m", "bid", BUY, 1, 99)
    events = place(engine, "t", "ask", SELL, 1, 100)
    assert not events_of(TradeExecuted, events)
    assert book(engine) == ([(99, 1, 1)], [(100, 1, 1)])


def test_partial_fill_of_the_maker_keeps_it_at_the_front(engine: Engine) -> None:
    maker = order_id(place(engine, "m", "big", SELL, 10, 100))
    place(engine, "m2", "behind", SELL, 10, 100)
    first = one(TradeExecuted, place(engine, "t", "t1", BUY, 4, 100))
    assert (first.maker_order_id, first.maker_remaining, first.taker_remaining) == (maker, 6, 0)
    second = events_of(TradeExecuted, place(engine, "t", "t2", BUY, 8, 100))
    assert [(t.maker_client_order_id, t.qty, t.maker_remaining) for t in second] == [("big", 6, 0), ("behind", 2, 8)]
    view = engine.order_status("m", maker)
    assert view is not None
    assert (view.status, view.filled, view.remaining) == (OrderStatus.FILLED, 10, 0)


def test_partial_fill_of_the_taker_reports_the_remaining_quantity(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 3, 100)
    place(engine, "m", "a2", SELL, 3, 101)
    taker = place(engine, "t", "t1", BUY, 10, 101)
    assert [t.taker_remaining for t in events_of(TradeExecuted, taker)] == [7, 4]
    view = engine.order_status("t", order_id(taker))
    assert view is not None
    assert (view.status, view.filled, view.remaining) == (OrderStatus.PARTIALLY_FILLED, 6, 4)


def test_market_order_never_rests(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 2, 100)
    events = place(engine, "t", "mkt", BUY, 5)
    assert fills(events) == [("a1", 100, 2)]
    cancelled = one(OrderCancelled, events)
    assert (cancelled.reason, cancelled.qty, cancelled.remaining) == (CancelReason.MARKET_REMAINDER, 3, 0)
    assert book(engine) == ([], [])
    assert engine.open_orders("t") == []


def test_market_order_trades_through_every_level(engine: Engine) -> None:
    for price in (100, 150, 1000):
        place(engine, "m", f"a{price}", SELL, 1, price)
    events = place(engine, "t", "mkt", BUY, 3)
    assert [t.price for t in events_of(TradeExecuted, events)] == [100, 150, 1000]
    assert not events_of(OrderCancelled, events)


def test_ioc_remainder_is_cancelled_with_ioc_reason(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 2, 100)
    events = ioc(engine, "t", "i1", BUY, 5, 100)
    assert kinds(events) == ["OrderAccepted", "TradeExecuted", "OrderCancelled", "BookDelta"]
    cancelled = one(OrderCancelled, events)
    assert (cancelled.reason, cancelled.qty) == (CancelReason.IOC_REMAINDER, 3)
    assert book(engine) == ([], [])


def test_fully_filled_ioc_has_no_cancel(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 5, 100)
    events = ioc(engine, "t", "i1", BUY, 5, 100)
    assert not events_of(OrderCancelled, events)


def test_fok_not_fully_fillable_emits_no_trade_at_all(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 2, 100)
    place(engine, "m", "a2", SELL, 2, 101)
    place(engine, "m", "a3", SELL, 5, 103)
    before = book(engine)
    events = fok(engine, "t", "f1", BUY, 5, 102)
    assert not events_of(TradeExecuted, events)
    cancelled = one(OrderCancelled, events)
    assert (cancelled.reason, cancelled.qty) == (CancelReason.FOK_NOT_FILLED, 5)
    assert book(engine) == before
    assert engine.recent_trades("BTC-USD") == []


def test_fok_exactly_fillable_fills(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 2, 100)
    place(engine, "m", "a2", SELL, 3, 101)
    events = fok(engine, "t", "f1", SELL, 5, 1)  # a sell FOK against no bids: nothing
    assert one(OrderCancelled, events).reason is CancelReason.FOK_NOT_FILLED
    events = fok(engine, "t", "f2", BUY, 5, 101)
    assert fills(events) == [("a1", 100, 2), ("a2", 101, 3)]
    assert book(engine) == ([], [])


def test_fok_ignores_liquidity_beyond_its_limit(engine: Engine) -> None:
    place(engine, "m", "b1", BUY, 2, 100)
    place(engine, "m", "b2", BUY, 10, 90)
    events = fok(engine, "t", "f1", SELL, 3, 95)
    assert not events_of(TradeExecuted, events)
    assert book(engine) == ([(100, 2, 1), (90, 10, 1)], [])


def test_a_filled_maker_leaves_the_book_and_its_open_orders(engine: Engine) -> None:
    maker = order_id(place(engine, "m", "a1", SELL, 1, 100))
    place(engine, "t", "t1", BUY, 1, 100)
    assert engine.open_orders("m") == []
    view = engine.order_status("m", maker)
    assert view is not None
    assert view.status is OrderStatus.FILLED


def test_last_price_follows_trades(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 1, 100)
    place(engine, "m", "a2", SELL, 1, 101)
    place(engine, "t", "t1", BUY, 2, 101)
    depth = engine.depth("BTC-USD")
    assert depth is not None
    assert depth.last_price == 101
