"""The fills hub: each trade's two fills go to their own traders only; a subscriber that falls behind is ended."""

from __future__ import annotations

import asyncio

from engine import Side, TradeExecuted
from transports.core.fills import Fill, FillsHub, FillSubscription


def trade(trade_id: int, maker: str, taker: str, qty: int = 1) -> TradeExecuted:
    return TradeExecuted(
        trade_id, trade_id, "BTC-USD", 100, qty, Side.BUY, 10 + trade_id, maker, f"m{trade_id}", 5, 20 + trade_id, taker, f"t{trade_id}", 0
    )


def drain(sub: FillSubscription) -> list[Fill]:
    async def read() -> list[Fill]:
        out: list[Fill] = []
        while True:
            try:
                out.append(await asyncio.wait_for(sub.next(), 0.05))
            except (TimeoutError, StopAsyncIteration):
                return out

    return asyncio.run(read())


def test_a_fill_reaches_only_its_own_trader_with_its_own_side_and_no_counterparty() -> None:
    hub = FillsHub()
    ann, bob, cat = hub.subscribe("ann"), hub.subscribe("bob"), hub.subscribe("cat")
    hub.publish([trade(1, "ann", "bob"), trade(2, "bob", "dan")])
    assert [(f.trade_id, f.order_id, f.client_order_id, f.side, f.remaining, f.maker) for f in drain(ann)] == [
        (1, 11, "m1", Side.SELL, 5, True)
    ]
    assert [(f.trade_id, f.order_id, f.side, f.maker) for f in drain(bob)] == [(1, 21, Side.BUY, False), (2, 12, Side.SELL, True)]
    assert drain(cat) == []


def test_a_subscriber_that_falls_behind_is_ended_not_fed_a_partial_stream() -> None:
    hub = FillsHub()
    slow = hub.subscribe("ann", maxsize=2)
    hub.publish([trade(i, "ann", "bob") for i in range(1, 4)])
    assert slow.overflowed and slow.closed
    assert drain(slow) == []
    hub.unsubscribe(slow)
    assert not hub.has_subscribers
