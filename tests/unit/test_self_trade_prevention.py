"""Self-trade prevention: the incoming order's mode decides what happens when it meets its own trader."""

from __future__ import annotations

from collections.abc import Sequence

from engine import CancelReason, Engine, OrderCancelled, OrderStatus, SelfTradePrevention, TradeExecuted
from tests.conftest import BUY, SELL, book, events_of, fok, kinds, one, order_id, place, place_stop, replace

NEWEST = SelfTradePrevention.CANCEL_NEWEST
OLDEST = SelfTradePrevention.CANCEL_OLDEST
BOTH = SelfTradePrevention.CANCEL_BOTH
DECREMENT = SelfTradePrevention.DECREMENT


def seed(engine: Engine) -> dict[str, int]:
    """Asks: bob 2@99; alice 5@100 then carol 4@100. Returns order ids by client order id."""
    return {
        "bob-ask": order_id(place(engine, "bob", "bob-ask", SELL, 2, 99)),
        "alice-ask": order_id(place(engine, "alice", "alice-ask", SELL, 5, 100)),
        "carol-ask": order_id(place(engine, "carol", "carol-ask", SELL, 4, 100)),
    }


def trades(events: Sequence[object]) -> list[tuple[str, int, int]]:
    return [(t.maker_trader, t.price, t.qty) for t in events_of(TradeExecuted, events)]


def cancels(events: Sequence[object]) -> list[tuple[str, CancelReason, int, int]]:
    return [(c.client_order_id, c.reason, c.qty, c.remaining) for c in events_of(OrderCancelled, events)]


def test_cancel_newest_is_the_default_and_cancels_the_incoming_remainder(engine: Engine) -> None:
    ids = seed(engine)
    events = place(engine, "alice", "alice-bid", BUY, 10, 101)
    assert trades(events) == [("bob", 99, 2)]
    assert cancels(events) == [("alice-bid", CancelReason.SELF_TRADE, 8, 0)]
    assert book(engine) == ([], [(100, 9, 2)])
    assert engine.order_status("alice", ids["alice-ask"]).status is OrderStatus.NEW  # type: ignore[union-attr]
    assert engine.order_status("alice", order_id(events)).status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_cancel_newest_with_own_order_at_the_front_trades_nothing(engine: Engine) -> None:
    place(engine, "alice", "alice-ask", SELL, 5, 100)
    place(engine, "carol", "carol-ask", SELL, 4, 100)
    events = place(engine, "alice", "alice-bid", BUY, 3, 100, stp=NEWEST)
    assert trades(events) == []
    assert cancels(events) == [("alice-bid", CancelReason.SELF_TRADE, 3, 0)]
    assert book(engine) == ([], [(100, 9, 2)])


def test_cancel_oldest_cancels_the_resting_order_and_keeps_matching(engine: Engine) -> None:
    ids = seed(engine)
    events = place(engine, "alice", "alice-bid", BUY, 10, 101, stp=OLDEST)
    assert trades(events) == [("bob", 99, 2), ("carol", 100, 4)]
    assert cancels(events) == [("alice-ask", CancelReason.SELF_TRADE, 5, 0)]
    assert book(engine) == ([(101, 4, 1)], [])
    assert engine.order_status("alice", ids["alice-ask"]).status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_cancel_both_cancels_the_resting_order_and_the_incoming_remainder(engine: Engine) -> None:
    seed(engine)
    events = place(engine, "alice", "alice-bid", BUY, 10, 101, stp=BOTH)
    assert trades(events) == [("bob", 99, 2)]
    assert cancels(events) == [("alice-ask", CancelReason.SELF_TRADE, 5, 0), ("alice-bid", CancelReason.SELF_TRADE, 8, 0)]
    assert book(engine) == ([], [(100, 4, 1)])
    assert engine.open_orders("alice") == []


def test_decrement_reduces_both_by_the_smaller_quantity_without_a_trade(engine: Engine) -> None:
    ids = seed(engine)
    place(engine, "dave", "dave-take", BUY, 2, 99)  # clear bob's ask so alice's is at the front
    events = place(engine, "alice", "alice-bid", BUY, 3, 101, stp=DECREMENT)
    assert trades(events) == []
    assert cancels(events) == [("alice-ask", CancelReason.SELF_TRADE, 3, 2), ("alice-bid", CancelReason.SELF_TRADE, 3, 0)]
    assert book(engine) == ([], [(100, 6, 2)])
    resting = engine.order_status("alice", ids["alice-ask"])
    assert resting is not None
    assert (resting.status, resting.remaining, resting.filled) == (OrderStatus.NEW, 2, 0)
    assert engine.order_status("alice", order_id(events)).status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_decrement_larger_incoming_removes_the_resting_order_and_trades_on(engine: Engine) -> None:
    ids = seed(engine)
    events = place(engine, "alice", "alice-bid", BUY, 10, 101, stp=DECREMENT)
    assert trades(events) == [("bob", 99, 2), ("carol", 100, 3)]
    assert cancels(events) == [("alice-ask", CancelReason.SELF_TRADE, 5, 0), ("alice-bid", CancelReason.SELF_TRADE, 5, 3)]
    assert book(engine) == ([], [(100, 1, 1)])
    assert engine.order_status("alice", ids["alice-ask"]).status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    taker = engine.order_status("alice", order_id(events))
    assert taker is not None
    assert (taker.status, taker.filled, taker.remaining) == (OrderStatus.FILLED, 5, 0)


def test_decrement_remainder_rests_when_nothing_else_crosses(engine: Engine) -> None:
    place(engine, "alice", "alice-ask", SELL, 2, 100)
    events = place(engine, "alice", "alice-bid", BUY, 5, 100, stp=DECREMENT)
    assert cancels(events) == [("alice-ask", CancelReason.SELF_TRADE, 2, 0), ("alice-bid", CancelReason.SELF_TRADE, 2, 3)]
    assert book(engine) == ([(100, 3, 1)], [])


def test_stp_mode_is_the_incoming_orders_not_the_resting_ones(engine: Engine) -> None:
    place(engine, "alice", "alice-ask", SELL, 5, 100, stp=DECREMENT)
    events = place(engine, "alice", "alice-bid", BUY, 5, 100, stp=OLDEST)
    assert cancels(events) == [("alice-ask", CancelReason.SELF_TRADE, 5, 0)]
    assert book(engine) == ([(100, 5, 1)], [])


def test_orders_of_different_traders_trade_normally(engine: Engine) -> None:
    place(engine, "alice", "alice-ask", SELL, 5, 100)
    events = place(engine, "bob", "bob-bid", BUY, 5, 100, stp=BOTH)
    assert trades(events) == [("alice", 100, 5)]
    assert cancels(events) == []


def test_market_order_meeting_itself(engine: Engine) -> None:
    place(engine, "alice", "alice-bid", BUY, 5, 100)
    events = place(engine, "alice", "alice-mkt", SELL, 3)
    assert cancels(events) == [("alice-mkt", CancelReason.SELF_TRADE, 3, 0)]
    assert book(engine) == ([(100, 5, 1)], [])


def test_fok_blocked_by_own_order_does_nothing(engine: Engine) -> None:
    seed(engine)
    events = fok(engine, "alice", "alice-fok", BUY, 5, 100)
    assert kinds(events) == ["OrderAccepted", "OrderCancelled"]
    assert one(OrderCancelled, events).reason is CancelReason.FOK_NOT_FILLED
    assert book(engine) == ([], [(99, 2, 1), (100, 9, 2)])


def test_fok_with_cancel_oldest_fills_around_own_order(engine: Engine) -> None:
    seed(engine)
    events = fok(engine, "alice", "alice-fok", BUY, 6, 100, stp=OLDEST)
    assert trades(events) == [("bob", 99, 2), ("carol", 100, 4)]
    assert cancels(events) == [("alice-ask", CancelReason.SELF_TRADE, 5, 0)]


def test_fok_with_cancel_oldest_that_cannot_fill_leaves_own_order_alone(engine: Engine) -> None:
    seed(engine)
    events = fok(engine, "alice", "alice-fok", BUY, 7, 100, stp=OLDEST)
    assert trades(events) == []
    assert cancels(events) == [("alice-fok", CancelReason.FOK_NOT_FILLED, 7, 0)]
    assert book(engine) == ([], [(99, 2, 1), (100, 9, 2)])


def test_replace_into_own_order_applies_the_orders_stp(engine: Engine) -> None:
    place(engine, "alice", "alice-ask", SELL, 5, 100)
    oid = order_id(place(engine, "alice", "alice-bid", BUY, 5, 90))
    events = replace(engine, "alice", oid, new_price=100)
    assert cancels(events) == [("alice-bid", CancelReason.SELF_TRADE, 5, 0)]
    assert book(engine) == ([], [(100, 5, 1)])
    assert engine.order_status("alice", oid).status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_triggered_stop_meeting_own_order(engine: Engine) -> None:
    place(engine, "alice", "alice-ask", SELL, 5, 120)
    place_stop(engine, "alice", "alice-stop", BUY, 2, stop=110)
    place(engine, "x", "x1", SELL, 1, 110)
    events = place(engine, "y", "y1", BUY, 1, 110)
    assert cancels(events) == [("alice-stop", CancelReason.SELF_TRADE, 2, 0)]
    assert book(engine) == ([], [(120, 5, 1)])
