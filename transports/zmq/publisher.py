"""Market data onto an XPUB socket: one topic per symbol, every message sequenced by ``md_seq``.

Invariants:

* A message is ``[topic, MarketDataMessage]`` with the topic ``symbol + " "``
  (``protocol.topic``); its payload is a ``MarketUpdate`` (carrying the
  gateway's per-symbol ``md_seq``) or a ``Gap``. Snapshots never go out on the
  PUB socket: a subscriber asks the ROUTER for one (``snapshot`` request), so
  one slow subscriber's resync costs the others nothing.
* Only symbols someone subscribed to are encoded. XPUB hands the server the
  first subscription and the last unsubscription of every topic; the
  publisher keeps one gateway ``Subscription`` for exactly those symbols
  (an empty prefix subscribes to every symbol). Encoding is most of the cost
  of market data, and nobody pays it for a symbol nobody reads.
* The PUB send HWM decides when a slow subscriber starts losing messages;
  ZeroMQ drops them silently, and the subscriber sees the jump in ``md_seq``.
  If this publisher itself falls behind the gateway (its ``Subscription``
  overflows), the gateway says ``Gap`` and the publisher sends that ``Gap``
  on each affected topic, so subscribers resynchronise at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import zmq

from transports.codec.market_bytes import protobuf_bytes
from transports.core.gateway import Gateway
from transports.core.loop_socket import LoopSocket
from transports.core.marketdata import BookSnapshot, MarketData, Subscription
from transports.zmq.protocol import symbol_of, topic

log = logging.getLogger("dex-zmq")

_SUBSCRIBE = 1


class MarketDataPublisher:
    def __init__(self, gateway: Gateway, xpub: zmq.Socket[Any]) -> None:
        self._gateway = gateway
        self._xpub = xpub
        self._reader = LoopSocket(xpub, self._on_subscriptions)
        self._topics: set[str] = set()  # subscribed symbols; "" = all
        self._symbols: frozenset[str] = frozenset()  # what self._sub covers
        self._listed = -1  # instruments seen when self._sub was made (new listings extend "all")
        self._sub: Subscription | None = None
        self._changed = asyncio.Event()
        self._topic_frames: dict[str, bytes] = {}
        self._task = self._reader.loop.create_task(self._pump(), name="dex-zmq market data")
        self.sent = 0

    # ------------------------------------------------------ subscriptions
    def _on_subscriptions(self) -> None:
        changed = False
        while True:
            try:
                message = self._xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if not message:
                continue
            symbol = symbol_of(message[1:])
            if symbol is None:
                continue  # a prefix that is no topic of ours: nothing to publish for it
            if message[0] == _SUBSCRIBE:
                changed |= symbol not in self._topics
                self._topics.add(symbol)
            else:
                changed |= symbol in self._topics
                self._topics.discard(symbol)
        if changed:
            self._follow_topics()

    def _follow_topics(self) -> None:
        """Make the gateway subscription cover exactly the subscribed, listed symbols."""
        listed = self._gateway.instruments
        names = {i.symbol for i in listed}
        wanted = frozenset(names if "" in self._topics else self._topics & names)
        self._listed = len(listed)
        if wanted == self._symbols:
            return
        old = self._sub
        if old is not None:
            # Publish what the old subscription still holds before swapping:
            # md_seq is the gateway's, so the new subscription continues it.
            while (item := old.poll()) is not None:
                self._publish(item)
            self._gateway.unsubscribe(old)
        self._sub = self._gateway.subscribe(wanted) if wanted else None
        self._symbols = wanted
        self._changed.set()

    # ------------------------------------------------------------- sending
    def _publish(self, item: MarketData) -> None:
        if isinstance(item, BookSnapshot):
            return  # subscribers take snapshots from the ROUTER
        frame = self._topic_frames.get(item.symbol)
        if frame is None:
            frame = self._topic_frames[item.symbol] = topic(item.symbol)
        payload = protobuf_bytes(item, self._gateway.instrument)  # a MarketUpdate (encoded once for every wire) or a Gap
        # PUB never blocks: at a subscriber's HWM ZeroMQ drops, and md_seq shows it.
        self._xpub.send_multipart((frame, payload), zmq.NOBLOCK)
        self.sent += 1

    async def _pump(self) -> None:
        while True:
            sub = self._sub
            if sub is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                item = await sub.next()
            except StopAsyncIteration:
                continue  # swapped for another subscription (its backlog was published then)
            try:
                self._publish(item)
                while (more := sub.poll()) is not None:
                    self._publish(more)
                if "" in self._topics and len(self._gateway.instruments) != self._listed:
                    self._follow_topics()  # a symbol was listed since: "all" includes it
            except Exception:  # a bug must not end market data for everyone
                log.exception("market data: cannot publish %r", item)
            self._reader.rearm()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._sub is not None:
            self._gateway.unsubscribe(self._sub)
            self._sub = None
        self._reader.close(0)
