"""Cancel, replace and mass cancel; a trader acts only on its own orders."""

from __future__ import annotations

import pytest

from engine import (
    CancelReason,
    Engine,
    MassCancel,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    RejectReason,
    ReplaceOrder,
    TradeExecuted,
)
from tests.conftest import BUY, SELL, SYMBOL, book, cancel, deltas, events_of, kinds, make_engine, one, order_id, place, place_stop, replace


def makers_hit(engine: Engine, side: object, qty: int, price: int) -> list[str]:
    """Send an aggressor and return the client order ids of the makers it hit, in order."""
    events = place(engine, "taker", f"hit-{engine.seq}", side, qty, price)  # type: ignore[arg-type]
    return [t.maker_client_order_id for t in events_of(TradeExecuted, events)]


# ---------------------------------------------------------------- cancel


def test_cancel_removes_the_order_and_reports_its_remaining_quantity(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", BUY, 5, 100))
    events = cancel(engine, "alice", oid)
    assert kinds(events) == ["OrderCancelled", "BookDelta"]
    cancelled = one(OrderCancelled, events)
    assert (cancelled.order_id, cancelled.reason, cancelled.qty, cancelled.client_order_id) == (oid, CancelReason.USER, 5, "a1")
    assert deltas(events) == [(BUY, 100, 0, 0)]
    assert book(engine) == ([], [])
    assert engine.order_status("alice", oid).status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_cancel_by_client_order_id(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "my-order", SELL, 2, 100))
    events = cancel(engine, "alice", coid="my-order")
    assert one(OrderCancelled, events).order_id == oid


def test_cancel_after_a_partial_fill_cancels_only_the_rest(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", SELL, 5, 100))
    place(engine, "bob", "b1", BUY, 2, 100)
    assert one(OrderCancelled, cancel(engine, "alice", oid)).qty == 3


def test_cancel_keeps_the_other_orders_of_the_level(engine: Engine) -> None:
    place(engine, "alice", "a1", BUY, 5, 100)
    oid = order_id(place(engine, "alice", "a2", BUY, 3, 100))
    place(engine, "alice", "a3", BUY, 1, 100)
    events = cancel(engine, "alice", oid)
    assert deltas(events) == [(BUY, 100, 6, 2)]
    assert makers_hit(engine, SELL, 6, 100) == ["a1", "a3"]


@pytest.mark.parametrize("target", [0, 999, -1])
def test_cancel_of_an_unknown_order_is_rejected(engine: Engine, target: int) -> None:
    place(engine, "alice", "a1", BUY, 5, 100)
    events = cancel(engine, "alice", target)
    rejected = one(OrderRejected, events)
    assert (rejected.reason, rejected.order_id) == (RejectReason.UNKNOWN_ORDER, target)
    assert len(events) == 1
    assert book(engine) == ([(100, 5, 1)], [])


def test_cancel_twice_rejects_the_second(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", BUY, 5, 100))
    cancel(engine, "alice", oid)
    assert one(OrderRejected, cancel(engine, "alice", oid)).reason is RejectReason.UNKNOWN_ORDER


def test_cancel_of_a_filled_order_is_rejected(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", BUY, 1, 100))
    place(engine, "bob", "b1", SELL, 1, 100)
    assert one(OrderRejected, cancel(engine, "alice", oid)).reason is RejectReason.UNKNOWN_ORDER
    assert one(OrderRejected, cancel(engine, "alice", coid="a1")).reason is RejectReason.UNKNOWN_ORDER


def test_cancel_a_pending_stop(engine: Engine) -> None:
    oid = order_id(place_stop(engine, "alice", "s1", BUY, 1, stop=120))
    events = cancel(engine, "alice", oid)
    assert kinds(events) == ["OrderCancelled"]
    assert engine.open_orders("alice") == []
    # The cancelled stop no longer triggers.
    place(engine, "m", "a", SELL, 1, 130)
    place(engine, "m", "b", SELL, 1, 120)
    assert not [t for t in events_of(TradeExecuted, place(engine, "x", "x", BUY, 1, 120)) if t.taker_trader == "alice"]


# ------------------------------------------------------------ ownership


def test_a_trader_cannot_cancel_another_traders_order(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "shared", BUY, 5, 100))
    events = cancel(engine, "mallory", oid)
    assert one(OrderRejected, events).reason is RejectReason.UNKNOWN_ORDER
    assert one(OrderRejected, cancel(engine, "mallory", coid="shared")).reason is RejectReason.UNKNOWN_ORDER
    assert book(engine) == ([(100, 5, 1)], [])
    assert engine.order_status("alice", oid).status is OrderStatus.NEW  # type: ignore[union-attr]


def test_a_trader_cannot_replace_another_traders_order(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", BUY, 5, 100))
    place(engine, "bob", "b1", BUY, 5, 100)
    events = replace(engine, "mallory", oid, new_price=101, new_qty=1)
    assert one(OrderRejected, events).reason is RejectReason.UNKNOWN_ORDER
    assert len(events) == 1
    assert book(engine) == ([(100, 10, 2)], [])
    assert makers_hit(engine, SELL, 5, 100) == ["a1"]  # alice kept her place


def test_a_trader_cannot_see_another_traders_orders(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", BUY, 5, 100))
    done = order_id(place(engine, "alice", "a2", BUY, 1, 90))
    cancel(engine, "alice", done)
    assert engine.order_status("mallory", oid) is None
    assert engine.order_status("mallory", done) is None
    place(engine, "mallory", "m1", BUY, 1, 50)
    assert engine.order_status("mallory", oid) is None
    assert engine.order_status("mallory", done) is None
    assert [v.trader for v in engine.open_orders("mallory")] == ["mallory"]


def test_a_trader_cannot_mass_cancel_another_traders_orders(engine: Engine) -> None:
    place(engine, "alice", "a1", BUY, 5, 100)
    place(engine, "mallory", "m1", BUY, 5, 90)
    events = engine.handle(MassCancel("mallory"))
    assert [c.trader for c in events_of(OrderCancelled, events)] == ["mallory"]
    assert book(engine) == ([(100, 5, 1)], [])


# --------------------------------------------------------------- replace


def test_quantity_decrease_keeps_time_priority(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "first", SELL, 5, 100))
    place(engine, "bob", "second", SELL, 5, 100)
    events = replace(engine, "alice", oid, new_qty=2)
    replaced = one(OrderReplaced, events)
    assert (replaced.priority_kept, replaced.qty, replaced.price) == (True, 2, 100)
    assert deltas(events) == [(SELL, 100, 7, 2)]
    assert makers_hit(engine, BUY, 3, 100) == ["first", "second"]


def test_quantity_increase_loses_time_priority(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "first", SELL, 5, 100))
    place(engine, "bob", "second", SELL, 5, 100)
    replaced = one(OrderReplaced, replace(engine, "alice", oid, new_qty=6))
    assert (replaced.priority_kept, replaced.qty) == (False, 6)
    assert book(engine) == ([], [(100, 11, 2)])
    assert makers_hit(engine, BUY, 6, 100) == ["second", "first"]


def test_price_change_loses_time_priority(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "first", BUY, 5, 100))
    place(engine, "bob", "second", BUY, 5, 101)
    events = replace(engine, "alice", oid, new_price=101)
    assert one(OrderReplaced, events).priority_kept is False
    assert sorted(deltas(events)) == [(BUY, 100, 0, 0), (BUY, 101, 10, 2)]
    assert makers_hit(engine, SELL, 6, 101) == ["second", "first"]


def test_price_change_with_smaller_quantity_still_loses_priority(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "first", BUY, 5, 100))
    place(engine, "bob", "second", BUY, 5, 99)
    replace(engine, "alice", oid, new_price=99, new_qty=1)
    assert book(engine) == ([(99, 6, 2)], [])
    assert makers_hit(engine, SELL, 6, 99) == ["second", "first"]


def test_replace_to_a_crossing_price_trades_at_once(engine: Engine) -> None:
    place(engine, "bob", "ask", SELL, 3, 105)
    oid = order_id(place(engine, "alice", "bid", BUY, 5, 100))
    events = replace(engine, "alice", oid, new_price=106)
    assert kinds(events)[:2] == ["OrderReplaced", "TradeExecuted"]
    trade = one(TradeExecuted, events)
    assert (trade.price, trade.qty, trade.taker_order_id) == (105, 3, oid)
    assert book(engine) == ([(106, 2, 1)], [])
    view = engine.order_status("alice", oid)
    assert view is not None
    assert (view.status, view.filled, view.remaining) == (OrderStatus.PARTIALLY_FILLED, 3, 2)


def test_replace_that_fully_fills_finishes_the_order(engine: Engine) -> None:
    place(engine, "bob", "ask", SELL, 5, 105)
    oid = order_id(place(engine, "alice", "bid", BUY, 5, 100))
    replace(engine, "alice", oid, new_price=105)
    assert engine.order_status("alice", oid).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert engine.open_orders("alice") == []
    assert book(engine) == ([], [])


def test_replace_keeps_the_filled_quantity(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", SELL, 10, 100))
    place(engine, "bob", "b1", BUY, 4, 100)
    replace(engine, "alice", oid, new_price=101, new_qty=8)
    view = engine.order_status("alice", oid)
    assert view is not None
    assert (view.price, view.remaining, view.filled, view.status) == (101, 8, 4, OrderStatus.PARTIALLY_FILLED)


def test_replace_keeps_the_order_id_and_client_order_id(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", SELL, 10, 100))
    replaced = one(OrderReplaced, replace(engine, "alice", oid, new_price=101))
    assert (replaced.order_id, replaced.client_order_id) == (oid, "a1")
    assert one(OrderCancelled, cancel(engine, "alice", coid="a1")).order_id == oid


@pytest.mark.parametrize(("new_price", "new_qty", "reason"), [(-1, 0, RejectReason.INVALID_PRICE), (0, -1, RejectReason.INVALID_QUANTITY)])
def test_replace_with_negative_values_is_rejected(engine: Engine, new_price: int, new_qty: int, reason: RejectReason) -> None:
    oid = order_id(place(engine, "alice", "a1", SELL, 10, 100))
    events = replace(engine, "alice", oid, new_price=new_price, new_qty=new_qty)
    assert one(OrderRejected, events).reason is reason
    assert book(engine) == ([], [(100, 10, 1)])


def test_replace_of_a_pending_stop_is_not_allowed(engine: Engine) -> None:
    oid = order_id(place_stop(engine, "alice", "s1", BUY, 1, stop=120))
    events = replace(engine, "alice", oid, new_qty=2)
    rejected = one(OrderRejected, events)
    assert (rejected.reason, rejected.order_id) == (RejectReason.ORDER_NOT_REPLACEABLE, oid)


def test_replace_by_client_order_id(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "mine", SELL, 10, 100))
    replaced = one(OrderReplaced, engine.handle(ReplaceOrder("alice", 0, new_price=101, client_order_id="mine")))
    assert (replaced.order_id, replaced.price, replaced.client_order_id) == (oid, 101, "mine")
    rejected = one(OrderRejected, engine.handle(ReplaceOrder("mallory", 0, new_price=102, client_order_id="mine")))
    assert rejected.reason is RejectReason.UNKNOWN_ORDER
    assert book(engine) == ([], [(101, 10, 1)])


def test_replace_naming_the_wrong_symbol_is_rejected() -> None:
    engine = make_engine("BTC-USD", "ETH-USD")
    oid = order_id(place(engine, "alice", "a1", SELL, 10, 100, symbol="BTC-USD"))
    events = engine.handle(ReplaceOrder("alice", oid, new_price=101, symbol="ETH-USD"))
    assert one(OrderRejected, events).reason is RejectReason.UNKNOWN_ORDER
    assert one(OrderReplaced, engine.handle(ReplaceOrder("alice", oid, new_price=101, symbol="BTC-USD"))).price == 101


def test_post_only_order_replaced_to_a_crossing_price_never_takes(engine: Engine) -> None:
    # Engine bug: the post-only flag is not kept on the resting order, so a replace
    # to a crossing price trades as taker (here 2 @ 101 against bob's ask).
    place(engine, "bob", "ask", SELL, 5, 101)
    oid = order_id(place(engine, "alice", "maker-only", BUY, 2, 99, post_only=True))
    events = replace(engine, "alice", oid, new_price=101)
    assert events_of(TradeExecuted, events) == [], "a post-only order took liquidity"
    rejected = events_of(OrderRejected, events)
    if rejected:
        assert rejected[0].reason is RejectReason.POST_ONLY_WOULD_TAKE
    assert book(engine)[1] == [(101, 5, 1)]


def test_replace_of_an_unknown_order_is_rejected(engine: Engine) -> None:
    assert one(OrderRejected, replace(engine, "alice", 42, new_qty=1)).reason is RejectReason.UNKNOWN_ORDER


def test_replace_quantity_above_the_instrument_maximum_is_rejected() -> None:
    from engine import AddInstrument, Instrument

    engine = Engine()
    engine.handle(AddInstrument(Instrument.create(SYMBOL, "1", "1", max_qty="10")))
    oid = order_id(place(engine, "alice", "a1", SELL, 10, 100))
    assert one(OrderRejected, replace(engine, "alice", oid, new_qty=11)).reason is RejectReason.QUANTITY_ABOVE_MAX
    assert book(engine) == ([], [(100, 10, 1)])


# ----------------------------------------------------------- mass cancel


def test_mass_cancel_in_one_symbol() -> None:
    engine = make_engine("BTC-USD", "ETH-USD")
    place(engine, "alice", "b1", BUY, 1, 100, symbol="BTC-USD")
    place(engine, "alice", "b2", SELL, 1, 110, symbol="BTC-USD")
    place_stop(engine, "alice", "b3", SELL, 1, stop=90, symbol="BTC-USD")
    place(engine, "alice", "e1", BUY, 1, 10, symbol="ETH-USD")
    place(engine, "bob", "x1", BUY, 1, 99, symbol="BTC-USD")
    events = engine.handle(MassCancel("alice", "BTC-USD"))
    cancelled = events_of(OrderCancelled, events)
    assert [c.client_order_id for c in cancelled] == ["b1", "b2", "b3"]
    assert {c.reason for c in cancelled} == {CancelReason.MASS_CANCEL}
    assert sorted(deltas(events)) == [(BUY, 100, 0, 0), (SELL, 110, 0, 0)]
    assert [v.client_order_id for v in engine.open_orders("alice")] == ["e1"]
    assert book(engine, "BTC-USD") == ([(99, 1, 1)], [])


def test_mass_cancel_in_all_symbols() -> None:
    engine = make_engine("BTC-USD", "ETH-USD")
    place(engine, "alice", "b1", BUY, 1, 100, symbol="BTC-USD")
    place(engine, "alice", "e1", BUY, 1, 10, symbol="ETH-USD")
    events = engine.handle(MassCancel("alice"))
    assert sorted(c.client_order_id for c in events_of(OrderCancelled, events)) == ["b1", "e1"]
    assert engine.open_orders("alice") == []
    assert book(engine, "BTC-USD") == ([], [])
    assert book(engine, "ETH-USD") == ([], [])


def test_mass_cancel_with_nothing_open_changes_nothing(engine: Engine) -> None:
    place(engine, "bob", "x1", BUY, 1, 99)
    before = engine.state_hash()
    assert events_of(OrderCancelled, engine.handle(MassCancel("alice"))) == []
    assert events_of(OrderCancelled, engine.handle(MassCancel("bob", "NOPE"))) == []
    assert book(engine) == ([(99, 1, 1)], [])
    assert engine.state_hash() == before
