"""Stop-order scenarios adapted from Liquibook's ut_stop_orders.cpp.

Source: enewhuis/liquibook, test/unit/ut_stop_orders.cpp. Restated in our terms;
no code is copied.

Differences from Liquibook, and how the scenarios adapt:

* Liquibook lets a market order rest on the book until liquidity arrives; our
  market orders never rest (the unfilled rest is cancelled with
  MARKET_REMAINDER). Where Liquibook has a triggered market order wait and
  trade with a later order, we supply the liquidity first.
* Liquibook can set the market price directly (``set_market_price``); our stops
  trigger only on the last trade price, so the scenarios print a trade instead.
* Liquibook's all-or-none condition has no counterpart; those orders are plain
  GTC limits here (they fill completely either way).
* Liquibook orders have no owner: each order gets its own trader.
"""

from __future__ import annotations

from engine import CancelReason, Engine, OrderCancelled, OrderStatus, StopTriggered, TradeExecuted
from tests.conftest import BUY, SELL, events_of, make_engine, one, order_id, place, place_stop


def last_price(engine: Engine) -> int:
    depth = engine.depth("BTC-USD")
    assert depth is not None
    return depth.last_price


def status(engine: Engine, trader: str, oid: int) -> OrderStatus:
    view = engine.order_status(trader, oid)
    assert view is not None
    return view.status


def open_market_at_55(engine: Engine) -> None:
    """order0 bids 55, order1 sells at market: the first trade sets the market price to 55."""
    place(engine, "order0", "order0", BUY, 100, 55)
    trade = one(TradeExecuted, place(engine, "order1", "order1", SELL, 100))
    assert trade.price == 55
    assert last_price(engine) == 55


# Adapted from Liquibook ut_stop_orders TestStopOrdersOffMarketNoTrade.
def test_stop_orders_off_market_do_not_trade() -> None:
    engine = make_engine()
    open_market_at_55(engine)
    buy_stop = place_stop(engine, "order2", "order2", BUY, 100, stop=56)
    sell_stop = place_stop(engine, "order3", "order3", SELL, 100, stop=54)
    for events in (buy_stop, sell_stop):
        assert events_of(StopTriggered, events) == []
        assert events_of(TradeExecuted, events) == []
    assert status(engine, "order2", order_id(buy_stop)) is OrderStatus.PENDING_TRIGGER
    assert status(engine, "order3", order_id(sell_stop)) is OrderStatus.PENDING_TRIGGER


# Adapted from Liquibook ut_stop_orders TestStopMarketOrdersOnMarketTradeImmediately. In Liquibook
# the triggered market buy rests and the triggered market sell then trades with it; our market
# orders never rest, so resting liquidity at 57 and 53 is added and each stop trades on arrival.
def test_stop_market_orders_at_the_market_trade_immediately() -> None:
    engine = make_engine()
    open_market_at_55(engine)
    place(engine, "ask57", "ask57", SELL, 100, 57)
    place(engine, "bid53", "bid53", BUY, 100, 53)

    buy_stop = place_stop(engine, "order2", "order2", BUY, 100, stop=55)
    assert one(StopTriggered, buy_stop).last_price == 55
    assert one(TradeExecuted, buy_stop).price == 57
    assert status(engine, "order2", order_id(buy_stop)) is OrderStatus.FILLED
    assert last_price(engine) == 57

    # The buy stop moved the market to 57; a sell stop at 57 is reached at once.
    sell_stop = place_stop(engine, "order3", "order3", SELL, 100, stop=57)
    assert one(StopTriggered, sell_stop).last_price == 57
    assert one(TradeExecuted, sell_stop).price == 53
    assert status(engine, "order3", order_id(sell_stop)) is OrderStatus.FILLED


# The literal Liquibook sequence, with our market-order rule: the triggered buy finds no
# liquidity and is cancelled rather than resting, so the sell stop finds nothing either.
def test_triggered_stop_market_orders_do_not_rest() -> None:
    engine = make_engine()
    open_market_at_55(engine)
    buy_stop = place_stop(engine, "order2", "order2", BUY, 100, stop=55)
    assert one(OrderCancelled, buy_stop).reason is CancelReason.MARKET_REMAINDER
    sell_stop = place_stop(engine, "order3", "order3", SELL, 100, stop=55)
    assert events_of(TradeExecuted, sell_stop) == []
    assert one(OrderCancelled, sell_stop).reason is CancelReason.MARKET_REMAINDER


# Adapted from Liquibook ut_stop_orders TestStopMarketOrdersTradeWhenStopPriceReached.
def test_stop_market_orders_trade_when_the_stop_price_is_reached() -> None:
    engine = make_engine()
    # Liquibook sets the market price to 55 directly; we print a trade at 55 between bystanders.
    place(engine, "seed-sell", "seed-sell", SELL, 1, 55)
    place(engine, "seed-buy", "seed-buy", BUY, 1, 55)
    order0 = order_id(place(engine, "order0", "order0", BUY, 100, 53))
    order1 = order_id(place(engine, "order1", "order1", SELL, 100, 57))
    order2 = order_id(place_stop(engine, "order2", "order2", BUY, 100, stop=56))
    order3 = order_id(place_stop(engine, "order3", "order3", SELL, 100, stop=54))
    assert status(engine, "order2", order2) is OrderStatus.PENDING_TRIGGER
    assert status(engine, "order3", order3) is OrderStatus.PENDING_TRIGGER

    # A trade at 56 triggers the buy stop, which lifts order1 at order1's price.
    place(engine, "order4", "order4", BUY, 1000, 56)
    events = place(engine, "order5", "order5", SELL, 1000, 56)
    assert one(StopTriggered, events).order_id == order2
    assert [(t.maker_order_id, t.taker_order_id, t.price, t.qty) for t in events_of(TradeExecuted, events)][1:] == [
        (order1, order2, 57, 100)
    ]
    assert last_price(engine) == 57
    assert status(engine, "order0", order0) is OrderStatus.NEW
    assert status(engine, "order3", order3) is OrderStatus.PENDING_TRIGGER

    # A trade at 54 triggers the sell stop, which hits order0 at order0's price.
    place(engine, "order6", "order6", BUY, 1000, 54)
    events = place(engine, "order7", "order7", SELL, 1000, 54)
    assert one(StopTriggered, events).order_id == order3
    assert [(t.maker_order_id, t.taker_order_id, t.price, t.qty) for t in events_of(TradeExecuted, events)][1:] == [
        (order0, order3, 53, 100)
    ]
    assert last_price(engine) == 53
    assert status(engine, "order0", order0) is OrderStatus.FILLED
