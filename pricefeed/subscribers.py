"""Reading price updates from RabbitMQ: ``AmqpSubscriber``, the other half of ``AmqpPublisher``.

::

    async with AmqpSubscriber(url, ["BTC-USD"]) as sub:          # [] or ["#"]: every pair
        async for update in sub:                                 # PriceUpdate, in publish order per pair
            ...

Invariants:

* A subscriber reads from its own queue bound to the ``price_updates`` topic
  exchange by pair: exclusive and auto-deleted by default (what it misses
  while away is gone), or a durable named queue (``queue="bots.prices"``)
  that keeps persistent updates across restarts of the subscriber and of the
  broker.
* An update is acknowledged once it has been handed to the reader; a message
  that is not a price update (``BadPriceUpdate``) is rejected without requeue
  and counted in ``malformed``, never raised into the reader's loop.
* The connection is robust (aio-pika reconnects and re-declares the queue).

The bots (``traders/bots/worker.py``) read partition queues of their own
layout, bound to the same exchange with ``declare_price_exchange``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Self

from pricefeed.publishers import PRICE_EXCHANGE, PublisherUnavailable, declare_price_exchange
from pricefeed.update import BadPriceUpdate, PriceUpdate


class AmqpSubscriber:
    """Reads ``PriceUpdate``s of ``pairs`` from its own queue bound to ``exchange``."""

    def __init__(
        self, url: str, pairs: Sequence[str] = (), *, queue: str | None = None, exchange: str = PRICE_EXCHANGE, prefetch: int = 1000
    ) -> None:
        self.url = url
        self.keys = sorted(set(pairs)) if pairs and "#" not in pairs else ["#"]
        self.queue_name = queue
        self.exchange_name = exchange
        self.prefetch = prefetch
        self.malformed = 0
        self._connection: Any = None
        self._arrived: asyncio.Queue[Any] = asyncio.Queue()

    async def connect(self) -> None:
        import aio_pika

        if self._connection is not None:
            return
        try:
            connection = await aio_pika.connect_robust(self.url, timeout=10)
        except Exception as exc:  # aio-pika raises several unrelated types for "cannot connect"
            raise PublisherUnavailable(f"amqp: cannot connect to {self.url}: {exc}") from exc
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await declare_price_exchange(channel, self.exchange_name)
        if self.queue_name:
            queue = await channel.declare_queue(self.queue_name, durable=True)
        else:
            queue = await channel.declare_queue(f"prices.{secrets.token_hex(6)}", exclusive=True, auto_delete=True)
        for key in self.keys:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._arrive)
        self._connection = connection

    async def _arrive(self, message: Any) -> None:
        self._arrived.put_nowait(message)

    async def updates(self) -> AsyncIterator[PriceUpdate]:
        """Each update, acknowledged as it is handed over (a durable queue keeps the rest across restarts)."""
        await self.connect()
        while True:
            message = await self._arrived.get()
            try:
                update = PriceUpdate.from_json(message.body)
            except BadPriceUpdate:
                self.malformed += 1
                await message.reject(requeue=False)
                continue
            await message.ack()
            yield update

    def __aiter__(self) -> AsyncIterator[PriceUpdate]:
        return self.updates()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a connection the broker already dropped
                await asyncio.wait_for(connection.close(), 5.0)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
