"""The de-duplication window: client order ids and request ids are remembered for a bounded count of finished entries.

What a trader notices: a resend inside the window is refused (a place) or answered with the first answer (a cancel,
replace or mass cancel carrying a request id) and changes nothing; once the entry has left the window the id is free
again; and the engine holds no more than its open orders plus the window, whatever the order flow.
"""

from __future__ import annotations

from engine import (
    CancelOrder,
    Engine,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    RejectReason,
    ReplaceOrder,
    restore,
    snapshot,
    state_hash,
)
from tests.conftest import BUY, SELL, book, ioc, make_engine, one, order_id, place


def test_a_finished_client_id_is_refused_inside_the_window_and_free_after_it() -> None:
    engine = make_engine(dedup_window=3)
    first = order_id(place(engine, "alice", "c1", BUY, 5, 100))
    engine.handle(CancelOrder("alice", first))
    refused = one(OrderRejected, place(engine, "alice", "c1", BUY, 5, 100))
    assert refused.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    assert refused.order_id == first
    for i in range(3):  # three more finished orders push c1 out of a window of 3
        ioc(engine, "alice", f"x{i}", BUY, 1, 100)
    again = one(OrderAccepted, place(engine, "alice", "c1", BUY, 5, 100))
    assert again.order_id != first
    assert book(engine) == ([(100, 5, 1)], [])


def test_an_open_orders_client_id_stays_held_however_many_orders_finish() -> None:
    engine = make_engine(dedup_window=2)
    resting = order_id(place(engine, "alice", "keep", BUY, 5, 90))
    for i in range(10):
        ioc(engine, "alice", f"x{i}", BUY, 1, 100)
    assert one(OrderRejected, place(engine, "alice", "keep", BUY, 1, 90)).order_id == resting
    cancelled = one(OrderCancelled, engine.handle(CancelOrder("alice", 0, "keep")))  # and a cancel may still name it
    assert cancelled.order_id == resting


def test_memory_is_the_open_orders_plus_the_window_under_a_steady_flow() -> None:
    engine = make_engine(dedup_window=100)
    for i in range(5_000):
        place(engine, "maker", f"m{i}", SELL, 1, 100)
        ioc(engine, "taker", f"t{i}", BUY, 1, 100)
        if i % 50 == 0:
            place(engine, "rest", f"r{i}", BUY, 1, 50)  # 100 resting orders by the end
    held = sum(len(account.client_ids) for account in engine.accounts.values())
    assert held == 100 + 100  # the resting orders' ids and the window, not the 10,100 ids ever used
    assert len(engine.recent) == 100


def test_a_retried_cancel_is_answered_with_its_first_answer_and_applied_once() -> None:
    engine = make_engine()
    oid = order_id(place(engine, "alice", "c1", BUY, 5, 100))
    first = engine.handle(CancelOrder("alice", oid, request_id=7))
    seq = engine.seq
    retry = engine.handle(CancelOrder("alice", oid, request_id=7))
    assert retry == first
    assert engine.repeated_from >= 0
    assert engine.seq == seq  # no new event
    other = engine.handle(CancelOrder("bob", oid, request_id=7))  # request ids are per trader
    assert one(OrderRejected, other).reason is RejectReason.UNKNOWN_ORDER
    assert engine.repeated_from == -1


def test_a_retried_replace_and_mass_cancel_are_not_applied_again() -> None:
    engine = make_engine()
    oid = order_id(place(engine, "alice", "c1", BUY, 5, 100))
    replaced = engine.handle(ReplaceOrder("alice", oid, new_price=101, request_id=1))
    assert one(OrderReplaced, replaced).price == 101
    place(engine, "alice", "c2", BUY, 3, 99)
    swept = engine.handle(MassCancel("alice", request_id=2))
    assert len([e for e in swept if isinstance(e, OrderCancelled)]) == 2
    place(engine, "alice", "c3", BUY, 4, 98)  # placed after the mass cancel: its retry must not touch it
    assert engine.handle(ReplaceOrder("alice", oid, new_price=101, request_id=1)) == replaced
    assert engine.handle(MassCancel("alice", request_id=2)) == swept
    assert book(engine) == ([(98, 4, 1)], [])


def test_a_request_id_outside_the_window_is_a_new_command() -> None:
    engine = make_engine(dedup_window=2)
    place(engine, "alice", "c1", BUY, 5, 100)
    engine.handle(MassCancel("alice", request_id=9))
    ioc(engine, "alice", "x1", BUY, 1, 100)
    ioc(engine, "alice", "x2", BUY, 1, 100)  # the mass cancel's entry has left a window of 2
    place(engine, "alice", "c2", BUY, 5, 100)
    again = engine.handle(MassCancel("alice", request_id=9))
    assert engine.repeated_from == -1
    assert one(OrderCancelled, again).client_order_id == "c2"
    assert book(engine) == ([], [])


def test_the_window_survives_a_snapshot_and_replays_to_the_same_state_hash() -> None:
    def run(engine: Engine, part: int) -> None:
        for i in range(part * 20, part * 20 + 20):
            oid = order_id(place(engine, "alice", f"c{i}", BUY, 1 + i % 3, 90 + i % 5))
            engine.handle(CancelOrder("alice", oid, request_id=1000 + i))
            ioc(engine, "bob", f"b{i}", SELL, 1, 80)

    straight = make_engine(dedup_window=25)
    run(straight, 0)
    run(straight, 1)
    halfway = make_engine(dedup_window=25)
    run(halfway, 0)
    restored = restore(snapshot(halfway))
    assert state_hash(restored) == state_hash(halfway)
    retry = restored.handle(CancelOrder("alice", 0, request_id=1019))
    assert restored.repeated_from >= 0 and one(OrderCancelled, retry).client_order_id == "c19"
    run(restored, 1)
    assert state_hash(restored) == state_hash(straight)


def test_a_version_1_snapshot_puts_its_finished_client_ids_into_the_window() -> None:
    engine = make_engine(dedup_window=2)
    place(engine, "alice", "open", BUY, 1, 90)
    for i in range(4):
        ioc(engine, "alice", f"x{i}", BUY, 1, 100)
    old = snapshot(engine)
    old["version"] = 1
    del old["dedup"]
    old["client_ids"]["alice"] = [["open", 1], *[[f"x{i}", 2 + i] for i in range(4)]]  # v1 kept every id ever used
    loaded = restore(old)  # with the default window (a version 1 snapshot names none)
    assert [entry[1] for entry in loaded.recent] == ["x0", "x1", "x2", "x3"]  # oldest first, the open order's id not
    for i in range(loaded.dedup_window):
        ioc(loaded, "bob", f"y{i}", BUY, 1, 100)
    assert sorted(loaded.accounts["alice"].client_ids) == ["open"]  # they left the window like any others
