"""Order kinds: limit, market, GTC/IOC/FOK, post-only, stop-market and stop-limit."""

from __future__ import annotations

import pytest

from engine import (
    CancelReason,
    Engine,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderStatus,
    OrderType,
    PlaceOrder,
    RejectReason,
    StopTriggered,
    TimeInForce,
    TradeExecuted,
)
from tests.conftest import BUY, SELL, SYMBOL, book, events_of, fok, ioc, kinds, one, order_id, place, place_stop


def trade_at(engine: Engine, price: int, qty: int = 1) -> None:
    """Print one trade at ``price`` between two bystanders, leaving the book as it was."""
    place(engine, "mm1", f"set-{price}-{engine.seq}-s", SELL, qty, price)
    events = place(engine, "mm2", f"set-{price}-{engine.seq}-b", BUY, qty, price)
    assert events_of(TradeExecuted, events)[0].price == price


# ----------------------------------------------------------------- limit


def test_limit_order_rests_when_nothing_to_match(engine: Engine) -> None:
    events = place(engine, "alice", "a1", BUY, 5, 100)
    assert kinds(events) == ["OrderAccepted", "BookDelta"]
    accepted = one(OrderAccepted, events)
    assert (accepted.order_type, accepted.tif, accepted.price, accepted.qty) == (OrderType.LIMIT, TimeInForce.GTC, 100, 5)
    assert book(engine) == ([(100, 5, 1)], [])


def test_gtc_limit_rests_its_remainder_after_a_partial_fill(engine: Engine) -> None:
    place(engine, "bob", "b1", SELL, 3, 100)
    events = place(engine, "alice", "a1", BUY, 5, 101)
    assert one(TradeExecuted, events).qty == 3
    assert not events_of(OrderCancelled, events)
    assert book(engine) == ([(101, 2, 1)], [])


# ---------------------------------------------------------------- market


def test_market_order_sweeps_levels_and_never_rests(engine: Engine) -> None:
    place(engine, "bob", "b1", SELL, 2, 100)
    place(engine, "bob", "b2", SELL, 2, 105)
    events = place(engine, "alice", "a1", BUY, 10)
    assert [(t.price, t.qty) for t in events_of(TradeExecuted, events)] == [(100, 2), (105, 2)]
    cancelled = one(OrderCancelled, events)
    assert (cancelled.reason, cancelled.qty) == (CancelReason.MARKET_REMAINDER, 6)
    assert book(engine) == ([], [])


def test_market_order_on_an_empty_book_is_cancelled_whole(engine: Engine) -> None:
    events = place(engine, "alice", "a1", SELL, 4)
    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    assert one(OrderCancelled, events).reason is CancelReason.MARKET_REMAINDER
    assert one(OrderCancelled, events).qty == 4
    assert book(engine) == ([], [])


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.IOC])
def test_market_remainder_reason_does_not_depend_on_tif(engine: Engine, tif: TimeInForce) -> None:
    place(engine, "bob", "b1", BUY, 1, 100)
    events = place(engine, "alice", "a1", SELL, 3, tif=tif)
    assert one(OrderCancelled, events).reason is CancelReason.MARKET_REMAINDER


def test_market_order_with_a_price_is_invalid(engine: Engine) -> None:
    events = place(engine, "alice", "a1", BUY, 1, 100, order_type=OrderType.MARKET)
    assert one(OrderRejected, events).reason is RejectReason.INVALID_ORDER


# ------------------------------------------------------------ IOC and FOK


def test_ioc_takes_what_it_can_and_cancels_the_rest(engine: Engine) -> None:
    place(engine, "bob", "b1", SELL, 2, 100)
    place(engine, "bob", "b2", SELL, 2, 102)
    events = ioc(engine, "alice", "a1", BUY, 5, 101)
    assert [(t.price, t.qty) for t in events_of(TradeExecuted, events)] == [(100, 2)]
    cancelled = one(OrderCancelled, events)
    assert (cancelled.reason, cancelled.qty) == (CancelReason.IOC_REMAINDER, 3)
    assert book(engine) == ([], [(102, 2, 1)])


def test_ioc_with_nothing_to_take_is_cancelled_and_never_rests(engine: Engine) -> None:
    events = ioc(engine, "alice", "a1", BUY, 5, 100)
    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    assert book(engine) == ([], [])


def test_fok_fills_completely_across_levels(engine: Engine) -> None:
    place(engine, "bob", "b1", SELL, 2, 100)
    place(engine, "bob", "b2", SELL, 3, 101)
    events = fok(engine, "alice", "a1", BUY, 5, 101)
    assert sum(t.qty for t in events_of(TradeExecuted, events)) == 5
    assert not events_of(OrderCancelled, events)


def test_fok_that_cannot_fill_does_nothing(engine: Engine) -> None:
    place(engine, "bob", "b1", SELL, 2, 100)
    place(engine, "bob", "b2", SELL, 3, 102)
    before = book(engine)
    events = fok(engine, "alice", "a1", BUY, 5, 101)
    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    cancelled = one(OrderCancelled, events)
    assert (cancelled.reason, cancelled.qty) == (CancelReason.FOK_NOT_FILLED, 5)
    assert book(engine) == before


def test_market_fok(engine: Engine) -> None:
    place(engine, "bob", "b1", SELL, 2, 100)
    events = place(engine, "alice", "a1", BUY, 3, tif=TimeInForce.FOK)
    assert not events_of(TradeExecuted, events)
    assert one(OrderCancelled, events).reason is CancelReason.FOK_NOT_FILLED
    events = place(engine, "alice", "a2", BUY, 2, tif=TimeInForce.FOK)
    assert one(TradeExecuted, events).qty == 2


# -------------------------------------------------------------- post-only


def test_post_only_rests_when_it_would_not_take(engine: Engine) -> None:
    place(engine, "bob", "b1", SELL, 1, 101)
    events = place(engine, "alice", "a1", BUY, 1, 100, post_only=True)
    assert kinds(events) == ["OrderAccepted", "BookDelta"]
    assert book(engine) == ([(100, 1, 1)], [(101, 1, 1)])


@pytest.mark.parametrize(("side", "price"), [(BUY, 101), (BUY, 105), (SELL, 99), (SELL, 90)])
def test_post_only_that_would_take_is_rejected(engine: Engine, side: object, price: int) -> None:
    place(engine, "bob", "b1", SELL, 1, 101)
    place(engine, "bob", "b2", BUY, 1, 99)
    before = book(engine)
    events = engine.handle(PlaceOrder("alice", "a1", SYMBOL, side, 1, price, post_only=True))  # type: ignore[arg-type]
    rejected = one(OrderRejected, events)
    assert rejected.reason is RejectReason.POST_ONLY_WOULD_TAKE
    assert rejected.message
    assert len(events) == 1
    assert book(engine) == before


@pytest.mark.parametrize(
    "kw",
    [
        {"tif": TimeInForce.IOC},
        {"tif": TimeInForce.FOK},
        {"order_type": OrderType.MARKET, "price": 0},
        {"order_type": OrderType.STOP_LIMIT, "stop_price": 90},
    ],
)
def test_post_only_needs_a_gtc_limit(engine: Engine, kw: dict[str, object]) -> None:
    args: dict[str, object] = {"price": 100, "post_only": True}
    args.update(kw)
    events = engine.handle(PlaceOrder("alice", "a1", SYMBOL, BUY, 1, **args))  # type: ignore[arg-type]
    assert one(OrderRejected, events).reason is RejectReason.INVALID_ORDER


# ----------------------------------------------------------------- stops


def test_stop_orders_wait_without_touching_the_book(engine: Engine) -> None:
    events = place_stop(engine, "alice", "s1", BUY, 1, stop=110)
    assert kinds(events) == ["OrderAccepted"]
    accepted = one(OrderAccepted, events)
    assert (accepted.order_type, accepted.stop_price) == (OrderType.STOP_MARKET, 110)
    view = engine.order_status("alice", accepted.order_id)
    assert view is not None
    assert view.status is OrderStatus.PENDING_TRIGGER
    assert book(engine) == ([], [])


def test_stop_never_triggers_before_the_first_trade(engine: Engine) -> None:
    place_stop(engine, "alice", "s1", SELL, 1, stop=1_000_000)
    place_stop(engine, "alice", "s2", BUY, 1, stop=1)
    assert len(engine.open_orders("alice")) == 2


def test_buy_stop_triggers_when_last_trade_reaches_the_stop(engine: Engine) -> None:
    place(engine, "mm", "ask", SELL, 5, 120)
    stop_id = order_id(place_stop(engine, "alice", "s1", BUY, 2, stop=110))
    trade_at(engine, 109)
    assert engine.order_status("alice", stop_id).status is OrderStatus.PENDING_TRIGGER  # type: ignore[union-attr]
    place(engine, "x", "x1", SELL, 1, 110)
    events = place(engine, "y", "y1", BUY, 1, 110)
    triggered = one(StopTriggered, events)
    assert (triggered.order_id, triggered.stop_price, triggered.last_price) == (stop_id, 110, 110)
    fills = [t for t in events_of(TradeExecuted, events) if t.taker_order_id == stop_id]
    assert [(t.price, t.qty) for t in fills] == [(120, 2)]
    assert engine.order_status("alice", stop_id).status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_buy_stop_triggers_on_a_trade_above_the_stop(engine: Engine) -> None:
    place(engine, "mm", "ask", SELL, 5, 130)
    stop_id = order_id(place_stop(engine, "alice", "s1", BUY, 1, stop=110))
    place(engine, "x", "x1", SELL, 1, 115)
    events = place(engine, "y", "y1", BUY, 1, 115)
    assert one(StopTriggered, events).order_id == stop_id


def test_sell_stop_triggers_when_last_trade_falls_to_the_stop(engine: Engine) -> None:
    place(engine, "mm", "bid", BUY, 5, 80)
    stop_id = order_id(place_stop(engine, "alice", "s1", SELL, 2, stop=90))
    trade_at(engine, 91)
    assert not events_of(StopTriggered, place(engine, "x", "noop", BUY, 1, 50))
    place(engine, "x", "x1", BUY, 1, 90)
    events = place(engine, "y", "y1", SELL, 1, 90)
    assert one(StopTriggered, events).order_id == stop_id
    fills = [t for t in events_of(TradeExecuted, events) if t.taker_order_id == stop_id]
    assert [(t.price, t.qty) for t in fills] == [(80, 2)]


def test_stop_limit_rests_at_its_limit_once_triggered(engine: Engine) -> None:
    place(engine, "mm", "ask", SELL, 1, 112)
    stop_id = order_id(place_stop(engine, "alice", "s1", BUY, 3, stop=110, price=111))
    trade_at(engine, 110)
    view = engine.order_status("alice", stop_id)
    assert view is not None
    assert (view.status, view.order_type, view.price, view.remaining) == (OrderStatus.NEW, OrderType.LIMIT, 111, 3)
    assert book(engine)[0] == [(111, 3, 1)]


def test_stop_limit_without_a_limit_price_is_invalid(engine: Engine) -> None:
    events = engine.handle(PlaceOrder("a", "s", SYMBOL, BUY, 1, 0, order_type=OrderType.STOP_LIMIT, stop_price=100))
    assert one(OrderRejected, events).reason is RejectReason.INVALID_PRICE


@pytest.mark.parametrize("order_type", [OrderType.STOP_MARKET, OrderType.STOP_LIMIT])
def test_stop_without_a_stop_price_is_invalid(engine: Engine, order_type: OrderType) -> None:
    price = 100 if order_type is OrderType.STOP_LIMIT else 0
    events = engine.handle(PlaceOrder("a", "s", SYMBOL, BUY, 1, price, order_type=order_type))
    assert one(OrderRejected, events).reason is RejectReason.INVALID_ORDER


def test_stop_price_on_a_plain_order_is_invalid(engine: Engine) -> None:
    events = engine.handle(PlaceOrder("a", "s", SYMBOL, BUY, 1, 100, stop_price=90))
    assert one(OrderRejected, events).reason is RejectReason.INVALID_ORDER


@pytest.mark.parametrize(("side", "stop"), [(BUY, 100), (BUY, 95), (SELL, 100), (SELL, 105)])
def test_stop_triggers_at_once_when_last_price_already_reached(engine: Engine, side: object, stop: int) -> None:
    trade_at(engine, 100)
    place(engine, "mm", "bid", BUY, 5, 90)
    place(engine, "mm", "ask", SELL, 5, 110)
    events = engine.handle(PlaceOrder("alice", "s1", SYMBOL, side, 1, 0, order_type=OrderType.STOP_MARKET, stop_price=stop))  # type: ignore[arg-type]
    assert kinds(events)[:3] == ["OrderAccepted", "StopTriggered", "TradeExecuted"]
    assert one(StopTriggered, events).last_price == 100
    assert one(TradeExecuted, events).price == (110 if side is BUY else 90)


def test_triggered_stop_market_with_no_liquidity_is_cancelled(engine: Engine) -> None:
    trade_at(engine, 100)
    events = place_stop(engine, "alice", "s1", SELL, 2, stop=100)
    assert kinds(events) == ["OrderAccepted", "StopTriggered", "OrderCancelled"]
    assert one(OrderCancelled, events).reason is CancelReason.MARKET_REMAINDER


def test_stop_cascade_one_stop_triggers_the_next(engine: Engine) -> None:
    # Asks at 101, 102, 103. Stop A (buy, stop 101) lifts 102; that trade triggers stop B (stop 102) which lifts 103.
    place(engine, "mm", "a101", SELL, 1, 101)
    place(engine, "mm", "a102", SELL, 1, 102)
    place(engine, "mm", "a103", SELL, 1, 103)
    stop_a = order_id(place_stop(engine, "alice", "sa", BUY, 1, stop=101))
    stop_b = order_id(place_stop(engine, "bob", "sb", BUY, 1, stop=102))
    stop_c = order_id(place_stop(engine, "carol", "sc", BUY, 1, stop=104))
    events = place(engine, "dave", "d1", BUY, 1, 101)
    assert [t.order_id for t in events_of(StopTriggered, events)] == [stop_a, stop_b]
    assert [(t.taker_order_id, t.price) for t in events_of(TradeExecuted, events)][1:] == [(stop_a, 102), (stop_b, 103)]
    assert engine.order_status("carol", stop_c).status is OrderStatus.PENDING_TRIGGER  # type: ignore[union-attr]
    assert book(engine) == ([], [])


def test_stops_triggered_by_one_trade_run_in_order_id_order(engine: Engine) -> None:
    # The second stop has the lower stop price but the higher order id: it runs second.
    place(engine, "mm", "ask", SELL, 10, 120)
    first = order_id(place_stop(engine, "alice", "s1", BUY, 1, stop=105))
    second = order_id(place_stop(engine, "bob", "s2", BUY, 1, stop=100))
    place(engine, "x", "x1", SELL, 1, 105)
    events = place(engine, "y", "y1", BUY, 1, 105)
    stop_fills = [t.taker_order_id for t in events_of(TradeExecuted, events)][1:]
    assert stop_fills == [first, second]
    assert [t.maker_remaining for t in events_of(TradeExecuted, events)][1:] == [9, 8]


def test_stop_triggered_reports_a_last_price_that_reached_the_stop(engine: Engine) -> None:
    # Engine bug: stops triggered by the same trade fire one after the other, and each
    # StopTriggered reports the last price *after* the earlier stops traded. Here the buy
    # stop at 100 is reported as triggered at 95, which a buy stop never is.
    place(engine, "mm", "bid95", BUY, 5, 95)
    place(engine, "mm", "ask110", SELL, 5, 110)
    place_stop(engine, "s", "sell-stop", SELL, 1, stop=100)
    place_stop(engine, "b", "buy-stop", BUY, 1, stop=100)
    place(engine, "x", "x1", SELL, 1, 100)
    events = place(engine, "y", "y1", BUY, 1, 100)
    triggered = events_of(StopTriggered, events)
    assert [t.client_order_id for t in triggered] == ["sell-stop", "buy-stop"]
    assert [t.last_price for t in triggered] == [100, 100]


def test_stop_trigger_order_is_visible_in_events(engine: Engine) -> None:
    place(engine, "mm", "ask", SELL, 10, 120)
    place(engine, "mm", "bid", BUY, 10, 50)
    first = order_id(place_stop(engine, "alice", "s1", BUY, 1, stop=105))
    second = order_id(place_stop(engine, "bob", "s2", BUY, 1, stop=100))
    third = order_id(place_stop(engine, "carol", "s3", SELL, 1, stop=110))
    place(engine, "x", "x1", SELL, 1, 105)
    events = place(engine, "y", "y1", BUY, 1, 105)
    assert [t.order_id for t in events_of(StopTriggered, events)] == [first, second, third]


# -------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (PlaceOrder("a", "c", "NOPE", BUY, 1, 100), RejectReason.UNKNOWN_SYMBOL),
        (PlaceOrder("a", "c", SYMBOL, BUY, 0, 100), RejectReason.INVALID_QUANTITY),
        (PlaceOrder("a", "c", SYMBOL, BUY, -3, 100), RejectReason.INVALID_QUANTITY),
        (PlaceOrder("a", "c", SYMBOL, BUY, 1, 0), RejectReason.INVALID_PRICE),
        (PlaceOrder("a", "c", SYMBOL, BUY, 1, -1), RejectReason.INVALID_PRICE),
        (PlaceOrder("", "c", SYMBOL, BUY, 1, 100), RejectReason.INVALID_ORDER),
        (PlaceOrder("a", "c" * 65, SYMBOL, BUY, 1, 100), RejectReason.INVALID_ORDER),
    ],
)
def test_malformed_orders_are_rejected_with_a_reason(engine: Engine, cmd: PlaceOrder, reason: RejectReason) -> None:
    events = engine.handle(cmd)
    assert len(events) == 1
    rejected = one(OrderRejected, events)
    assert rejected.reason is reason
    assert rejected.message
    assert book(engine) == ([], [])


def test_quantity_outside_the_instrument_bounds_is_rejected() -> None:
    from engine import AddInstrument, Instrument

    engine = Engine()
    engine.handle(AddInstrument(Instrument.create("ETH-USD", "1", "1", min_qty="5", max_qty="10")))
    below = engine.handle(PlaceOrder("a", "c1", "ETH-USD", BUY, 4, 100))
    above = engine.handle(PlaceOrder("a", "c2", "ETH-USD", BUY, 11, 100))
    assert one(OrderRejected, below).reason is RejectReason.QUANTITY_BELOW_MIN
    assert one(OrderRejected, above).reason is RejectReason.QUANTITY_ABOVE_MAX
    assert events_of(OrderAccepted, engine.handle(PlaceOrder("a", "c3", "ETH-USD", BUY, 10, 100)))
