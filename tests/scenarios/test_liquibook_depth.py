"""Depth and best-bid/offer scenarios adapted from Liquibook's ut_depth.cpp and ut_bbo_order_book.cpp.

Sources: enewhuis/liquibook, test/unit/ut_depth.cpp and test/unit/ut_bbo_order_book.cpp.
Restated in our terms; no code is copied.

Liquibook tests its ``Depth`` aggregate directly (add_order, close_order,
change_qty_order, replace_order on a price level). Here the same sequences go
through the engine as orders, cancels and replaces, and the aggregate is read
back with ``Engine.depth``. Liquibook's ChangedChecker flags which of the five
visible *positions* changed (an insert shifts every position below it); our
BookDelta names the *price level* that changed, so the adapted checks assert
that each command reports exactly the levels it touched. Bid and ask variants
of a Liquibook test are one parametrized test here, because the rules are
symmetric: only the sort order of the side differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from engine import Engine, Side, TradeExecuted
from tests.conftest import BUY, SELL, cancel, deltas, events_of, make_engine, one, order_id, place, replace

Level = tuple[int, int, int]  # price, qty, order count


class DepthBook:
    """One side of a book driven like Liquibook's Depth: add, close, change quantity, replace."""

    def __init__(self, side: Side) -> None:
        self.engine: Engine = make_engine()
        self.side = side
        self.n = 0
        self.orders: dict[int, list[int]] = {}  # price -> live order ids at that price, oldest first
        self.owner: dict[int, str] = {}  # order id -> trader (one trader per order, as Liquibook has no owners)
        self.changed: list[int] = []  # prices named by the BookDeltas of the last command

    def _note(self, events: Sequence[object]) -> None:
        self.changed = sorted(price for side, price, _, _ in deltas(events) if side is self.side)

    def add(self, price: int, qty: int) -> int:
        self.n += 1
        events = place(self.engine, f"trader{self.n}", f"o{self.n}", self.side, qty, price)
        assert not events_of(TradeExecuted, events)
        self._note(events)
        oid = order_id(events)
        self.orders.setdefault(price, []).append(oid)
        self.owner[oid] = f"trader{self.n}"
        return oid

    def close(self, price: int, qty: int) -> None:
        """Cancel the order at ``price`` with remaining ``qty``."""
        oid = self._find(price, qty)
        self._note(cancel(self.engine, self.owner[oid], oid))
        self.orders[price].remove(oid)

    def change_qty(self, price: int, delta: int, qty: int | None = None) -> None:
        """Change the quantity of an order at ``price`` (the one with remaining ``qty`` when given) by ``delta``."""
        oid = self._find(price, qty)
        trader = self.owner[oid]
        view = self.engine.order_status(trader, oid)
        assert view is not None
        self._note(replace(self.engine, trader, oid, new_qty=view.remaining + delta))

    def move(self, price: int, new_price: int, qty: int) -> None:
        oid = self._find(price, qty)
        self._note(replace(self.engine, self.owner[oid], oid, new_price=new_price))
        self.orders[price].remove(oid)
        self.orders.setdefault(new_price, []).append(oid)

    def _find(self, price: int, qty: int | None) -> int:
        for oid in self.orders.get(price, []):
            view = self.engine.order_status(self.owner[oid], oid)
            if view is not None and (qty is None or view.remaining == qty):
                return oid
        raise AssertionError(f"no order of {qty} at {price}")

    def levels(self, n: int = 5) -> list[Level]:
        depth = self.engine.depth("BTC-USD", n)
        assert depth is not None
        side = depth.bids if self.side is BUY else depth.asks
        return [(lv.price, lv.qty, lv.order_count) for lv in side]

    def best_first(self, levels: list[Level]) -> list[Level]:
        """Liquibook lists the same levels for both sides; put them in this side's order."""
        return sorted(levels, reverse=self.side is BUY)


SIDES = pytest.mark.parametrize("side", [BUY, SELL], ids=["bid", "ask"])


@SIDES
def test_add_one_order(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestAddBid and TestAddAsk.
    d = DepthBook(side)
    d.add(1234, 100)
    assert d.levels() == [(1234, 100, 1)]
    assert d.changed == [1234]


@SIDES
def test_add_orders_at_one_level(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestAddBids and TestAddAsks.
    d = DepthBook(side)
    for qty in (100, 200, 300):
        d.add(1234, qty)
        assert d.changed == [1234]
    assert d.levels() == [(1234, 600, 3)]


@SIDES
def test_append_levels(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestAppendBidLevels and TestAppendAskLevels.
    d = DepthBook(side)
    for price, qty in ((1236, 300), (1235, 200), (1232, 100), (1235, 400)):
        d.add(price, qty)
        assert d.changed == [price]
    assert d.levels() == d.best_first([(1236, 300, 1), (1235, 600, 2), (1232, 100, 1)])


@SIDES
def test_insert_levels(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestInsertBidLevels and TestInsertAskLevels: each add
    # reports only its own level, however many visible positions it shifts.
    d = DepthBook(side)
    for price, qty in ((1234, 800), (1232, 100), (1236, 300), (1235, 200), (1234, 900), (1231, 700), (1235, 400), (1231, 500)):
        d.add(price, qty)
        assert d.changed == [price]
    expected = [(1236, 300, 1), (1235, 600, 2), (1234, 1700, 2), (1232, 100, 1), (1231, 1200, 2)]
    assert d.levels(10) == d.best_first(expected)


def test_insert_bid_levels_past_five() -> None:
    # Adapted from Liquibook ut_depth TestInsertBidLevelsPast5: levels below the fifth exist but are not shown.
    d = DepthBook(BUY)
    for price, qty in (
        (1234, 800),
        (1232, 100),
        (1236, 300),
        (1231, 700),
        (1234, 900),
        (1235, 400),
        (1235, 200),
        (1231, 500),
        (1230, 200),
        (1229, 200),
    ):
        d.add(price, qty)
    assert d.levels(5) == [(1236, 300, 1), (1235, 600, 2), (1234, 1700, 2), (1232, 100, 1), (1231, 1200, 2)]
    assert d.levels(10)[5:] == [(1230, 200, 1), (1229, 200, 1)]


def test_insert_ask_levels_past_five() -> None:
    # Adapted from Liquibook ut_depth TestInsertAskLevelsPast5: better asks push worse ones out of the top five.
    d = DepthBook(SELL)
    for price, qty in (
        (1234, 800),
        (1232, 100),
        (1236, 300),
        (1231, 700),
        (1234, 900),
        (1235, 400),
        (1235, 200),
        (1231, 500),
        (1230, 200),
        (1229, 200),
    ):
        d.add(price, qty)
    assert d.levels(5) == [(1229, 200, 1), (1230, 200, 1), (1231, 1200, 2), (1232, 100, 1), (1234, 1700, 2)]


def test_insert_bid_levels_truncate_five() -> None:
    # Adapted from Liquibook ut_depth TestInsertBidLevelsTruncate5.
    d = DepthBook(BUY)
    for price, qty in (
        (1234, 800),
        (1232, 100),
        (1236, 300),
        (1231, 700),
        (1234, 900),
        (1235, 400),
        (1235, 200),
        (1231, 500),
        (1230, 200),
        (1238, 200),
        (1238, 250),
        (1237, 500),
    ):
        d.add(price, qty)
    assert d.levels(5) == [(1238, 450, 2), (1237, 500, 1), (1236, 300, 1), (1235, 600, 2), (1234, 1700, 2)]


def test_insert_ask_levels_truncate_five() -> None:
    # Adapted from Liquibook ut_depth TestInsertAskLevelsTruncate5.
    d = DepthBook(SELL)
    for price, qty in (
        (1234, 800),
        (1232, 100),
        (1236, 300),
        (1231, 700),
        (1234, 900),
        (1235, 400),
        (1235, 200),
        (1231, 500),
        (1230, 200),
        (1238, 200),
        (1232, 250),
        (1237, 500),
    ):
        d.add(price, qty)
    assert d.levels(5) == [(1230, 200, 1), (1231, 1200, 2), (1232, 350, 2), (1234, 1700, 2), (1235, 600, 2)]


@SIDES
def test_close_order_keeps_a_level_with_orders_left(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestCloseBid and TestCloseAsk.
    d = DepthBook(side)
    d.add(1234, 300)
    d.add(1234, 500)
    d.close(1234, 300)
    assert d.changed == [1234]
    assert d.levels() == [(1234, 500, 1)]


@SIDES
def test_close_last_order_erases_the_level(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestCloseEraseBid and TestCloseEraseAsk.
    d = DepthBook(side)
    for price, qty in ((1235, 300), (1235, 400), (1234, 500), (1233, 200)):
        d.add(price, qty)
    d.close(1235, 300)
    assert d.levels()[0 if side is BUY else 2] == (1235, 400, 1)
    d.close(1235, 400)
    assert d.changed == [1235]
    assert d.levels() == d.best_first([(1234, 500, 1), (1233, 200, 1)])


@SIDES
def test_close_erase_reports_the_level_as_gone(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestCloseEraseBid / TestCloseEraseAsk: the erased level's delta carries zero.
    d = DepthBook(side)
    oid = d.add(1235, 300)
    assert deltas(cancel(d.engine, d.owner[oid], oid)) == [(side, 1235, 0, 0)]


@SIDES
def test_add_close_add(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestAddCloseAddBid and TestAddCloseAddAsk.
    d = DepthBook(side)
    d.add(1234, 300)
    d.close(1234, 300)
    assert d.levels() == []
    d.add(1233, 200)
    assert d.levels() == [(1233, 200, 1)]


@SIDES
def test_add_close_add_higher(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestAddCloseAddHigherBid and TestAddCloseAddHigherAsk.
    d = DepthBook(side)
    d.add(1234, 300)
    d.close(1234, 300)
    d.add(1235, 200)
    assert d.levels() == [(1235, 200, 1)]


def test_close_bids_free_levels() -> None:
    # Adapted from Liquibook ut_depth TestCloseBidsFreeLevels.
    d = DepthBook(BUY)
    for price, qty in ((1234, 800), (1232, 100), (1236, 300), (1235, 200), (1234, 900), (1231, 700), (1235, 400), (1231, 500)):
        d.add(price, qty)
    d.close(1234, 900)
    d.close(1232, 100)
    d.close(1236, 300)
    assert d.levels() == [(1235, 600, 2), (1234, 800, 1), (1231, 1200, 2)]
    d.add(1233, 350)
    d.add(1236, 300)
    d.add(1231, 700)
    assert d.levels() == [(1236, 300, 1), (1235, 600, 2), (1234, 800, 1), (1233, 350, 1), (1231, 1900, 3)]


def test_close_asks_free_levels() -> None:
    # Adapted from Liquibook ut_depth TestCloseAsksFreeLevels (Liquibook closes 100 of the 1236 ask, a
    # partial close; we cancel whole orders, so that step is a quantity decrease of the 300 to 200).
    d = DepthBook(SELL)
    for price, qty in ((1234, 800), (1232, 100), (1236, 300), (1235, 200), (1234, 900), (1231, 700), (1235, 400), (1231, 500)):
        d.add(price, qty)
    d.close(1234, 900)
    d.close(1232, 100)
    d.change_qty(1236, -100)
    d.close(1236, 200)
    assert d.levels() == [(1231, 1200, 2), (1234, 800, 1), (1235, 600, 2)]
    d.add(1233, 350)
    d.add(1236, 300)
    d.add(1231, 700)
    assert d.levels() == [(1231, 1900, 3), (1233, 350, 1), (1234, 800, 1), (1235, 600, 2), (1236, 300, 1)]


@SIDES
def test_increase_quantity(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestIncreaseBid and TestIncreaseAsk (change_qty_order becomes a
    # ReplaceOrder of one order's quantity; the level total moves by the same amount).
    d = DepthBook(side)
    for price, qty in ((1236, 300), (1235, 200), (1232, 100), (1235, 400)):
        d.add(price, qty)
    d.change_qty(1232, 37)
    assert d.changed == [1232]
    d.change_qty(1232, 41)
    d.change_qty(1235, 201, qty=200)
    assert d.changed == [1235]
    assert d.levels() == d.best_first([(1236, 300, 1), (1235, 801, 2), (1232, 178, 1)])


@SIDES
def test_decrease_quantity(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestDecreaseBid and TestDecreaseAsk.
    d = DepthBook(side)
    for price, qty in ((1236, 300), (1235, 200), (1232, 100), (1235, 400)):
        d.add(price, qty)
    d.change_qty(1236, -37)
    assert d.changed == [1236]
    d.change_qty(1236, -41)
    d.change_qty(1235, -201, qty=400)
    assert d.levels() == d.best_first([(1236, 222, 1), (1235, 399, 2), (1232, 100, 1)])


def test_increase_decrease_bid() -> None:
    # Adapted from Liquibook ut_depth TestIncreaseDecreaseBid.
    d = DepthBook(BUY)
    for price, qty in ((1236, 300), (1235, 200), (1232, 100), (1235, 400)):
        d.add(price, qty)
    d.change_qty(1236, 37)
    d.change_qty(1235, -41, qty=400)
    d.change_qty(1232, 60)
    d.change_qty(1236, -41)
    d.change_qty(1236, 210)
    assert d.levels() == [(1236, 506, 1), (1235, 559, 2), (1232, 160, 1)]


def test_increase_decrease_ask() -> None:
    # Adapted from Liquibook ut_depth TestIncreaseDecreaseAsk.
    d = DepthBook(SELL)
    for price, qty in ((1236, 300), (1235, 200), (1232, 100), (1235, 400)):
        d.add(price, qty)
    d.change_qty(1236, 37)
    d.change_qty(1235, -41, qty=400)
    d.change_qty(1232, 51)
    d.change_qty(1236, -41)
    d.change_qty(1236, 201)
    assert d.levels() == [(1232, 151, 1), (1235, 559, 2), (1236, 497, 1)]


@SIDES
def test_replace_moves_an_order_to_a_new_level(side: Side) -> None:
    # Adapted from Liquibook ut_depth TestReplaceBid and TestReplaceAsk: the 200 at 1235 moves to 1237.
    d = DepthBook(side)
    for price, qty in ((1236, 300), (1235, 200), (1232, 100), (1235, 400)):
        d.add(price, qty)
    assert d.levels() == d.best_first([(1236, 300, 1), (1235, 600, 2), (1232, 100, 1)])
    d.move(1235, 1237, 200)
    assert d.changed == [1235, 1237]
    assert d.levels() == d.best_first([(1237, 200, 1), (1236, 300, 1), (1235, 400, 1), (1232, 100, 1)])


# ------------------------------------------------------------ ut_bbo_order_book


def bbo(engine: Engine) -> tuple[Level | None, Level | None]:
    top = engine.best_bid_offer("BTC-USD")
    assert top is not None
    bid, ask = top.best_bid, top.best_ask
    return (
        (bid.price, bid.qty, bid.order_count) if bid else None,
        (ask.price, ask.qty, ask.order_count) if ask else None,
    )


def fill_of(events: Sequence[object], name: str) -> tuple[int, int]:
    mine = [t for t in events_of(TradeExecuted, events) if name in (t.maker_client_order_id, t.taker_client_order_id)]
    return sum(t.qty for t in mine), sum(t.qty * t.price for t in mine)


def add(engine: Engine, name: str, side: Side, price: int, qty: int) -> list[object]:
    return list(place(engine, name, name, side, qty, price))


# Adapted from Liquibook ut_bbo_order_book TestAddCompleteBid.
def test_bbo_add_complete_bid() -> None:
    engine = make_engine()
    add(engine, "bid0", BUY, 1250, 100)
    add(engine, "ask0", SELL, 1251, 100)
    add(engine, "ask1", SELL, 1252, 100)
    assert bbo(engine) == ((1250, 100, 1), (1251, 100, 1))
    events = add(engine, "bid1", BUY, 1251, 100)
    assert fill_of(events, "bid1") == (100, 125_100)
    assert fill_of(events, "ask0") == (100, 125_100)
    assert bbo(engine) == ((1250, 100, 1), (1252, 100, 1))


# Adapted from Liquibook ut_bbo_order_book TestAddCompleteAsk.
def test_bbo_add_complete_ask() -> None:
    engine = make_engine()
    add(engine, "bid0", BUY, 1250, 100)
    add(engine, "ask0", SELL, 1251, 100)
    events = add(engine, "ask1", SELL, 1250, 100)
    assert fill_of(events, "ask1") == (100, 125_000)
    assert fill_of(events, "bid0") == (100, 125_000)
    assert bbo(engine) == (None, (1251, 100, 1))


# Adapted from Liquibook ut_bbo_order_book TestAddMultiMatchBid.
def test_bbo_add_multi_match_bid() -> None:
    engine = make_engine()
    add(engine, "bid0", BUY, 1250, 100)
    add(engine, "ask0", SELL, 1251, 300)
    add(engine, "ask1", SELL, 1252, 100)
    add(engine, "ask2", SELL, 1251, 200)
    assert bbo(engine) == ((1250, 100, 1), (1251, 500, 2))
    events = add(engine, "bid1", BUY, 1251, 500)
    assert [t.maker_client_order_id for t in events_of(TradeExecuted, events)] == ["ask0", "ask2"]
    assert fill_of(events, "bid1") == (500, 1251 * 500)
    assert bbo(engine) == ((1250, 100, 1), (1252, 100, 1))


# Adapted from Liquibook ut_bbo_order_book TestAddMultiMatchAsk.
def test_bbo_add_multi_match_ask() -> None:
    engine = make_engine()
    for name, side, price, qty in (
        ("bid0", BUY, 9250, 100),
        ("bid1", BUY, 9250, 500),
        ("bid2", BUY, 9248, 100),
        ("ask0", SELL, 9251, 300),
        ("ask1", SELL, 9252, 100),
        ("ask2", SELL, 9251, 200),
    ):
        add(engine, name, side, price, qty)
    assert bbo(engine) == ((9250, 600, 2), (9251, 500, 2))
    events = add(engine, "ask3", SELL, 9250, 600)
    assert fill_of(events, "bid0") == (100, 9250 * 100)
    assert fill_of(events, "bid1") == (500, 9250 * 500)
    assert bbo(engine) == ((9248, 100, 1), (9251, 500, 2))


# Adapted from Liquibook ut_bbo_order_book TestAddPartialMatchBid.
def test_bbo_add_partial_match_bid() -> None:
    engine = make_engine()
    add(engine, "bid0", BUY, 7250, 100)
    add(engine, "ask0", SELL, 7253, 300)
    add(engine, "ask1", SELL, 7252, 100)
    add(engine, "ask2", SELL, 7251, 200)
    assert bbo(engine) == ((7250, 100, 1), (7251, 200, 1))
    events = add(engine, "bid1", BUY, 7251, 350)
    assert one(TradeExecuted, events).maker_client_order_id == "ask2"
    assert fill_of(events, "bid1") == (200, 7251 * 200)
    assert bbo(engine) == ((7251, 150, 1), (7252, 100, 1))
