"""Price updates over RabbitMQ: the durable topic exchange ``price_updates``, routing key = the pair.

::

    async with PricePublisher(url) as pub:                      # url: amqp://guest:guest@127.0.0.1:<port>/
        await pub.publish(PriceUpdate("BTC-USD", "30000.50", time.time_ns(), seq=1, source="coinbase"))

    async with PriceSubscriber(url, ["BTC-USD"]) as sub:        # [] or ["#"]: every pair
        async for update in sub:                                # PriceUpdate, in publish order per pair
            ...

Wire (docs/amqp.md): exchange ``price_updates`` (topic, durable); routing key
= the pair (``.`` in a pair becomes ``_``); persistent messages
(delivery mode 2), ``content_type=application/json``; body a JSON object
``{"pair": str, "price": "<decimal string>", "ts_ns": int, "seq": int, "source": str}``.

Invariants:

* Prices are decimal strings, never floats: ``PriceUpdate`` keeps the string
  as given after checking it is a finite positive decimal; ``price_decimal``
  gives the ``Decimal``. A body that is not such an object raises
  ``MalformedMessage`` in ``PriceUpdate.from_json`` (the subscriber skips and
  counts it: ``sub.malformed``).
* The publisher uses publisher confirms: ``publish`` returns once the broker
  has the message (``NotConnected`` if not within ``timeout``).
* A subscriber reads from its own queue: exclusive and auto-deleted by
  default (what it misses while away is gone), or a durable named queue
  (``queue="bots.prices"``) that keeps persistent updates across restarts of
  the subscriber and the broker. Connections are robust (reconnect with backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Self

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue

from engine import MalformedMessage, NotConnected
from transports.amqp.connection import BackoffRobustConnection, connect, not_connected
from transports.amqp.settings import CONNECT_TIMEOUT_S, client_url, routing_symbol

PRICE_EXCHANGE = "price_updates"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    pair: str  # e.g. "BTC-USD"
    price: str  # a decimal string, e.g. "30000.50"
    ts_ns: int  # when the source quoted it, ns since the epoch
    seq: int  # per (source, pair), increasing
    source: str  # e.g. "coinbase", "synthetic"

    def __post_init__(self) -> None:
        if not isinstance(self.pair, str) or not self.pair or len(self.pair) > 64:
            raise MalformedMessage("a price update needs a pair (at most 64 characters)")
        if not isinstance(self.price, str):
            raise MalformedMessage("a price is a decimal string, never a number")
        try:
            value = Decimal(self.price)
        except InvalidOperation:
            raise MalformedMessage(f"not a decimal price: {self.price[:32]!r}") from None
        if not value.is_finite() or value <= 0:
            raise MalformedMessage(f"a price must be a finite positive decimal: {self.price[:32]!r}")
        for name in ("ts_ns", "seq"):
            number = getattr(self, name)
            if type(number) is not int or number < 0:
                raise MalformedMessage(f"{name} must be a non-negative integer")
        if not isinstance(self.source, str):
            raise MalformedMessage("source must be text")

    @property
    def price_decimal(self) -> Decimal:
        return Decimal(self.price)

    def to_json(self) -> bytes:
        body = {"pair": self.pair, "price": self.price, "ts_ns": self.ts_ns, "seq": self.seq, "source": self.source}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> PriceUpdate:
        try:
            data: Any = json.loads(body, parse_float=Decimal)  # a JSON-number price parses, and is refused below
        except (ValueError, UnicodeDecodeError):
            raise MalformedMessage("a price update must be a JSON object") from None
        if not isinstance(data, dict):
            raise MalformedMessage("a price update must be a JSON object")
        try:
            price = data["price"]
            if not isinstance(price, str):
                raise MalformedMessage("a price is a decimal string, never a JSON number")
            return cls(data["pair"], price, data["ts_ns"], data["seq"], data.get("source", ""))
        except KeyError as exc:
            raise MalformedMessage(f"a price update needs {exc.args[0]!r}") from None


async def _declare(connection: BackoffRobustConnection, confirms: bool) -> tuple[Any, AbstractExchange]:
    channel = await connection.channel(publisher_confirms=confirms)
    exchange = await channel.declare_exchange(PRICE_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    return channel, exchange


class _BrokerLink:
    """One robust connection to the broker, opened by ``connect`` (also on ``async with``), closed by ``close``."""

    url: str
    timeout: float
    _connection: BackoffRobustConnection | None

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.timeout)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


class PricePublisher(_BrokerLink):
    """Publishes ``PriceUpdate``s, persistent and confirmed, on ``price_updates``."""

    def __init__(self, url: str | None = None, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.url = client_url(url).partition("#")[0]
        self.timeout = timeout
        self._connection: BackoffRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self.published = 0

    async def connect(self) -> None:
        if self._connection is None:
            connection = await connect(self.url, self.timeout, name="dex price publisher")
            _, self._exchange = await _declare(connection, confirms=True)
            self._connection = connection

    async def publish(self, update: PriceUpdate) -> None:
        await self.connect()
        assert self._exchange is not None
        message = aio_pika.Message(update.to_json(), content_type=CONTENT_TYPE, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        try:
            await asyncio.wait_for(self._exchange.publish(message, routing_key=routing_symbol(update.pair)), self.timeout)
        except TimeoutError:
            raise not_connected(self.url, f"the broker did not confirm within {self.timeout:g}s") from None
        except NotConnected:
            raise
        except Exception as exc:
            raise not_connected(self.url, exc) from exc
        self.published += 1


class PriceSubscriber(_BrokerLink):
    """Reads ``PriceUpdate``s of ``pairs`` (empty or ``["#"]``: all) from its own queue bound to ``price_updates``."""

    def __init__(
        self, url: str | None = None, pairs: Sequence[str] = (), *, queue: str | None = None, timeout: float = CONNECT_TIMEOUT_S
    ) -> None:
        self.url = client_url(url).partition("#")[0]
        self.keys = sorted({routing_symbol(p) for p in pairs if p != "#"}) if pairs and "#" not in pairs else ["#"]
        self.queue_name = queue
        self.timeout = timeout
        self._connection: BackoffRobustConnection | None = None
        self._queue: AbstractQueue | None = None
        self._arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self.malformed = 0

    async def connect(self) -> None:
        if self._connection is not None:
            return
        connection = await connect(self.url, self.timeout, name="dex price subscriber")
        try:
            channel, exchange = await _declare(connection, confirms=False)
            await channel.set_qos(prefetch_count=1000)
            if self.queue_name:
                queue = await channel.declare_queue(self.queue_name, durable=True)
            else:
                queue = await channel.declare_queue(f"prices.{secrets.token_hex(6)}", exclusive=True, auto_delete=True)
            for key in self.keys:
                await queue.bind(exchange, routing_key=key)

            async def arrived(message: AbstractIncomingMessage) -> None:
                self._arrived.put_nowait(message)

            await queue.consume(arrived)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await connection.close()
            raise not_connected(self.url, exc) from exc
        self._connection, self._queue = connection, queue

    async def updates(self) -> AsyncIterator[PriceUpdate]:
        """Each update once acknowledged (a durable queue keeps what was not yet read across restarts)."""
        await self.connect()
        while True:
            message = await self._arrived.get()
            try:
                update = PriceUpdate.from_json(message.body)
            except MalformedMessage:
                self.malformed += 1
                with contextlib.suppress(Exception):
                    await message.reject(requeue=False)
                continue
            with contextlib.suppress(Exception):
                await message.ack()
            yield update

    def __aiter__(self) -> AsyncIterator[PriceUpdate]:
        return self.updates()
