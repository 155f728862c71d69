"""Order-book scenarios adapted from exchange-core's OrderBookBaseTest.

Source: exchange-core/exchange-core, src/test/java/exchange/core2/core/orderbook/OrderBookBaseTest.java
(Apache-2.0). The scenarios are restated here against our commands; no code is copied.

How the Java test maps onto this engine:

* exchange-core's client-chosen order ids (1..13, 83, 123, ...) become our client
  order ids; the engine assigns its own exchange order ids.
* ``OrderCommand.update(id, uid, newPrice)`` (a *move*) becomes
  ``ReplaceOrder(new_price=...)``; ``OrderCommand.cancel`` becomes ``CancelOrder``.
* exchange-core reports the unfilled rest of an IOC as a REJECTION event; we
  report ``OrderCancelled`` with ``CancelReason.IOC_REMAINDER``.
* exchange-core's reserve (bid budget) price on GTC bids has no counterpart: our
  risk checks are per-order limits, so the reserve price is dropped.
* Every resting order belongs to UID_1 and every aggressor to UID_2, as in the
  Java test, so self-trade prevention never interferes.
* The Java ``@After`` clears the book with two IOC sweeps and checks it is
  empty; the ``market`` fixture does the same after every scenario here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from engine import (
    AddInstrument,
    CancelOrder,
    CancelReason,
    Command,
    Engine,
    Event,
    Instrument,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderType,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TimeInForce,
    TradeExecuted,
)
from tests.conftest import BUY, SELL, events_of, kinds, one

SYMBOL = "EUR-USD"
UID_1 = "uid-412"
UID_2 = "uid-413"
MAX_PRICE = 400_000

# The book every scenario starts from (exchange-core's before()).
INITIAL_ASKS = [(81_599, 75), (81_600, 100), (200_954, 10), (201_000, 60)]
INITIAL_BIDS = [(81_593, 40), (81_590, 21), (81_200, 20), (10_000, 13), (9_136, 2)]


class Market:
    """The engine plus the exchange-core vocabulary the scenarios speak."""

    def __init__(self) -> None:
        self.engine = Engine()
        # Quantities up to 13e9 appear in shouldAddGtcOrders.
        self.engine.handle(AddInstrument(Instrument.create(SYMBOL, "1", "1", max_qty="1000000000000")))

    def gtc(self, coid: str, uid: str, price: int, qty: int, side: Side) -> list[Event]:
        return self.engine.handle(PlaceOrder(uid, coid, SYMBOL, side, qty, price))

    def ioc(self, coid: str, uid: str, price: int, qty: int, side: Side) -> list[Event]:
        return self.engine.handle(PlaceOrder(uid, coid, SYMBOL, side, qty, price, tif=TimeInForce.IOC))

    def oid(self, coid: str, uid: str = UID_1) -> int:
        order_id = self.engine.order_id_for(uid, coid)
        assert order_id, f"no order {coid!r} for {uid}"
        return order_id

    def cancel(self, coid: str, uid: str = UID_1) -> list[Event]:
        return self.engine.handle(CancelOrder(uid, self.engine.order_id_for(uid, coid) or 999_999))

    def move(self, coid: str, uid: str, new_price: int) -> list[Event]:
        return self.engine.handle(ReplaceOrder(uid, self.engine.order_id_for(uid, coid) or 999_999, new_price=new_price))

    def l2(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        depth = self.engine.depth(SYMBOL, 25)
        assert depth is not None
        return [(lv.price, lv.qty) for lv in depth.asks], [(lv.price, lv.qty) for lv in depth.bids]

    def is_open(self, coid: str, uid: str = UID_1) -> bool:
        view = self.engine.order_status(uid, self.oid(coid, uid))
        return view is not None and view.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


def trades(events: list[Event]) -> list[tuple[str, str, int, int]]:
    """(taker client id, maker client id, price, qty) for each trade: exchange-core's checkEventTrade."""
    return [(t.taker_client_order_id, t.maker_client_order_id, t.price, t.qty) for t in events_of(TradeExecuted, events)]


@pytest.fixture
def market() -> Iterator[Market]:
    m = Market()
    # Order 0 is placed and cancelled first, as in the Java setup.
    m.gtc("0", UID_2, 81_600, 131, SELL)
    assert one(OrderCancelled, m.cancel("0", UID_2)).qty == 131
    for coid, price, qty, side in [
        ("1", 81_600, 100, SELL),
        ("2", 81_599, 50, SELL),
        ("3", 81_599, 25, SELL),
        ("4", 81_593, 40, BUY),
        ("5", 81_590, 20, BUY),
        ("6", 81_590, 1, BUY),
        ("7", 81_200, 20, BUY),
        ("8", 201_000, 28, SELL),
        ("9", 201_000, 32, SELL),
        ("10", 200_954, 10, SELL),
        ("11", 10_000, 12, BUY),
        ("12", 10_000, 1, BUY),
        ("13", 9_136, 2, BUY),
    ]:
        assert not events_of(TradeExecuted, m.gtc(coid, UID_1, price, qty, side))
    assert m.l2() == (INITIAL_ASKS, INITIAL_BIDS)
    yield m
    # exchange-core's @After: sweep both sides with IOC orders and find the book empty.
    asks, bids = m.l2()
    if asks:
        m.ioc("sweep-asks", "sweeper-1", MAX_PRICE, sum(q for _, q in asks), BUY)
    if bids:
        m.ioc("sweep-bids", "sweeper-2", 1, sum(q for _, q in bids), SELL)
    assert m.l2() == ([], [])


# Adapted from exchange-core OrderBookBaseTest.shouldInitializeWithoutErrors (the setup itself is the check).
def test_should_initialize_without_errors(market: Market) -> None:
    assert market.l2() == (INITIAL_ASKS, INITIAL_BIDS)


# Adapted from exchange-core OrderBookBaseTest.shouldAddGtcOrders.
def test_should_add_gtc_orders(market: Market) -> None:
    market.gtc("93", UID_1, 81_598, 1, SELL)
    market.gtc("94", UID_1, 81_594, 9_000_000_000, BUY)
    asks, bids = market.l2()
    assert asks == [(81_598, 1), *INITIAL_ASKS]
    assert bids == [(81_594, 9_000_000_000), *INITIAL_BIDS]
    market.gtc("95", UID_1, 130_000, 13_000_000_000, SELL)
    market.gtc("96", UID_1, 1_000, 4, BUY)
    asks, bids = market.l2()
    assert asks == [(81_598, 1), *INITIAL_ASKS[:2], (130_000, 13_000_000_000), *INITIAL_ASKS[2:]]
    assert bids == [(81_594, 9_000_000_000), *INITIAL_BIDS, (1_000, 4)]


# Adapted from exchange-core OrderBookBaseTest.shouldRemoveOrder.
def test_should_remove_order(market: Market) -> None:
    events = market.cancel("5")
    assert kinds(events) == ["OrderCancelled", "BookDelta"]
    cancelled = one(OrderCancelled, events)
    assert (cancelled.client_order_id, cancelled.qty, cancelled.trader) == ("5", 20, UID_1)
    assert market.l2()[1][1] == (81_590, 1)

    cancelled = one(OrderCancelled, market.cancel("2"))
    assert (cancelled.client_order_id, cancelled.qty, cancelled.trader) == ("2", 50, UID_1)
    assert market.l2()[0][0] == (81_599, 25)


# Adapted from exchange-core OrderBookBaseTest.shouldRemoveOrderAndEmptyBucket.
def test_should_remove_order_and_empty_bucket(market: Market) -> None:
    assert one(OrderCancelled, market.cancel("2")).qty == 50
    events = market.cancel("3")
    assert one(OrderCancelled, events).qty == 25
    assert market.l2() == (INITIAL_ASKS[1:], INITIAL_BIDS)


# Adapted from exchange-core OrderBookBaseTest.shouldReturnErrorWhenCancelUnknownOrder.
def test_should_return_error_when_cancel_unknown_order(market: Market) -> None:
    events = market.engine.handle(CancelOrder(UID_1, 5291))
    assert one(OrderRejected, events).reason is RejectReason.UNKNOWN_ORDER
    assert market.l2() == (INITIAL_ASKS, INITIAL_BIDS)


# Adapted from exchange-core OrderBookBaseTest.shouldReturnErrorWhenUpdatingUnknownOrder
# (exchange-core's update is a move: our ReplaceOrder with a new price).
def test_should_return_error_when_updating_unknown_order(market: Market) -> None:
    events = market.engine.handle(ReplaceOrder(UID_1, 2433, new_price=300))
    assert kinds(events) == ["OrderRejected"]
    assert one(OrderRejected, events).reason is RejectReason.UNKNOWN_ORDER
    assert market.l2() == (INITIAL_ASKS, INITIAL_BIDS)


# Adapted from exchange-core OrderBookBaseTest.shouldMoveOrderExistingBucket.
def test_should_move_order_existing_bucket(market: Market) -> None:
    events = market.move("7", UID_1, 81_590)
    assert not events_of(TradeExecuted, events)
    assert market.l2()[1] == [(81_593, 40), (81_590, 41), (10_000, 13), (9_136, 2)]


# Adapted from exchange-core OrderBookBaseTest.shouldMoveOrderNewBucket.
def test_should_move_order_new_bucket(market: Market) -> None:
    events = market.move("7", UID_1, 81_594)
    assert not events_of(TradeExecuted, events)
    assert market.l2()[1] == [(81_594, 20), (81_593, 40), (81_590, 21), (10_000, 13), (9_136, 2)]


# Adapted from exchange-core OrderBookBaseTest.shouldMatchIocOrderPartialBBO.
def test_should_match_ioc_order_partial_bbo(market: Market) -> None:
    events = market.ioc("123", UID_2, 1, 10, SELL)
    assert trades(events) == [("123", "4", 81_593, 10)]
    assert market.l2()[1][0] == (81_593, 30)


# Adapted from exchange-core OrderBookBaseTest.shouldMatchIocOrderFullBBO.
def test_should_match_ioc_order_full_bbo(market: Market) -> None:
    events = market.ioc("123", UID_2, 1, 40, SELL)
    assert trades(events) == [("123", "4", 81_593, 40)]
    assert market.l2() == (INITIAL_ASKS, INITIAL_BIDS[1:])


# Adapted from exchange-core OrderBookBaseTest.shouldMatchIocOrderWithTwoLimitOrdersPartial.
def test_should_match_ioc_order_with_two_limit_orders_partial(market: Market) -> None:
    events = market.ioc("123", UID_2, 1, 41, SELL)
    assert trades(events) == [("123", "4", 81_593, 40), ("123", "5", 81_590, 1)]
    assert market.l2()[1][0] == (81_590, 20)
    assert not market.is_open("4")
    assert market.is_open("5")


# Adapted from exchange-core OrderBookBaseTest.shouldMatchIocOrderFullLiquidity.
def test_should_match_ioc_order_full_liquidity(market: Market) -> None:
    events = market.ioc("123", UID_2, MAX_PRICE, 175, BUY)
    assert trades(events) == [("123", "2", 81_599, 50), ("123", "3", 81_599, 25), ("123", "1", 81_600, 100)]
    assert market.l2() == (INITIAL_ASKS[2:], INITIAL_BIDS)
    assert not any(market.is_open(c) for c in ("1", "2", "3"))


# Adapted from exchange-core OrderBookBaseTest.shouldMatchIocOrderWithRejection
# (exchange-core's REJECTION of the unfilled 25 is our OrderCancelled with IOC_REMAINDER).
def test_should_match_ioc_order_with_rejection(market: Market) -> None:
    events = market.ioc("123", UID_2, MAX_PRICE, 270, BUY)
    assert len(trades(events)) == 6
    cancelled = one(OrderCancelled, events)
    assert (cancelled.client_order_id, cancelled.reason, cancelled.qty) == ("123", CancelReason.IOC_REMAINDER, 25)
    assert market.l2() == ([], INITIAL_BIDS)


# Adapted from exchange-core OrderBookBaseTest.shouldFullyMatchMarketableGtcOrder.
def test_should_fully_match_marketable_gtc_order(market: Market) -> None:
    events = market.gtc("123", UID_2, 81_599, 1, BUY)
    assert trades(events) == [("123", "2", 81_599, 1)]
    assert market.l2()[0][0] == (81_599, 74)


# Adapted from exchange-core OrderBookBaseTest.shouldPartiallyMatchMarketableGtcOrderAndPlace.
def test_should_partially_match_marketable_gtc_order_and_place(market: Market) -> None:
    events = market.gtc("123", UID_2, 81_599, 77, BUY)
    assert trades(events) == [("123", "2", 81_599, 50), ("123", "3", 81_599, 25)]
    assert market.l2() == (INITIAL_ASKS[1:], [(81_599, 2), *INITIAL_BIDS])


# Adapted from exchange-core OrderBookBaseTest.shouldFullyMatchMarketableGtcOrder2Prices.
def test_should_fully_match_marketable_gtc_order_2_prices(market: Market) -> None:
    events = market.gtc("123", UID_2, 81_600, 77, BUY)
    assert trades(events) == [("123", "2", 81_599, 50), ("123", "3", 81_599, 25), ("123", "1", 81_600, 2)]
    assert market.l2()[0] == [(81_600, 98), *INITIAL_ASKS[2:]]


# Adapted from exchange-core OrderBookBaseTest.shouldFullyMatchMarketableGtcOrderWithAllLiquidity
# (a limit order's unfilled rest rests: no cancel event).
def test_should_fully_match_marketable_gtc_order_with_all_liquidity(market: Market) -> None:
    events = market.gtc("123", UID_2, 220_000, 1000, BUY)
    assert trades(events) == [
        ("123", "2", 81_599, 50),
        ("123", "3", 81_599, 25),
        ("123", "1", 81_600, 100),
        ("123", "10", 200_954, 10),
        ("123", "8", 201_000, 28),
        ("123", "9", 201_000, 32),
    ]
    assert not events_of(OrderCancelled, events)
    assert market.l2() == ([], [(220_000, 755), *INITIAL_BIDS])


# Adapted from exchange-core OrderBookBaseTest.shouldMoveOrderFullyMatchAsMarketable.
def test_should_move_order_fully_match_as_marketable(market: Market) -> None:
    events = market.gtc("83", UID_2, 81_200, 20, BUY)
    assert not events_of(TradeExecuted, events)
    assert market.l2()[1][2] == (81_200, 40)
    events = market.move("83", UID_2, 81_602)
    assert one(OrderReplaced, events).priority_kept is False
    assert trades(events) == [("83", "2", 81_599, 20)]
    asks, bids = market.l2()
    assert asks[0] == (81_599, 55)
    assert bids[2] == (81_200, 20)


# Adapted from exchange-core OrderBookBaseTest.shouldMoveOrderFullyMatchAsMarketable2Prices.
def test_should_move_order_fully_match_as_marketable_2_prices(market: Market) -> None:
    assert not events_of(TradeExecuted, market.gtc("83", UID_2, 81_594, 100, BUY))
    events = market.move("83", UID_2, 81_600)
    assert trades(events) == [("83", "2", 81_599, 50), ("83", "3", 81_599, 25), ("83", "1", 81_600, 25)]
    assert market.l2() == ([(81_600, 75), *INITIAL_ASKS[2:]], INITIAL_BIDS)


# Adapted from exchange-core OrderBookBaseTest.shouldMoveOrderMatchesAllLiquidity.
def test_should_move_order_matches_all_liquidity(market: Market) -> None:
    market.gtc("83", UID_2, 81_594, 246, BUY)
    events = market.move("83", UID_2, 201_000)
    assert trades(events) == [
        ("83", "2", 81_599, 50),
        ("83", "3", 81_599, 25),
        ("83", "1", 81_600, 100),
        ("83", "10", 200_954, 10),
        ("83", "8", 201_000, 28),
        ("83", "9", 201_000, 32),
    ]
    assert market.l2() == ([], [(201_000, 1), *INITIAL_BIDS])


def _generated_commands(count: int, seed: int) -> Iterator[Command]:
    """A seeded stand-in for exchange-core's TestOrdersGenerator: GTC/IOC orders, cancels, moves and reduces."""
    rng = random.Random(seed)
    users = [f"u{i}" for i in range(6)]
    placed: list[tuple[str, int]] = []
    for n in range(count):
        roll = rng.random()
        if roll < 0.55 or not placed:
            side = rng.choice([Side.BUY, Side.SELL])
            center = 1000 + (-3 if side is Side.BUY else 3)
            price = center + rng.randint(-8, 8)
            tif = TimeInForce.IOC if rng.random() < 0.15 else TimeInForce.GTC
            user = rng.choice(users)
            order_type = OrderType.MARKET if rng.random() < 0.05 else OrderType.LIMIT
            yield PlaceOrder(
                user, f"g{n}", SYMBOL, side, rng.randint(1, 50), 0 if order_type is OrderType.MARKET else price, order_type, tif
            )
            placed.append((user, n))
        elif roll < 0.75:
            user, n_placed = rng.choice(placed)
            yield CancelOrder(user, 0, f"g{n_placed}")
        elif roll < 0.9:
            user, n_placed = rng.choice(placed)
            yield ReplaceOrder(user, 0, new_price=1000 + rng.randint(-10, 10), client_order_id=f"g{n_placed}")
        else:
            user, n_placed = rng.choice(placed)
            yield ReplaceOrder(user, 0, new_qty=rng.randint(1, 5), client_order_id=f"g{n_placed}")  # a reduce (or an increase)


# Adapted from exchange-core OrderBookBaseTest.multipleCommandsKeepInternalStateTest: the Java test
# runs 25,000 generated commands and validates the book's internal state after each one; here a
# seeded stream of 4,000 commands runs through the property tests' ledger, which checks the book,
# quantities, FIFO and the event stream after every command. exchange-core's companion
# multipleCommandsCompareTest (fast vs naive implementation) has no counterpart: there is one engine,
# so determinism is checked by replaying the same stream instead.
def test_multiple_commands_keep_internal_state() -> None:
    from tests.property.ledger import Ledger

    engine = Engine()
    engine.handle(AddInstrument(Instrument.create(SYMBOL, "1", "1")))
    ledger = Ledger(engine)
    commands = list(_generated_commands(4000, seed=20190101))
    for command in commands:
        ledger.run(command)
    assert ledger.trades > 500

    replay = Engine()
    replay.handle(AddInstrument(Instrument.create(SYMBOL, "1", "1")))
    assert replay.handle_all(commands) == ledger.events
    assert replay.state_hash() == engine.state_hash()
