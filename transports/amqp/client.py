"""``AmqpClient``: the ``TraderClient`` for ``dex-amqp`` over RabbitMQ (RPC on a durable queue, market data on a topic exchange).

The broker is ``url``, else ``$DEX_AMQP_URL``, else amqp://guest:guest@127.0.0.1:5672/;
a ``#name`` fragment names the exchange on the broker (queue ``<name>.commands``,
exchange ``<name>.md``; default ``dex``). Layout: ``protocol.py``, docs/amqp.md.

Invariants:

* One robust connection (``connection.py``: reconnect with backoff), one
  channel in publisher-confirm mode. A batch is published persistent to the
  durable commands queue and ``submit`` waits for the broker's confirm first:
  a confirmed batch is in the queue on disk, and survives a broker restart.
* RPC by ``reply_to`` + ``correlation_id``: this client's reply queue
  (``<name>.reply.<id>``, exclusive, auto-deleted, named by us so that it can
  be declared again after a reconnect). Any number of requests may be in
  flight; each future is keyed by its correlation id.
* Never hang: no connection within ``connect_timeout`` -> ``NotConnected``
  ("not connected to RabbitMQ at URL"); a publish not confirmed within
  ``connect_timeout`` (the broker is away) -> ``NotConnected``; no reply
  within ``timeout`` -> ``NoReply``, a ``NotConnected`` (the publish was
  confirmed: the batch is or will be applied: ask ``order`` by client order id, or resend it — the
  engine rejects a duplicate client order id).
* Market data: a private queue bound to ``*.<symbol>`` (bounded: the oldest
  messages are dropped beyond ``md_queue_max``), then a snapshot per symbol
  over RPC; updates with ``md_seq`` <= the snapshot's are discarded; a jump in
  ``md_seq`` or a ``Gap`` yields ``Gap``, then a fresh snapshot.

With a ``credential`` (docs/security.md, "RabbitMQ"): the connection logs in
as the key's broker user (its key id and RabbitMQ password), every request
goes to the command exchange ``<name>.cmd`` with ``user_id`` set to the key
id (the broker checks it against the login), and the reply and market-data
queues are named by the key (``<name>.reply.<KEY>.<id>``), the only ones its
user may read. A login the broker refuses, or a user it deletes (revoked),
raises ``AuthFailure`` (``UNAUTHENTICATED``), requests in flight included;
``connect`` tries a refused login again until ``connect_timeout`` first, since
a key created a moment ago is a broker user only once the server has synced.

Errors (``engine`` hierarchy, never an aio-pika exception): ``NotConnected``,
``Overloaded`` (nothing applied; retry), ``MalformedMessage``, ``ExchangeError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiormq import spec

from engine import BookDepth, Command, Instrument, MalformedMessage, NotConnected, OrderView
from transports.amqp import protocol as proto
from transports.amqp.connection import (
    BackoffRobustConnection,
    connect,
    is_refusal,
    not_connected,
    publish_raw,
    refused_by_broker,
    strip_name,
)
from transports.amqp.settings import CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S, AmqpNames, client_url, default_names, routing_symbol
from transports.codec import lean
from transports.codec.proto_codec import (
    decode_book,
    decode_error,
    decode_market_data,
    decode_order_status,
    decode_stats,
    pb,
)
from transports.core.client import Replies, TraderClient
from transports.core.instruments_cache import InstrumentsCache
from transports.core.keys import Credential
from transports.core.marketdata import BookSnapshot, MarketData, in_sequence
from transports.core.signing import AuthFailure


class NoReply(NotConnected):
    """The broker confirmed the request (a batch: it is in the durable queue and will be applied) but no reply came in time."""


NEW_KEY_RETRY_S = 0.5  # between logins of a key the broker refused while connecting (its user may be a sync away)
MD_QUEUE_MAX = 100_000  # market-data messages a subscriber's queue holds before the oldest are dropped


class AmqpClient(TraderClient):
    transport: ClassVar[str] = "amqp"

    def __init__(
        self,
        trader: str,
        url: str | None = None,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        md_queue_max: int = MD_QUEUE_MAX,
        credential: Credential | None = None,
    ) -> None:
        super().__init__(credential.trader if credential is not None else trader)
        base, named = strip_name(client_url(url))
        if credential is not None:  # the key's own login, whatever login the URL carried
            from transports.amqp.users import client_url as with_login

            base = with_login(base, credential.key_id, credential.amqp_password)
        self.url = base
        self._key = credential.key_id if credential is not None else ""
        self._refused = False  # the broker refused or deleted our user: every request is UNAUTHENTICATED from now on
        self.names = AmqpNames(named) if named else default_names()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.md_queue_max = md_queue_max
        self._session = secrets.token_hex(6)
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[tuple[str, bytes]]] = {}
        self._catalog = InstrumentsCache(self._instrument_list)
        self._connection: BackoffRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._headers: dict[str, Any] = {proto.TRADER_HEADER: self.trader}
        self._reply_name = self.names.reply_queue(self._key, self._session)
        # With keys, requests go through the command exchange (a key may publish nowhere else); else the default one.
        self._exchange = self.names.command_exchange if self._key else ""
        self._connecting: asyncio.Future[None] | None = None

    # ----------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        """Connect, declare the reply queue, fetch the instruments; ``NotConnected`` (and nothing left open) on failure."""
        if self._connection is not None:
            return
        if self._connecting is not None:
            await asyncio.shield(self._connecting)
            return
        connecting = self._connecting = asyncio.get_running_loop().create_future()
        try:
            connection = await self._login()
            try:
                channel = await connection.channel(publisher_confirms=True)
                if not self._key:  # a key may not declare the command queue: the exchange's server does
                    await channel.declare_queue(self.names.commands, durable=True)
                else:
                    connection.close_callbacks.add(self._on_close)
                reply_queue = await channel.declare_queue(self._reply_name, exclusive=True, auto_delete=True)
                await reply_queue.consume(self._on_reply, no_ack=True)
                self._connection, self._channel = connection, channel
                await self._catalog.refresh()  # the first round trip: is an exchange server there?
            except BaseException as exc:
                self._connection = self._channel = None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), self.connect_timeout)
                if isinstance(exc, NotConnected) or not isinstance(exc, Exception):
                    raise
                raise not_connected(self.url, exc) from exc
            connecting.set_result(None)
        except BaseException as exc:
            self._connecting = None
            if not connecting.done():
                connecting.set_exception(exc if isinstance(exc, Exception) else NotConnected("connect cancelled"))
                connecting.exception()  # retrieved: a caller waiting on it re-raises it
            raise

    async def _login(self) -> BackoffRobustConnection:
        """Connect; a keyed client retries a refused login until its connect timeout (a new key's user may be a sync away)."""
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                return await connect(self.url, self.connect_timeout, name=f"dex client {self.trader}")
            except AuthFailure:
                if not self._key or time.monotonic() + NEW_KEY_RETRY_S > deadline:
                    raise
                await asyncio.sleep(NEW_KEY_RETRY_S)

    async def close(self) -> None:
        self._stop_heartbeat()
        connection, self._connection = self._connection, None
        self._connecting = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(NotConnected("the client was closed"))
                future.exception()  # retrieved here: a caller that stopped waiting must not log it
        self._pending.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.connect_timeout)

    async def _ready(self) -> AbstractChannel:
        if self._channel is None or self._connection is None:
            await self.connect()
        assert self._channel is not None
        return self._channel

    def _on_close(self, _: object, exc: BaseException | None = None) -> None:
        """The broker closed our connection: if it deleted our user (a revoked key), fail every request in flight."""
        if not is_refusal(exc):
            return
        self._refused = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(refused_by_broker(self.url))
        connection = self._connection
        if connection is not None:  # no reconnecting with a revoked key
            asyncio.get_running_loop().create_task(self._close_quietly(connection))

    async def _close_quietly(self, connection: BackoffRobustConnection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), self.connect_timeout)

    # ----------------------------------------------------------------- RPC
    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is not None and not future.done():
            future.set_result((message.type or "", message.body))

    async def _call(self, kind: str, body: bytes = b"", *, persistent: bool = False, message_id: str | None = None) -> bytes:
        """Publish a request (waiting for the broker's confirm) and return the reply body; errors raised."""
        if self._refused:
            raise refused_by_broker(self.url)
        channel = await self._ready()
        corr = f"{self._session}-{next(self._ids)}"
        future: asyncio.Future[tuple[str, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[corr] = future
        try:
            properties = spec.Basic.Properties(
                message_type=kind,
                correlation_id=corr,
                reply_to=self._reply_name,
                message_id=message_id or corr,
                headers=self._headers,
                delivery_mode=2 if persistent else 1,  # 2: persistent (written to disk before the confirm)
                user_id=self._key or None,  # checked by the broker against our login: the server's proof of the key
            )
            try:
                publish = publish_raw(channel, body, self.names.commands, properties, self._exchange)
                await asyncio.wait_for(publish, self.connect_timeout)
            except TimeoutError:
                raise not_connected(self.url, f"the broker did not confirm a request within {self.connect_timeout:g}s") from None
            except NotConnected:
                raise
            except Exception as exc:  # a closed channel, a nack: not in the queue
                if self._refused or is_refusal(exc):
                    raise refused_by_broker(self.url) from None
                raise not_connected(self.url, exc) from exc
            try:
                reply_kind, reply = await asyncio.wait_for(future, self.timeout)
            except TimeoutError:
                raise NoReply(
                    f"no answer from the exchange on queue {self.names.commands} at RabbitMQ {self.url.rpartition('@')[2]} "
                    f"within {self.timeout:g}s (is dex-amqp running?)"
                ) from None
        finally:
            self._pending.pop(corr, None)
        if reply_kind == proto.ERROR:
            raise decode_error(reply)
        return reply

    # ------------------------------------------------------------ commands
    async def submit(self, commands: Sequence[Command]) -> Replies:
        if not commands:
            return []
        await self._ready()
        batch_id = next(self._ids)
        body, lookup = await self._catalog.encode(commands, batch_id)
        reply = await self._call(proto.BATCH, body, persistent=True, message_id=f"{self._session}-b{batch_id}")
        return await self._catalog.decode(reply, lookup)

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        await self._ready()
        message_id = f"{self._session}-o{next(self._ids)}"
        return lean.decode_outcomes(await self._call(proto.ORDERS, batch, persistent=True, message_id=message_id))

    # ------------------------------------------------------------- queries

    async def _instrument_list(self) -> bytes:
        return await self._call(proto.INSTRUMENTS)

    async def instruments(self) -> list[Instrument]:
        return await self._catalog.refresh()

    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        reply = await self._call(proto.BOOK, pb.BookRequest(symbol=symbol, depth=depth).SerializeToString())
        await self._catalog.know([symbol])
        return decode_book(reply, self._catalog.by_symbol.get)

    async def order(self, order_id: int) -> OrderView | None:
        reply = pb.OrderStatusReply.FromString(
            await self._call(proto.ORDER, pb.OrderStatusRequest(order_id=int(order_id)).SerializeToString())
        )
        if reply.HasField("order"):
            await self._catalog.know([reply.order.symbol])
        return decode_order_status(reply, self._catalog.by_symbol.get)

    async def stats(self) -> dict[str, Any]:
        return decode_stats(await self._call(proto.STATS))

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        request = pb.CancelOnDisconnectRequest(grace_ms=grace_ms).SerializeToString()
        return pb.CancelOnDisconnectReply.FromString(await self._call(proto.CANCEL_ON_DISCONNECT, request)).grace_ms

    async def ping(self) -> None:
        """One round trip to the server through the broker (``NotConnected`` if there is none)."""
        await self._call(proto.PING)

    async def snapshots(self, symbols: Sequence[str]) -> list[BookSnapshot]:
        """A fresh ``BookSnapshot`` of each symbol, over RPC (it also makes the server publish them)."""
        await self._catalog.know(symbols)
        reply = await self._call(proto.SNAPSHOT, pb.MarketDataRequest(symbols=list(symbols)).SerializeToString())
        try:
            frames = proto.unpack_frames(reply)
        except ValueError as exc:
            raise MalformedMessage(f"a snapshot reply that does not unpack: {exc}") from None
        return self._catalog.snapshots(frames)

    # --------------------------------------------------------- market data
    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        await self._ready()
        wanted = await self._catalog.subscribable(symbols)
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=False)
        arrived: asyncio.Queue[bytes] = asyncio.Queue(self.md_queue_max)
        try:
            exchange: aio_pika.abc.AbstractExchange | str = self.names.market_data  # with keys: declared by the server only
            if not self._key:
                exchange = await channel.declare_exchange(self.names.market_data, aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(
                f"{self.names.md_queue(self._key, self._session)}.{next(self._ids)}",
                exclusive=True,
                auto_delete=True,
                arguments={"x-max-length": self.md_queue_max, "x-overflow": "drop-head"},
            )
            for symbol in wanted:
                await queue.bind(exchange, routing_key=f"*.{routing_symbol(symbol)}")

            async def on_market_data(message: AbstractIncomingMessage) -> None:
                # Bounded here too: beyond md_queue_max the message is dropped, and md_seq shows the loss (Gap, snapshot).
                with contextlib.suppress(asyncio.QueueFull):
                    arrived.put_nowait(message.body)

            await queue.consume(on_market_data, no_ack=True)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await channel.close()
            raise not_connected(self.url, exc) from exc
        lookup = self._catalog.by_symbol.get

        async def arrivals() -> AsyncIterator[MarketData]:
            while True:
                yield decode_market_data(await arrived.get(), lookup)

        try:
            async for item in in_sequence(arrivals(), self.snapshots, wanted):  # bound above: snapshots now
                yield item
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.close(), self.connect_timeout)
