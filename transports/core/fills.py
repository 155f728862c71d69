"""Private fills: each trader's own executions, pushed to that trader alone.

Public market data is anonymous (``PublicTrade``): it tells nobody whose order
traded. The taker of a trade reads its fill in its reply; the maker, whose
order rested and was hit later, would otherwise have to poll its order's
status. A ``FillsHub`` subscription (gRPC ``Fills``, the WebSocket
``/ws/fills``) pushes every fill of one trader, as maker and as taker: a
``Fill`` names that trader's own order, side, price, quantity, what remains of
the order and whether it was the maker, never the counterparty.

Invariants:

* a fill reaches only the subscriptions of its own trader, in engine order;
* a subscriber that falls behind (its bounded queue is full) is not fed a
  partial stream: its queue is dropped and the subscription ends
  ``overflowed``; the trader re-reads its orders' status (``filled``,
  ``remaining``) and subscribes again;
* with no subscription the gateway collects nothing for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine import TradeExecuted
from transports.codec.market_messages import Fill

__all__ = ["Fill", "FillSubscription", "FillsHub"]


@dataclass(eq=False)
class FillSubscription:
    """One trader's bounded stream of its own fills."""

    trader: str
    maxsize: int
    _queue: deque[Fill] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    overflowed: bool = False

    def push(self, fill: Fill) -> None:
        if self.closed:
            return
        if len(self._queue) >= self.maxsize:
            self._queue.clear()
            self.overflowed = True
            self.close()
            return
        self._queue.append(fill)
        self._ready.set()

    async def next(self) -> Fill:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    def __aiter__(self) -> FillSubscription:
        return self

    async def __anext__(self) -> Fill:
        return await self.next()

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class FillsHub:
    """Routes each trade's two fills to the subscriptions of their traders."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[FillSubscription]] = {}

    def subscribe(self, trader: str, maxsize: int = 10_000) -> FillSubscription:
        sub = FillSubscription(trader, maxsize)
        self._subscribers.setdefault(trader, []).append(sub)
        return sub

    def unsubscribe(self, sub: FillSubscription) -> None:
        sub.close()
        subs = self._subscribers.get(sub.trader)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subscribers[sub.trader]

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    def publish(self, trades: Iterable[TradeExecuted]) -> None:
        subscribers = self._subscribers
        for trade in trades:
            if trade.maker_trader not in subscribers and trade.taker_trader not in subscribers:
                continue
            for trader, fill in Fill.of(trade):
                for sub in subscribers.get(trader, ()):
                    sub.push(fill)
