"""``dex-amqp``: the matching engine behind RabbitMQ (RPC on a durable queue, market data on a topic exchange).

Thin, like every server: message -> ``proto_codec`` -> ``Gateway`` -> ``proto_codec``
-> reply. The message layout is ``protocol.py`` (docs/amqp.md). Invariants:

* Every request that names a ``reply_to`` gets exactly one reply (while the
  broker and the client's reply queue are up): the answer, or ``type=error``
  with an ``Error``. Malformed input never raises out of the consumer.
* Order of application = order of delivery: the consumer hands each batch to
  ``Gateway.submit`` before its first ``await`` (aio-pika delivers each message
  as a task, started in delivery order), and the gateway is single-writer.
* A request is acknowledged only after its reply was published (and those
  of all requests delivered before it on its channel: acknowledgements go out
  in runs, ``multiple=True``, one per event-loop turn): a server or broker
  that dies in between leaves it in the durable queue, and it is delivered
  again. A redelivered batch goes to the gateway like any other: the
  engine's de-duplication window (docs/exactly-once.md) refuses its places'
  client order ids and answers its cancels, replaces and mass cancels that
  carry a request id with their first outcome, in this process or after a
  restart alike (no per-process reply cache).
* The broker connection is robust (``connection.py``): after a broker
  restart the queue, the exchange and the consumer are declared again and
  serving resumes; unacknowledged requests come back.
* With keys (``settings.auth``, docs/security.md "RabbitMQ"): every key is a
  broker user that may publish only to ``<name>.cmd`` and read only its own
  queues (``transports/amqp/users.py``); the broker checks each message's
  ``user_id`` against the login, and the server takes the principal from it
  (``Authenticator.by_key_id``), never from a header. A message without one,
  or of a key no longer live, is refused ``UNAUTHENTICATED`` before any other
  work; one whose ``reply_to`` is not the key's own reply queue is dropped.
* Market data: a symbol is published once somebody asked for its snapshot
  (every subscriber does, first), so nobody pays encoding for unread symbols.
* Shutdown (SIGTERM/SIGINT): cancel the consumer, let in-flight requests
  finish and reply, close the connection, then ``Gateway.stop()``.

``serve_amqp(gateway)`` runs the same server inside the caller's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import uvloop
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiormq import spec
from google.protobuf.message import Message

from engine import ExchangeError, MalformedMessage, RejectReason
from transports.amqp import protocol as proto
from transports.amqp.connection import BackoffRobustConnection, connect, publish_raw, strip_name
from transports.amqp.md_publisher import MarketDataPublisher
from transports.amqp.settings import (
    DEFAULT_JOURNAL,
    PREFETCH,
    AmqpNames,
    client_url,
    default_names,
    redact,
)
from transports.codec.lean import encode_refusal
from transports.codec.proto_codec import (
    error_reply,
)
from transports.core import legacy_flags
from transports.core.auth import Authenticator, Principal, add_auth_options, auth_from_options
from transports.core.gateway import Gateway
from transports.core.journal import FsyncPolicy
from transports.core.limits import Limits
from transports.core.requests import RequestHandler, check_trader
from transports.core.server_cli import Listener, add_gateway_options, describe, gateway_options, run_process
from transports.core.signing import AuthFailure

TRANSPORT = "amqp"
log = logging.getLogger("dex-amqp")

_DEFAULT_DEPTH = 10
_MAX_DEPTH = 1000

Acting = str | Principal  # who a request acts for: a name (--auth off) or a key's principal
Handler = Callable[[Acting, bytes], bytes]


@dataclass(frozen=True, slots=True)
class AmqpServerSettings:
    url: str | None = None  # None: $DEX_AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/
    name: str | None = None  # None: $DEX_AMQP_NAME, else "dex" (queue/exchange prefix)
    host: str = "127.0.0.1"  # where --metrics-port binds (the broker is where clients connect)
    buffer: int = 100_000
    journal: str | None = DEFAULT_JOURNAL
    fsync: FsyncPolicy = "batch"
    symbols: str = ""
    allow_admin: bool = False
    log_level: str = "info"
    max_batch: int = Limits().max_batch  # commands per batch (docs/limits.md)
    prefetch: int = PREFETCH
    auth: Authenticator | None = None  # None: --auth off (the 'trader' header names the trader; loopback only)
    broker_dir: str = "var/rabbitmq"  # with keys, dex-amqp's broker (scripts/rabbitmq.sh), whose users it sets


def _bytes(message: Message) -> bytes:
    return message.SerializeToString()


class AmqpServer:
    """The RPC consumer and the market-data publisher of one gateway, in the running event loop."""

    def __init__(self, gateway: Gateway, settings: AmqpServerSettings | None = None) -> None:
        self.gateway = gateway
        self.settings = settings or AmqpServerSettings(journal=None)
        base, named = strip_name(client_url(self.settings.url))
        self.broker_url = base
        chosen = self.settings.name or named
        self.names = AmqpNames(chosen) if chosen else default_names()
        self._lookup = gateway.instrument
        self.auth = self.settings.auth
        limits = Limits(max_batch=self.settings.max_batch)
        self.requests = RequestHandler(gateway, TRANSPORT, limits, self.settings.allow_admin, auth=self.auth)
        self._handlers: dict[str, Handler] = {
            proto.PING: lambda trader, body: b"",
            proto.BOOK: self._book,
            proto.ORDER: self._order,
            proto.INSTRUMENTS: lambda trader, body: _bytes(self.requests.instruments()),
            proto.STATS: lambda trader, body: _bytes(self.requests.stats()),
            proto.SNAPSHOT: self._snapshot,
            proto.CANCEL_ON_DISCONNECT: lambda trader, body: _bytes(self.requests.cancel_on_disconnect(body, trader or None)),
        }
        # Requests in delivery order, each with "answered" (see _settle): acknowledged in runs, multiple=True.
        self._unacked: deque[list[Any]] = deque()
        self._ack_scheduled = False
        self._poisoned: set[int] = set()  # ids of channels on which a reply could not be published
        self._inflight: set[asyncio.Task[None]] = set()
        self._connection: BackoffRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._publisher: MarketDataPublisher | None = None
        self.errors = 0  # requests answered with an Error
        self.dropped = 0  # requests without reply_to, replies that could not be published
        self.redelivered = 0  # requests the broker delivered again (applied again: the engine's window de-duplicates)
        self.misdirected = 0  # keyed requests dropped: their reply_to was not their key's own reply queue

    @property
    def url(self) -> str:
        """What a client connects to: the broker URL, with ``#<name>`` unless the name is the default."""
        return f"{self.broker_url}#{self.names.name}"

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect, declare the queue and the exchange, start consuming (``NotConnected`` if the broker is unreachable)."""
        self._connection = await connect(self.broker_url, name=f"dex-amqp server {self.names.name}")
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        self._channel = channel
        self._queue = await channel.declare_queue(self.names.commands, durable=True)
        if self.auth is not None:  # keys publish here only (not to the default exchange): bound to the command queue
            commands = await channel.declare_exchange(self.names.command_exchange, aio_pika.ExchangeType.DIRECT, durable=True)
            await self._queue.bind(commands, routing_key=self.names.commands)
        md = await channel.declare_exchange(self.names.market_data, aio_pika.ExchangeType.TOPIC, durable=True)
        self._publisher = MarketDataPublisher(self.gateway, md)
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming, answer what is in flight, close the connection. The gateway is the caller's to stop."""
        if self._connection is None:
            return
        broker_up = self._connection.connected.is_set()  # with the broker away, nothing below may wait for it
        if broker_up and self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), min(timeout, 3.0))
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout if broker_up else 1.0)
        self._settle()  # the acknowledgements of the last answers, now rather than on the next loop turn
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=min(timeout, 3.0) if broker_up else 0.5)
        if self._publisher is not None:
            await self._publisher.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._connection.close(), min(timeout, 3.0) if broker_up else 0.5)
        self._connection = None

    # ------------------------------------------------------------ receiving
    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            channel: object = message.channel
        except Exception:  # closed already: it will be delivered again; never acknowledged here
            channel = None
        entry = [message, False, channel is None, channel]  # message, finished, not to acknowledge, its channel
        self._unacked.append(entry)
        try:
            await self._handle(message)
        except Exception:  # a bug in one request must not stop the server
            log.exception("internal error on a %r request", message.type)
            with contextlib.suppress(Exception):
                await self._answer(message, proto.ERROR, _bytes(error_reply(ExchangeError("internal error; see the server log"))))
        finally:
            entry[1] = True
            self._schedule_acks()
            if task is not None:
                self._inflight.discard(task)

    def _mark_unanswered(self, message: AbstractIncomingMessage) -> None:
        for entry in self._unacked:
            if entry[0] is message:
                entry[2] = True
                return

    def _schedule_acks(self) -> None:
        if not self._ack_scheduled:
            self._ack_scheduled = True
            asyncio.get_running_loop().call_soon(self._settle)

    def _settle(self) -> None:
        """Acknowledge the run of finished requests at the head, with one ``basic.ack multiple=True`` per channel.

        Only a contiguous run from the oldest is acknowledged (``multiple`` covers
        every earlier delivery of that channel). A request whose reply could not
        be published is never acknowledged: it is delivered again; later
        requests of its channel are then acknowledged one by one.
        """
        self._ack_scheduled = False
        unacked = self._unacked
        last: AbstractIncomingMessage | None = None
        last_channel: object = None
        while unacked and unacked[0][1]:
            message, _, unanswered, channel = unacked.popleft()
            if unanswered or id(channel) in self._poisoned:
                if last is not None:
                    self._ack(last, multiple=True)
                    last = None
                if unanswered:
                    self._poisoned.add(id(channel))
                else:
                    self._ack(message, multiple=False)
                continue
            if last is not None and channel is not last_channel:
                self._ack(last, multiple=True)
            last, last_channel = message, channel
        if last is not None:
            self._ack(last, multiple=True)
        if len(self._poisoned) > 64:
            self._poisoned.clear()  # channels long gone (each reconnect makes new ones)

    def _ack(self, message: AbstractIncomingMessage, multiple: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._ack_up_to(message, multiple))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    @staticmethod
    async def _ack_up_to(message: AbstractIncomingMessage, multiple: bool) -> None:
        try:
            await message.ack(multiple=multiple)
        except Exception as exc:  # its channel closed: the broker requeues what it had not seen acknowledged
            log.warning("cannot acknowledge requests (%s)", exc)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        # Nothing before the gateway's submit may await: delivery order is application order.
        if not message.reply_to:
            self.dropped += 1  # nobody to answer, and never applied: it names no reply queue (acknowledged all the same)
            return
        kind = message.type or ""
        trader = self._trader(message)
        if self.auth is not None:
            if not isinstance(trader, ExchangeError) and not self._own_reply_queue(message, trader):
                self.misdirected += 1  # answering would write into a queue that is not the sender's
                return
            if isinstance(trader, ExchangeError) and kind not in (proto.BATCH, proto.ORDERS):
                self.requests.refused(trader)
                await self._refuse(message, trader)  # with keys, nothing is answered for a key not proved
                return
        if kind in (proto.BATCH, proto.ORDERS):
            if message.redelivered:
                self.redelivered += 1
            reply = await (self._batch if kind == proto.BATCH else self._orders)(message, trader)
            await self._answer(message, *reply)
            return
        handler = self._handlers.get(kind)
        if handler is None:
            await self._refuse(message, MalformedMessage(f"unknown request type {kind[:32]!r}"))
            return
        try:
            body = handler(trader if not isinstance(trader, ExchangeError) else "", message.body)
        except ExchangeError as exc:
            await self._refuse(message, exc)
            return
        await self._answer(message, kind, body)

    def _own_reply_queue(self, message: AbstractIncomingMessage, trader: Acting) -> bool:
        key_id = trader.key_id if isinstance(trader, Principal) else ""
        return bool(key_id) and (message.reply_to or "").startswith(self.names.reply_queue(key_id, ""))

    def _trader(self, message: AbstractIncomingMessage) -> Acting | ExchangeError:
        if self.auth is not None:
            if not message.user_id:  # the broker checked it against the login: the key's proof
                return AuthFailure("missing_credentials", "a request without user_id (the key id the broker checks)")
            try:
                return self.auth.by_key_id(message.user_id)
            except AuthFailure as exc:
                return exc
        value = (message.headers or {}).get(proto.TRADER_HEADER)
        if not isinstance(value, str | bytes) or not value.strip():
            return ExchangeError("name the trader in the 'trader' header", RejectReason.UNAUTHORIZED)
        try:
            return check_trader(value)
        except ExchangeError as exc:
            return exc

    async def _batch(self, message: AbstractIncomingMessage, trader: Acting | ExchangeError) -> tuple[str, bytes]:
        """Apply a batch; its reply (``batch``, ReplyBatch) or refusal (``error``, Error). No await before the submit."""
        if isinstance(trader, ExchangeError):
            if self.auth is not None:
                self.requests.refused(trader)
            return self._refusal(trader)
        reply = await self.requests.commands(message.body, trader)
        if reply.HasField("error"):
            self.errors += 1
            return proto.ERROR, _bytes(reply.error)
        return proto.BATCH, _bytes(reply)

    async def _orders(self, message: AbstractIncomingMessage, trader: Acting | ExchangeError) -> tuple[str, bytes]:
        """Apply a lean batch; its ``OutcomeBatch`` (a refusal inside). No await before the submit."""
        if isinstance(trader, ExchangeError):
            self.errors += 1
            if self.auth is not None:
                self.requests.refused(trader)
            return proto.ORDERS, encode_refusal(trader)
        return proto.ORDERS, await self.requests.orders(message.body, trader)

    def _refusal(self, error: ExchangeError) -> tuple[str, bytes]:
        self.errors += 1
        return proto.ERROR, _bytes(error_reply(error))

    async def _refuse(self, message: AbstractIncomingMessage, error: ExchangeError) -> None:
        self.errors += 1
        await self._answer(message, proto.ERROR, _bytes(error_reply(error)))

    async def _answer(self, message: AbstractIncomingMessage, kind: str, body: bytes) -> None:
        """Publish the reply, then acknowledge the request (unacknowledged, it comes back after a failure)."""
        channel = self._channel
        if channel is None:
            return
        properties = spec.Basic.Properties(message_type=kind, correlation_id=message.correlation_id, delivery_mode=1, message_id="r")
        try:
            await publish_raw(channel, body, message.reply_to or "", properties)
        except Exception as exc:  # the channel is gone: the request stays unacknowledged and is delivered again
            self.dropped += 1
            self._mark_unanswered(message)
            log.warning("cannot publish a reply (%s); the request will be delivered again", exc)

    # ------------------------------------------------------------- requests
    def _book(self, trader: Acting, body: bytes) -> bytes:
        return _bytes(self.requests.book(body))

    def _order(self, trader: Acting, body: bytes) -> bytes:
        return _bytes(self.requests.order_status(body, trader or None))

    def _snapshot(self, trader: Acting, body: bytes) -> bytes:
        wanted = self.requests.market_data_symbols(body)  # within the limits, repeats collapsed
        known = [s for s in wanted if self.gateway.instrument(s) is not None]
        if self._publisher is not None:
            # Before the snapshot, in the same step: every update after it is published.
            self._publisher.want(known)
        return proto.pack_frames([_bytes(m) for m in self.requests.snapshots(body)])


@contextlib.asynccontextmanager
async def serve_amqp(gateway: Gateway, settings: AmqpServerSettings | None = None) -> AsyncIterator[str]:
    """Serve ``gateway`` over RabbitMQ in the running event loop; yields the client URL (``amqp://...#name``).

    The caller starts and stops the gateway. Without settings, the broker is
    ``$DEX_AMQP_URL`` (else a process-wide ``LocalRabbitMQ``, ``local.py``) and
    the queue/exchange prefix is a fresh unique name, so that servers in one
    process or one test session never share a queue.
    """
    if settings is None:
        from transports.amqp.local import shared_broker_url

        url = await shared_broker_url()
        settings = AmqpServerSettings(url=url, name=f"dex-{secrets.token_hex(4)}", journal=None)
    server = AmqpServer(gateway, settings)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


# ------------------------------------------------------------------ process
async def run_server(settings: AmqpServerSettings) -> int:
    """The ``dex-amqp`` process: recover, connect, serve until SIGTERM/SIGINT, stop cleanly."""

    async def listen(gateway: Gateway) -> Listener:
        if settings.auth is not None:
            return await _listen_with_keys(gateway, settings, settings.auth)
        server = AmqpServer(gateway, settings)
        try:
            await server.start()
        except ExchangeError as exc:
            raise OSError(str(exc)) from exc
        where = (
            f"{redact(server.url)} (queue {server.names.commands}, market data exchange {server.names.market_data}; "
            f"{describe(gateway, settings.journal, settings.fsync)})"
        )
        return where, server.stop

    return await run_process(
        "dex-amqp", buffer=settings.buffer, journal=settings.journal, fsync=settings.fsync, symbols=settings.symbols, listen=listen
    )


async def _listen_with_keys(gateway: Gateway, settings: AmqpServerSettings, auth: Authenticator) -> Listener:
    """Serve on the broker of ``scripts/rabbitmq.sh`` (``settings.broker_dir``), whose users we set from the keyring."""
    from transports.amqp.broker import LocalRabbitMQ
    from transports.amqp.local import serve_with_users
    from transports.amqp.users import delete_guest

    state = Path(settings.broker_dir) / "broker.json"
    broker = LocalRabbitMQ.load(settings.broker_dir) if state.exists() else None
    if broker is None or not broker.running():
        raise OSError(f"--auth keys sets the broker's users: start it first (scripts/rabbitmq.sh start --dir {settings.broker_dir})")
    await asyncio.to_thread(delete_guest, broker.ctl)
    stack = contextlib.AsyncExitStack()
    name = settings.name or default_names().name
    # The vhost is the exchange's name: stable across restarts (its durable queue keeps unacknowledged requests).
    served = serve_with_users(gateway, auth, broker, replace(settings, name=name), vhost=name, remove_after=False)
    url = await stack.enter_async_context(served)
    where = f"{url} (keys from {auth.keyring.directory}, no guest; {describe(gateway, settings.journal, settings.fsync)})"
    return where, stack.aclose


def parse_args(argv: Sequence[str] | None = None) -> AmqpServerSettings:
    parser = argparse.ArgumentParser(prog="dex-amqp", description="The matching engine behind RabbitMQ (docs/amqp.md).")
    add_gateway_options(parser, what="over AMQP")
    parser.add_argument("--url", default=None, help="the broker (default $DEX_AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/)")
    parser.add_argument("--name", default=None, help="queue/exchange prefix on the broker (default $DEX_AMQP_NAME, else dex)")
    parser.add_argument("--prefetch", type=int, default=PREFETCH, help=f"requests held unacknowledged (default {PREFETCH})")
    parser.add_argument("--max-batch", type=int, default=10_000, help="commands per batch (default 10000)")
    parser.add_argument(
        "--broker-dir",
        default=os.environ.get("DEX_RABBITMQ_DIR", "var/rabbitmq"),
        help="with --auth keys: the broker started by scripts/rabbitmq.sh in DIR, whose users dex-amqp sets (default var/rabbitmq)",
    )
    add_auth_options(parser)
    args = legacy_flags.parse_args(parser, argv)
    common = gateway_options(parser, args)
    if args.prefetch < 1 or args.max_batch < 1:
        parser.error("--prefetch and --max-batch must be at least 1")
    auth = auth_from_options(args, urlsplit(client_url(args.url)).hostname or "127.0.0.1")  # where traders connect
    settings = replace(AmqpServerSettings(), url=args.url, name=args.name, prefetch=args.prefetch, max_batch=args.max_batch, **common)
    return replace(settings, auth=auth, broker_dir=args.broker_dir)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_server(settings))


if __name__ == "__main__":
    raise SystemExit(main())
