"""Market data onto the durable topic exchange ``<name>.md``: routing key ``<kind>.<symbol>``, every update sequenced.

Invariants:

* A message body is a ``MarketDataMessage`` holding a ``MarketUpdate`` (with
  the gateway's per-symbol ``md_seq``) or a ``Gap``; routing key
  ``book.<symbol>``, ``trade.<symbol>`` or ``gap.<symbol>``
  (``settings.md_routing_key``). Snapshots never go out here: a subscriber asks
  for one over RPC (``snapshot``), so a resync costs the others nothing.
* Only wanted symbols are encoded: ``want`` (called by the snapshot request
  every subscriber makes first) adds symbols; the one gateway ``Subscription``
  covers exactly those. The set only grows for the life of the server.
* Publishing never blocks the gateway: the subscription is bounded; if this
  publisher falls behind, the gateway says ``Gap``, published on the symbol's
  ``gap`` key, and subscribers resynchronise. Messages are transient (market
  data is re-derivable from a snapshot); a subscriber that loses some sees the
  jump in ``md_seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractExchange

from transports.amqp import protocol as proto
from transports.amqp.settings import md_routing_key
from transports.codec.market_bytes import protobuf_bytes
from transports.core.gateway import Gateway
from transports.core.marketdata import BookSnapshot, Gap, MarketData, MarketUpdate, PublicTrade, Subscription

log = logging.getLogger("dex-amqp")


def routing_key(item: MarketData) -> str:
    if isinstance(item, Gap):
        return md_routing_key(proto.MD_GAP, item.symbol)
    assert isinstance(item, MarketUpdate)
    kind = proto.MD_TRADE if isinstance(item.event, PublicTrade) else proto.MD_BOOK
    return md_routing_key(kind, item.symbol)


class MarketDataPublisher:
    def __init__(self, gateway: Gateway, exchange: AbstractExchange) -> None:
        self._gateway = gateway
        self._exchange = exchange
        self._wanted: set[str] = set()
        self._sub: Subscription | None = None
        self._changed = asyncio.Event()
        self._backlog: list[MarketData] = []  # what a replaced subscription still held, published first
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="dex-amqp market data")
        self.sent = 0
        self.failed = 0

    def want(self, symbols: Iterable[str]) -> None:
        """Publish these symbols from now on (synchronously: no update after this call is missed)."""
        new = set(symbols) - self._wanted
        if not new:
            return
        self._wanted |= new
        old = self._sub
        self._sub = self._gateway.subscribe(frozenset(self._wanted))
        if old is not None:
            # The old subscription's backlog is still published (the pump drains it first): md_seq is the gateway's.
            self._backlog.extend(_drain(old))
            self._gateway.unsubscribe(old)
        self._changed.set()

    async def _publish(self, item: MarketData) -> None:
        if isinstance(item, BookSnapshot):
            return  # subscribers take snapshots over RPC
        body = protobuf_bytes(item, self._gateway.instrument)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
        try:
            await self._exchange.publish(message, routing_key=routing_key(item), mandatory=False)
            self.sent += 1
        except Exception as exc:  # the broker is away: subscribers see the md_seq jump and resync
            self.failed += 1
            if self.failed & (self.failed - 1) == 0:
                log.warning("market data: cannot publish (%s); %d lost so far", exc, self.failed)

    async def _pump(self) -> None:
        while True:
            while self._backlog:
                await self._publish(self._backlog.pop(0))
            sub = self._sub
            if sub is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                item = await sub.next()
            except StopAsyncIteration:
                continue  # swapped for another subscription
            try:
                await self._publish(item)
                while (more := sub.poll()) is not None:
                    await self._publish(more)
            except Exception:  # a bug must not end market data for everyone
                log.exception("market data: cannot publish %r", item)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._sub is not None:
            self._gateway.unsubscribe(self._sub)
            self._sub = None


def _drain(sub: Subscription) -> list[MarketData]:
    out: list[MarketData] = []
    while (item := sub.poll()) is not None:
        out.append(item)
    return out
