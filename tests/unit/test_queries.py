"""Queries: depth, best bid/offer, order status, open orders, recent trades. Read-only views."""

from __future__ import annotations

from engine import Engine, L2Level, OrderStatus, OrderType, Side, TimeInForce, TradeExecuted
from tests.conftest import BUY, SELL, SYMBOL, book, cancel, events_of, make_engine, one, order_id, place, place_stop, replace


def seed_book(engine: Engine) -> None:
    for price, qty in ((99, 1), (97, 2), (98, 3), (99, 4)):
        place(engine, "m", f"b{price}-{qty}", BUY, qty, price)
    for price, qty in ((103, 1), (101, 2), (102, 3), (101, 4)):
        place(engine, "m", f"a{price}-{qty}", SELL, qty, price)


# ----------------------------------------------------------------- depth


def test_depth_is_best_first_on_both_sides(engine: Engine) -> None:
    seed_book(engine)
    depth = engine.depth(SYMBOL)
    assert depth is not None
    assert depth.bids == [L2Level(99, 5, 2), L2Level(98, 3, 1), L2Level(97, 2, 1)]
    assert depth.asks == [L2Level(101, 6, 2), L2Level(102, 3, 1), L2Level(103, 1, 1)]
    assert depth.symbol == SYMBOL


def test_depth_is_limited_to_n_levels(engine: Engine) -> None:
    seed_book(engine)
    depth = engine.depth(SYMBOL, 2)
    assert depth is not None
    assert [lv.price for lv in depth.bids] == [99, 98]
    assert [lv.price for lv in depth.asks] == [101, 102]
    empty = engine.depth(SYMBOL, 0)
    assert empty is not None
    assert (empty.bids, empty.asks) == ([], [])


def test_depth_reports_the_seq_it_reflects(engine: Engine) -> None:
    events = place(engine, "m", "b1", BUY, 1, 99)
    depth = engine.depth(SYMBOL)
    assert depth is not None
    assert depth.seq == events[-1].seq == engine.seq
    place(engine, "m", "b2", BUY, 1, 98)
    later = engine.depth(SYMBOL)
    assert later is not None
    assert later.seq > depth.seq


def test_depth_of_an_unknown_symbol(engine: Engine) -> None:
    assert engine.depth("NOPE") is None
    assert engine.best_bid_offer("NOPE") is None


def test_depth_reports_the_last_price(engine: Engine) -> None:
    depth = engine.depth(SYMBOL)
    assert depth is not None
    assert depth.last_price == 0
    place(engine, "m", "a1", SELL, 1, 101)
    place(engine, "t", "b1", BUY, 1, 101)
    depth = engine.depth(SYMBOL)
    assert depth is not None
    assert depth.last_price == 101


def test_best_bid_offer(engine: Engine) -> None:
    bbo = engine.best_bid_offer(SYMBOL)
    assert bbo is not None
    assert (bbo.best_bid, bbo.best_ask) == (None, None)
    seed_book(engine)
    bbo = engine.best_bid_offer(SYMBOL)
    assert bbo is not None
    assert (bbo.best_bid, bbo.best_ask) == (L2Level(99, 5, 2), L2Level(101, 6, 2))
    assert len(bbo.bids) == len(bbo.asks) == 1


def test_best_bid_offer_moves_when_the_top_level_empties(engine: Engine) -> None:
    seed_book(engine)
    place(engine, "t", "sweep", SELL, 5, 99)
    bbo = engine.best_bid_offer(SYMBOL)
    assert bbo is not None
    assert bbo.best_bid == L2Level(98, 3, 1)


def test_depth_is_a_copy(engine: Engine) -> None:
    seed_book(engine)
    depth = engine.depth(SYMBOL)
    assert depth is not None
    depth.bids.clear()
    assert book(engine)[0] != []


# ----------------------------------------------------------- order status


def test_order_status_through_an_orders_life(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", SELL, 5, 100))
    view = engine.order_status("alice", oid)
    assert view is not None
    assert (view.status, view.remaining, view.filled) == (OrderStatus.NEW, 5, 0)
    place(engine, "bob", "b1", BUY, 2, 100)
    view = engine.order_status("alice", oid)
    assert view is not None
    assert (view.status, view.remaining, view.filled) == (OrderStatus.PARTIALLY_FILLED, 3, 2)
    place(engine, "bob", "b2", BUY, 3, 100)
    view = engine.order_status("alice", oid)
    assert view is not None
    assert (view.status, view.remaining, view.filled) == (OrderStatus.FILLED, 0, 5)


def test_order_status_of_a_cancelled_order(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", SELL, 5, 100))
    place(engine, "bob", "b1", BUY, 1, 100)
    cancel(engine, "alice", oid)
    view = engine.order_status("alice", oid)
    assert view is not None
    assert (view.status, view.filled, view.remaining) == (OrderStatus.CANCELLED, 1, 0)


def test_order_status_of_orders_that_never_rested(engine: Engine) -> None:
    mkt = order_id(place(engine, "alice", "m1", BUY, 5))
    ioc = order_id(place(engine, "alice", "i1", BUY, 5, 100, tif=TimeInForce.IOC))
    assert engine.order_status("alice", mkt).status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert engine.order_status("alice", ioc).status is OrderStatus.CANCELLED  # type: ignore[union-attr]


def test_order_status_of_a_pending_stop(engine: Engine) -> None:
    oid = order_id(place_stop(engine, "alice", "s1", BUY, 2, stop=120, price=121))
    view = engine.order_status("alice", oid)
    assert view is not None
    assert view.as_dict() == {
        "order_id": oid,
        "trader": "alice",
        "client_order_id": "s1",
        "symbol": SYMBOL,
        "side": Side.BUY,
        "order_type": OrderType.STOP_LIMIT,
        "tif": TimeInForce.GTC,
        "price": 121,
        "stop_price": 120,
        "remaining": 2,
        "filled": 0,
        "status": OrderStatus.PENDING_TRIGGER,
    }


def test_order_status_of_unknown_orders(engine: Engine) -> None:
    assert engine.order_status("alice", 1) is None
    place(engine, "alice", "a1", BUY, 1, 100)
    assert engine.order_status("alice", 2) is None


def test_finished_orders_are_remembered_up_to_the_terminal_history() -> None:
    engine = make_engine(terminal_history=2)
    ids = [order_id(place(engine, "alice", f"a{i}", BUY, 1)) for i in range(3)]
    assert engine.order_status("alice", ids[0]) is None
    assert [engine.order_status("alice", i).status for i in ids[1:]] == [OrderStatus.CANCELLED] * 2  # type: ignore[union-attr]


def test_live_orders_are_always_visible_whatever_the_history() -> None:
    engine = make_engine(terminal_history=1)
    live = order_id(place(engine, "alice", "live", BUY, 1, 50))
    for i in range(5):
        place(engine, "alice", f"m{i}", SELL, 1)
    assert engine.order_status("alice", live).status is OrderStatus.NEW  # type: ignore[union-attr]


def test_order_id_for_a_client_order_id(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "mine", BUY, 1, 100))
    assert engine.order_id_for("alice", "mine") == oid
    assert engine.order_id_for("bob", "mine") == 0
    assert engine.order_id_for("alice", "other") == 0


# ----------------------------------------------------------- open orders


def test_open_orders_in_order_id_order_with_symbol_filter() -> None:
    engine = make_engine("BTC-USD", "ETH-USD")
    place(engine, "alice", "e1", SELL, 1, 10, symbol="ETH-USD")
    place(engine, "alice", "b1", BUY, 1, 100, symbol="BTC-USD")
    place_stop(engine, "alice", "b2", SELL, 1, stop=90, symbol="BTC-USD")
    done = order_id(place(engine, "alice", "b3", BUY, 1, 99, symbol="BTC-USD"))
    cancel(engine, "alice", done)
    assert [v.client_order_id for v in engine.open_orders("alice")] == ["e1", "b1", "b2"]
    assert [v.client_order_id for v in engine.open_orders("alice", "BTC-USD")] == ["b1", "b2"]
    assert [v.status for v in engine.open_orders("alice", "BTC-USD")] == [OrderStatus.NEW, OrderStatus.PENDING_TRIGGER]
    assert engine.open_orders("nobody") == []


def test_replaced_order_shows_its_new_terms(engine: Engine) -> None:
    oid = order_id(place(engine, "alice", "a1", BUY, 5, 100))
    replace(engine, "alice", oid, new_price=101, new_qty=7)
    (view,) = engine.open_orders("alice")
    assert (view.order_id, view.price, view.remaining) == (oid, 101, 7)


# ---------------------------------------------------------- recent trades


def test_recent_trades_newest_last_and_limited(engine: Engine) -> None:
    for i, price in enumerate((100, 101, 102)):
        place(engine, "m", f"a{i}", SELL, 1, price)
    events = place(engine, "t", "sweep", BUY, 3, 102)
    trades = events_of(TradeExecuted, events)
    assert engine.recent_trades(SYMBOL) == trades
    assert engine.recent_trades(SYMBOL, 2) == trades[1:]
    assert engine.recent_trades(SYMBOL, 0) == []
    assert engine.recent_trades("NOPE") == []


def test_recent_trades_are_bounded_by_the_trade_history() -> None:
    engine = make_engine(trade_history=2)
    for i in range(4):
        place(engine, "m", f"a{i}", SELL, 1, 100 + i)
    place(engine, "t", "sweep", BUY, 4, 103)
    assert [t.price for t in engine.recent_trades(SYMBOL)] == [102, 103]


def test_recent_trades_per_symbol() -> None:
    engine = make_engine("BTC-USD", "ETH-USD")
    place(engine, "m", "a1", SELL, 1, 100, symbol="ETH-USD")
    trade = one(TradeExecuted, place(engine, "t", "b1", BUY, 1, 100, symbol="ETH-USD"))
    assert engine.recent_trades("ETH-USD") == [trade]
    assert engine.recent_trades("BTC-USD") == []
