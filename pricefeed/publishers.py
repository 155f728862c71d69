"""Publishers of price updates onto the pub/sub transports.

=========  =====================================================================
transport  where an update goes
=========  =====================================================================
amqp       topic exchange ``price_updates`` (durable), routing key = pair,
           persistent message, ``message_id`` = ``<pair>-<seq>``, publisher
           confirms (``publish`` returns once the broker has the message),
           expiration ``PRICE_TTL_S``
nats       subject ``prices.<pair>``
zmq        PUB socket: two frames, ``[pair, body]`` (subscribe by pair prefix)
=========  =====================================================================

The body is always ``PriceUpdate.to_json()`` (decimal strings). Each publisher
is opened by ``connect`` and closed by ``close`` (or used as ``async with``); a
broker that cannot be reached raises ``PublisherUnavailable`` with the URL in
the message. This module, ``pricefeed/update.py`` and
``pricefeed/subscribers.py`` are the one price-update library: the feed, the
bots (``traders/bots/worker.py`` declares the exchange with
``declare_price_exchange``) and the tests use nothing else.

The AMQP publisher rides out a broker restart: its connection is robust
(aio-pika reconnects and re-declares the exchange), and ``publish`` retries
the same update with a growing back-off for up to ``retry_for`` seconds
before it gives up with ``PublisherUnavailable``. An update is never dropped
silently; one whose confirm was lost may reach the queue twice, which the bots
tolerate (an order's client id derives from the update, so the second
placement is refused as a duplicate).
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, Protocol, Self

from pricefeed.update import PriceUpdate

log = logging.getLogger("dex-pricefeed")

PRICE_EXCHANGE = "price_updates"
# A price older than this is worth nothing to any bot (their freshness limit is 2 s by default, 30 s in the
# slowest tests): the broker drops it instead of keeping it for bots that are not running. Without it, a feed
# left running between two runs of the bots filled their queues (up to 10,000 each) with stale prices, and the
# next start spent its first ~15 s rejecting them one by one before it reached a live price.
PRICE_TTL_S = 60
NATS_PREFIX = "prices."


class PublisherUnavailable(Exception):
    """A broker could not be reached."""


async def declare_price_exchange(channel: Any, name: str = PRICE_EXCHANGE) -> Any:
    """The durable topic exchange price updates go to (idempotent: every publisher and subscriber declares it)."""
    import aio_pika

    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


class _Opened:
    """``async with publisher:`` connects, and closes on the way out."""

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


class Publisher(Protocol):
    name: str

    async def connect(self) -> None: ...

    async def publish(self, update: PriceUpdate) -> None: ...

    async def close(self) -> None: ...


class AmqpPublisher(_Opened):
    name = "amqp"

    def __init__(self, url: str, exchange: str = PRICE_EXCHANGE, retry_for: float = 120.0) -> None:
        self.url = url
        self.exchange_name = exchange
        self.retry_for = retry_for
        self._connection: Any = None
        self._exchange: Any = None

    async def connect(self) -> None:
        import aio_pika

        try:
            self._connection = await aio_pika.connect_robust(self.url, timeout=10)
        except Exception as exc:  # aio-pika raises several unrelated types for "cannot connect"
            raise PublisherUnavailable(f"amqp: cannot connect to {self.url}: {exc}") from exc
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await declare_price_exchange(channel, self.exchange_name)

    async def publish(self, update: PriceUpdate) -> None:
        import aio_pika

        message = aio_pika.Message(
            update.to_json(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=f"{update.pair}-{update.seq}",
            expiration=PRICE_TTL_S,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        delay = 0.1
        while True:
            try:
                await self._exchange.publish(message, routing_key=update.pair)
                return
            except Exception as exc:  # aio-pika/aiormq raise many unrelated types while the broker is away
                if loop.time() + delay > deadline:
                    raise PublisherUnavailable(f"amqp: cannot publish to {self.url} for {self.retry_for:g} s: {exc}") from exc
                if delay == 0.1:
                    log.warning("amqp: publish failed (%s); retrying while the connection recovers", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


class NatsPublisher(_Opened):
    name = "nats"

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None

    async def connect(self) -> None:
        import nats

        try:
            self._client = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3, allow_reconnect=True)
        except Exception as exc:  # nats-py raises its own and OS errors
            raise PublisherUnavailable(f"nats: cannot connect to {self.url}: {exc}") from exc

    async def publish(self, update: PriceUpdate) -> None:
        await self._client.publish(NATS_PREFIX + update.pair, update.to_json())

    async def close(self) -> None:
        if self._client is not None:
            await self._client.drain()
            self._client = None


class ZmqPublisher(_Opened):
    """Binds a PUB socket (``tcp://127.0.0.1:0`` picks a free port; ``endpoint`` tells which)."""

    name = "zmq"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._context: Any = None
        self._socket: Any = None

    async def connect(self) -> None:
        import zmq

        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        host_port = self.endpoint.rsplit(":", 1)
        if host_port[-1] in ("0", "*"):
            port = self._socket.bind_to_random_port(host_port[0])
            self.endpoint = f"{host_port[0]}:{port}"
        else:
            self._socket.bind(self.endpoint)

    async def publish(self, update: PriceUpdate) -> None:
        import zmq

        # PUB never blocks: a slow subscriber loses updates (its high-water mark), never the feed.
        self._socket.send_multipart([update.pair.encode(), update.to_json()], zmq.NOBLOCK)

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._context.term()
            self._socket = None


def make_publishers(names: str, *, amqp_url: str, nats_url: str, zmq_endpoint: str, exchange: str = PRICE_EXCHANGE) -> list[Publisher]:
    out: list[Publisher] = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        if name == "amqp":
            out.append(AmqpPublisher(amqp_url, exchange))
        elif name == "nats":
            out.append(NatsPublisher(nats_url))
        elif name == "zmq":
            out.append(ZmqPublisher(zmq_endpoint))
        else:
            raise ValueError(f"unknown publish target {name!r}; known: amqp, nats, zmq")
    return out
