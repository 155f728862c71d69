"""Finding orders by id over long runs: open orders, the bounded finished-order history, client ids.

The engine keeps open orders in a list indexed by order id and finished ones in
a window with a lazily built index; both drop what they no longer need in
batches of a thousand or more, so these tests run past several batches.
"""

from __future__ import annotations

from engine import Engine, OrderRejected, OrderStatus
from tests.conftest import BUY, SELL, cancel, make_engine, one, order_id, place


def test_finished_orders_stay_findable_for_exactly_the_history_length() -> None:
    engine = make_engine(terminal_history=50)
    ids = [order_id(place(engine, "t", f"c{i}", BUY, 1, 90)) for i in range(3000)]
    for n, oid in enumerate(ids, 1):
        cancel(engine, "t", oid)
        if n % 97 == 0:  # query now and then: the index catches up and forgets evicted orders
            for recent in ids[n - 50 : n]:
                view = engine.order_status("t", recent)
                assert view is not None
                assert view.status is OrderStatus.CANCELLED
            assert engine.order_status("t", ids[n - 51]) is None
    assert [engine.order_status("t", oid) is not None for oid in ids[-51:]] == [False] + [True] * 50
    assert engine.order_status("other", ids[-1]) is None


def test_finished_history_survives_a_snapshot_and_keeps_evicting_in_order() -> None:
    engine = make_engine(terminal_history=40)
    ids = [order_id(place(engine, "t", f"c{i}", SELL, 1, 110)) for i in range(2500)]
    for oid in ids[:2400]:
        cancel(engine, "t", oid)
    restored = Engine.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    for oid in ids[2400:2410]:
        cancel(engine, "t", oid)
        cancel(restored, "t", oid)
    assert restored.state_hash() == engine.state_hash()
    assert restored.order_status("t", ids[2369]) is None
    assert restored.order_status("t", ids[2370]) is not None


def test_open_orders_found_by_id_after_most_earlier_ones_closed() -> None:
    engine = make_engine()
    ids = [order_id(place(engine, "t", f"c{i}", BUY, 1, 50 + i % 7)) for i in range(4000)]
    for oid in ids[:3500]:  # close from the front: the open-order list drops its leading slots
        cancel(engine, "t", oid)
    assert [view.order_id for view in engine.open_orders("t")] == ids[3500:]
    for oid in ids[3500:3600]:
        view = engine.order_status("t", oid)
        assert view is not None
        assert view.status is OrderStatus.NEW
    assert engine.order_status("u", ids[3999]) is None
    one(OrderRejected, cancel(engine, "u", ids[3999]))  # another trader's order id is unknown to it
    late = order_id(place(engine, "t", "late", BUY, 1, 40))
    assert engine.order_id_for("t", "late") == late
    assert engine.order_id_for("t", "c0") == ids[0]
    assert [view.order_id for view in engine.open_orders("t")] == [*ids[3500:], late]


def test_open_orders_restart_cleanly_after_the_book_empties() -> None:
    engine = make_engine()
    first = [order_id(place(engine, "t", f"a{i}", BUY, 1, 60)) for i in range(1500)]
    for oid in reversed(first):  # close from the back: nothing is left open
        cancel(engine, "t", oid)
    assert engine.open_orders("t") == []
    again = [order_id(place(engine, "t", f"b{i}", BUY, 1, 60)) for i in range(3)]
    assert [view.order_id for view in engine.open_orders("t")] == again
    assert engine.order_status("t", first[-1]) is not None  # finished, still in the history
    assert engine.order_status("t", again[1]) is not None
