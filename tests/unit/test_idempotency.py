"""Idempotency: a client order id is unique per trader; a resend is rejected and changes nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Engine, OrderAccepted, OrderRejected, RejectReason, TimeInForce, snapshot
from tests.conftest import BUY, SELL, book, cancel, make_engine, one, order_id, place, place_stop


def state_without_seq(engine: Engine) -> dict[str, Any]:
    state = dict(snapshot(engine))
    del state["seq"]
    return state


def assert_duplicate_is_a_pure_reject(engine: Engine, resend: Any, original_id: int) -> None:
    before = state_without_seq(engine)
    seq = engine.seq
    events = resend()
    assert len(events) == 1
    rejected = one(OrderRejected, events)
    assert rejected.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    assert rejected.order_id == original_id
    assert rejected.message
    assert rejected.seq == seq + 1
    assert engine.seq == seq + 1
    assert state_without_seq(engine) == before


def test_resent_resting_order_is_rejected_without_effect(engine: Engine) -> None:
    original = order_id(place(engine, "alice", "c1", BUY, 5, 100))
    assert_duplicate_is_a_pure_reject(engine, lambda: place(engine, "alice", "c1", BUY, 5, 100), original)
    assert book(engine) == ([(100, 5, 1)], [])


def test_duplicate_with_different_fields_is_still_a_duplicate(engine: Engine) -> None:
    place(engine, "bob", "b1", BUY, 5, 100)
    original = order_id(place(engine, "alice", "c1", BUY, 5, 90))
    # A crossing resend would trade if it were accepted.
    assert_duplicate_is_a_pure_reject(engine, lambda: place(engine, "alice", "c1", SELL, 7, 100), original)


def test_client_order_id_stays_used_after_the_order_is_done(engine: Engine) -> None:
    filled = order_id(place(engine, "alice", "filled", SELL, 1, 100))
    place(engine, "bob", "b1", BUY, 1, 100)
    cancelled = order_id(place(engine, "alice", "cancelled", SELL, 1, 100))
    cancel(engine, "alice", cancelled)
    ioc_done = order_id(place(engine, "alice", "ioc", SELL, 1, 100, tif=TimeInForce.IOC))
    assert_duplicate_is_a_pure_reject(engine, lambda: place(engine, "alice", "filled", SELL, 1, 100), filled)
    assert_duplicate_is_a_pure_reject(engine, lambda: place(engine, "alice", "cancelled", SELL, 1, 100), cancelled)
    assert_duplicate_is_a_pure_reject(engine, lambda: place(engine, "alice", "ioc", SELL, 1, 100), ioc_done)


def test_duplicate_of_a_stop_order(engine: Engine) -> None:
    original = order_id(place_stop(engine, "alice", "s1", BUY, 1, stop=120))
    assert_duplicate_is_a_pure_reject(engine, lambda: place_stop(engine, "alice", "s1", BUY, 1, stop=120), original)
    assert len(engine.open_orders("alice")) == 1


def test_duplicate_across_symbols_is_still_a_duplicate() -> None:
    engine = make_engine("BTC-USD", "ETH-USD")
    original = order_id(place(engine, "alice", "c1", BUY, 1, 100, symbol="BTC-USD"))
    assert_duplicate_is_a_pure_reject(engine, lambda: place(engine, "alice", "c1", BUY, 1, 100, symbol="ETH-USD"), original)
    assert book(engine, "ETH-USD") == ([], [])


def test_same_client_order_id_from_another_trader_is_fine(engine: Engine) -> None:
    first = order_id(place(engine, "alice", "c1", BUY, 5, 100))
    second = order_id(place(engine, "bob", "c1", BUY, 3, 100))
    assert second == first + 1
    assert book(engine) == ([(100, 8, 2)], [])
    assert one(OrderAccepted, place(engine, "carol", "c1", SELL, 1, 200)).client_order_id == "c1"


def test_a_rejected_order_does_not_use_up_its_client_order_id(engine: Engine) -> None:
    assert one(OrderRejected, place(engine, "alice", "c1", BUY, 0, 100)).reason is RejectReason.INVALID_QUANTITY
    assert one(OrderAccepted, place(engine, "alice", "c1", BUY, 1, 100)).client_order_id == "c1"


def test_orders_without_a_client_order_id_are_never_duplicates(engine: Engine) -> None:
    place(engine, "alice", "", BUY, 1, 100)
    place(engine, "alice", "", BUY, 1, 100)
    assert book(engine) == ([(100, 2, 2)], [])


def test_order_ids_increase_by_one_across_traders_and_symbols() -> None:
    engine = make_engine("BTC-USD", "ETH-USD")
    ids = []
    for i in range(6):
        symbol = "BTC-USD" if i % 2 else "ETH-USD"
        ids.append(order_id(place(engine, f"t{i % 3}", f"c{i}", BUY if i % 2 else SELL, 1, 100 + i, symbol=symbol)))
        place(engine, "t0", "c0", BUY, 1, 1)  # a duplicate in between consumes no order id
        place(engine, "t0", "x", BUY, 0, 1)  # nor does an invalid order
    assert ids == list(range(ids[0], ids[0] + 6))
    assert ids[0] == 1


@pytest.mark.parametrize("resends", [1, 5])
def test_many_resends_each_reject_and_the_book_holds_one_order(engine: Engine, resends: int) -> None:
    place(engine, "alice", "c1", BUY, 5, 100)
    for _ in range(resends):
        assert one(OrderRejected, place(engine, "alice", "c1", BUY, 5, 100)).reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    assert book(engine) == ([(100, 5, 1)], [])
    assert len(engine.open_orders("alice")) == 1
