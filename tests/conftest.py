"""Shared fixtures and helpers for the engine tests.

Most tests use one instrument with integer tick and lot ("1"), so that prices
and quantities in the tests read as the numbers a trader would type. The
instrument tests use a decimal tick/lot to exercise the exact conversions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import pytest

from engine import (
    AddInstrument,
    BookDelta,
    CancelOrder,
    Engine,
    Event,
    Instrument,
    OrderAccepted,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    Side,
    TimeInForce,
)

# Broker fixtures (a real nats-server, a real RabbitMQ) usable from every test folder.
pytest_plugins = ["tests.plugins.nats", "tests.plugins.rabbitmq"]

SYMBOL = "BTC-USD"
BUY = Side.BUY
SELL = Side.SELL

E = TypeVar("E")


def make_engine(*symbols: str, **engine_kwargs: Any) -> Engine:
    """An engine listing ``symbols`` (default: SYMBOL) with tick and lot of 1."""
    engine = Engine(**engine_kwargs)
    for symbol in symbols or (SYMBOL,):
        engine.handle(AddInstrument(Instrument.create(symbol, "1", "1")))
    return engine


@pytest.fixture
def engine() -> Engine:
    return make_engine()


def place(
    engine: Engine,
    trader: str,
    coid: str,
    side: Side,
    qty: int,
    price: int = 0,
    *,
    symbol: str = SYMBOL,
    order_type: OrderType | None = None,
    **kw: Any,
) -> list[Event]:
    """Place an order; a price of 0 without an explicit type means a market order."""
    if order_type is None:
        order_type = OrderType.LIMIT if price else OrderType.MARKET
    return engine.handle(PlaceOrder(trader, coid, symbol, side, qty, price, order_type=order_type, **kw))


def place_stop(engine: Engine, trader: str, coid: str, side: Side, qty: int, stop: int, price: int = 0, **kw: Any) -> list[Event]:
    """A stop-market order (``price == 0``) or a stop-limit order."""
    order_type = OrderType.STOP_LIMIT if price else OrderType.STOP_MARKET
    return place(engine, trader, coid, side, qty, price, order_type=order_type, stop_price=stop, **kw)


def ioc(engine: Engine, trader: str, coid: str, side: Side, qty: int, price: int, **kw: Any) -> list[Event]:
    return place(engine, trader, coid, side, qty, price, tif=TimeInForce.IOC, **kw)


def fok(engine: Engine, trader: str, coid: str, side: Side, qty: int, price: int, **kw: Any) -> list[Event]:
    return place(engine, trader, coid, side, qty, price, tif=TimeInForce.FOK, **kw)


def cancel(engine: Engine, trader: str, order_id: int = 0, coid: str = "") -> list[Event]:
    return engine.handle(CancelOrder(trader, order_id, coid))


def replace(engine: Engine, trader: str, order_id: int, new_price: int = 0, new_qty: int = 0) -> list[Event]:
    return engine.handle(ReplaceOrder(trader, order_id, new_price, new_qty))


def events_of(kind: type[E], events: Iterable[object]) -> list[E]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def one(kind: type[E], events: Iterable[object]) -> E:
    """The single event of ``kind``; fails if there is not exactly one."""
    found = events_of(kind, events)
    assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
    return found[0]


def order_id(events: Iterable[object]) -> int:
    """The exchange order id from the OrderAccepted among ``events``."""
    return one(OrderAccepted, events).order_id


def kinds(events: Iterable[object]) -> list[str]:
    """Event class names, for asserting the shape of a reply."""
    return [type(e).__name__ for e in events]


Level = tuple[int, int, int]  # price, qty, order count


def book(engine: Engine, symbol: str = SYMBOL, levels: int = 50) -> tuple[list[Level], list[Level]]:
    """(bids, asks) as (price, qty, count) tuples, best first."""
    depth = engine.depth(symbol, levels)
    assert depth is not None
    return (
        [(lv.price, lv.qty, lv.order_count) for lv in depth.bids],
        [(lv.price, lv.qty, lv.order_count) for lv in depth.asks],
    )


def deltas(events: Iterable[object]) -> list[tuple[Side, int, int, int]]:
    """BookDelta events as (side, price, qty, count)."""
    return [(d.side, d.price, d.qty, d.order_count) for d in events_of(BookDelta, events)]
