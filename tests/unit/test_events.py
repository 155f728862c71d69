"""Events: one gap-free sequence, a fixed order inside each command, level-2 deltas with final state, full trade facts."""

from __future__ import annotations

import pytest

from engine import (
    AddInstrument,
    BookDelta,
    Engine,
    Event,
    Instrument,
    InstrumentAdded,
    MalformedMessage,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    RejectReason,
    Side,
    StopTriggered,
    TradeExecuted,
)
from tests.conftest import BUY, SELL, SYMBOL, cancel, deltas, events_of, ioc, kinds, one, order_id, place, place_stop, replace

OUTCOME = {"OrderAccepted", "OrderRejected", "OrderReplaced", "InstrumentAdded"}


def test_seq_starts_at_one_and_has_no_gaps_across_commands() -> None:
    engine = Engine()
    stream: list[Event] = []
    stream += engine.handle(AddInstrument(Instrument.create(SYMBOL, "1", "1")))
    stream += engine.handle(AddInstrument(Instrument.create(SYMBOL, "1", "1")))  # rejected: exists
    stream += place(engine, "a", "a1", SELL, 5, 100)
    stream += place(engine, "a", "a1", SELL, 5, 100)  # duplicate
    bought = place(engine, "b", "b1", BUY, 7, 101)
    stream += bought
    stream += place_stop(engine, "c", "c1", SELL, 1, stop=101)
    stream += cancel(engine, "a", 999)
    stream += replace(engine, "b", order_id(bought), new_qty=1)
    stream += engine.handle(MassCancel("b"))
    stream += place(engine, "d", "d1", BUY, 3, 0)
    assert [e.seq for e in stream] == list(range(1, len(stream) + 1))
    assert engine.seq == len(stream)


def test_instrument_listing_events() -> None:
    engine = Engine()
    inst = Instrument.create(SYMBOL, "0.01", "0.001")
    added = one(InstrumentAdded, engine.handle(AddInstrument(inst)))
    assert added.instrument == inst
    again = one(OrderRejected, engine.handle(AddInstrument(inst)))
    assert (again.reason, again.symbol) == (RejectReason.INSTRUMENT_EXISTS, SYMBOL)
    assert engine.instrument(SYMBOL) == inst
    assert engine.instruments == [inst]


def test_handle_refuses_what_is_not_a_command(engine: Engine) -> None:
    seq = engine.seq
    with pytest.raises(MalformedMessage):
        engine.handle("place 1 BTC at 100")
    assert engine.seq == seq


def test_events_of_a_command_come_in_a_fixed_order(engine: Engine) -> None:
    # Command outcome, then trades and the cancels they cause, then stop triggers and their consequences, then deltas.
    place(engine, "m", "a100", SELL, 1, 100)
    place(engine, "m", "a101", SELL, 1, 101)
    place(engine, "m", "a102", SELL, 5, 102)
    place_stop(engine, "s", "stop", BUY, 2, stop=100)
    events = ioc(engine, "t", "t1", BUY, 3, 101)
    assert kinds(events) == [
        "OrderAccepted",
        "TradeExecuted",
        "TradeExecuted",
        "OrderCancelled",
        "StopTriggered",
        "TradeExecuted",
        "BookDelta",
        "BookDelta",
        "BookDelta",
    ]
    first_delta = kinds(events).index("BookDelta")
    assert all(k == "BookDelta" for k in kinds(events)[first_delta:])
    assert kinds(events)[0] in OUTCOME


def test_mass_cancel_across_symbols_puts_every_delta_last() -> None:
    # Engine bug: the mass cancel flushes each symbol's deltas before cancelling
    # the next symbol's orders, so an OrderCancelled follows a BookDelta.
    from tests.conftest import make_engine

    engine = make_engine("BTC-USD", "ETH-USD")
    place(engine, "a", "b1", BUY, 1, 100, symbol="BTC-USD")
    place(engine, "a", "e1", BUY, 1, 100, symbol="ETH-USD")
    events = engine.handle(MassCancel("a"))
    assert kinds(events) == ["OrderCancelled", "OrderCancelled", "BookDelta", "BookDelta"]


def test_one_delta_per_changed_level_with_its_final_state(engine: Engine) -> None:
    for i in range(3):
        place(engine, f"m{i}", f"a{i}", SELL, 2, 100)
    place(engine, "m", "a101", SELL, 4, 101)
    events = place(engine, "t", "t1", BUY, 8, 101)
    assert len(events_of(TradeExecuted, events)) == 4
    assert deltas(events) == [(SELL, 100, 0, 0), (SELL, 101, 2, 1)]


def test_delta_for_a_new_resting_order_and_for_a_partially_filled_level(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 2, 100)
    place(engine, "m", "a2", SELL, 2, 100)
    events = place(engine, "t", "t1", BUY, 3, 99)
    assert deltas(events) == [(BUY, 99, 3, 1)]
    events = place(engine, "t", "t2", BUY, 3, 100)
    assert deltas(events) == [(SELL, 100, 1, 1)]


def test_crossing_order_that_rests_reports_both_sides(engine: Engine) -> None:
    place(engine, "m", "a1", SELL, 2, 100)
    events = place(engine, "t", "t1", BUY, 5, 100)
    assert sorted(deltas(events)) == [(BUY, 100, 3, 1), (SELL, 100, 0, 0)]


def test_decrease_and_move_deltas(engine: Engine) -> None:
    oid = order_id(place(engine, "a", "a1", BUY, 5, 100))
    place(engine, "b", "b1", BUY, 1, 100)
    assert deltas(replace(engine, "a", oid, new_qty=2)) == [(BUY, 100, 3, 2)]
    assert deltas(replace(engine, "a", oid, new_qty=4)) == [(BUY, 100, 5, 2)]
    assert sorted(deltas(replace(engine, "a", oid, new_price=98))) == [(BUY, 98, 4, 1), (BUY, 100, 1, 1)]


def test_stop_orders_do_not_appear_in_the_book(engine: Engine) -> None:
    events = place_stop(engine, "a", "s1", BUY, 1, stop=120)
    assert events_of(BookDelta, events) == []
    assert events_of(BookDelta, cancel(engine, "a", order_id(events))) == []


def test_rejects_carry_the_command_identity(engine: Engine) -> None:
    rejected = one(OrderRejected, place(engine, "alice", "c1", BUY, 0, 100))
    assert (rejected.trader, rejected.client_order_id, rejected.symbol) == ("alice", "c1", SYMBOL)
    rejected = one(OrderRejected, cancel(engine, "alice", 77, "c9"))
    assert (rejected.trader, rejected.order_id, rejected.client_order_id) == ("alice", 77, "c9")


def test_trade_event_fields(engine: Engine) -> None:
    maker = order_id(place(engine, "maker", "mk", SELL, 5, 100))
    events = place(engine, "taker", "tk", BUY, 3, 105)
    taker = order_id(events)
    trade = one(TradeExecuted, events)
    assert trade.as_dict() == {
        "seq": trade.seq,
        "trade_id": 1,
        "symbol": SYMBOL,
        "price": 100,
        "qty": 3,
        "aggressor_side": Side.BUY,
        "maker_order_id": maker,
        "maker_trader": "maker",
        "maker_client_order_id": "mk",
        "maker_remaining": 2,
        "taker_order_id": taker,
        "taker_trader": "taker",
        "taker_client_order_id": "tk",
        "taker_remaining": 0,
    }
    second = one(TradeExecuted, place(engine, "taker2", "tk2", BUY, 2, 100))
    assert second.trade_id == 2
    assert second.aggressor_side is Side.BUY


def test_aggressor_side_is_the_takers(engine: Engine) -> None:
    place(engine, "m", "b1", BUY, 1, 100)
    assert one(TradeExecuted, place(engine, "t", "s1", SELL, 1, 100)).aggressor_side is Side.SELL


def test_trade_ids_increase_by_one_across_symbols() -> None:
    from tests.conftest import make_engine

    engine = make_engine("BTC-USD", "ETH-USD")
    ids = []
    for i in range(4):
        symbol = ("BTC-USD", "ETH-USD")[i % 2]
        place(engine, "m", f"m{i}", SELL, 1, 100, symbol=symbol)
        ids.append(one(TradeExecuted, place(engine, "t", f"t{i}", BUY, 1, 100, symbol=symbol)).trade_id)
    assert ids == [1, 2, 3, 4]


def test_accepted_event_echoes_the_order(engine: Engine) -> None:
    accepted = one(OrderAccepted, place_stop(engine, "a", "s1", SELL, 3, stop=90, price=89))
    assert (accepted.trader, accepted.client_order_id, accepted.side, accepted.qty, accepted.price, accepted.stop_price) == (
        "a",
        "s1",
        SELL,
        3,
        89,
        90,
    )


def test_stop_triggered_event_names_the_stop_and_the_price(engine: Engine) -> None:
    oid = order_id(place_stop(engine, "a", "s1", SELL, 1, stop=90))
    place(engine, "m", "b1", BUY, 1, 89)
    events = place(engine, "t", "s2", SELL, 1, 89)
    triggered = one(StopTriggered, events)
    assert (triggered.order_id, triggered.trader, triggered.client_order_id, triggered.stop_price, triggered.last_price) == (
        oid,
        "a",
        "s1",
        90,
        89,
    )


def test_cancel_event_reports_the_cancelled_quantity(engine: Engine) -> None:
    oid = order_id(place(engine, "a", "a1", SELL, 5, 100))
    place(engine, "b", "b1", BUY, 2, 100)
    cancelled = one(OrderCancelled, cancel(engine, "a", oid))
    assert (cancelled.qty, cancelled.remaining, cancelled.symbol, cancelled.trader) == (3, 0, SYMBOL, "a")


def test_events_compare_by_value() -> None:
    a = BookDelta(1, SYMBOL, Side.BUY, 100, 5, 1)
    b = BookDelta(1, SYMBOL, Side.BUY, 100, 5, 1)
    assert a == b
    assert hash(a) == hash(b)
    assert a != BookDelta(2, SYMBOL, Side.BUY, 100, 5, 1)
    assert "price=100" in repr(a)
