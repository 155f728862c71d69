"""``dex-nats``: the matching engine behind NATS core request/reply (subjects in ``settings.py``).

Thin, like every server: message -> ``proto_codec`` -> ``Gateway`` ->
``proto_codec`` -> reply. Invariants:

* Every command request gets exactly one reply: a ``ReplyBatch`` with the
  request's ``batch_id`` (an ``Error`` inside when the batch was refused
  whole: no ``Dex-Trader`` header, did not decode, unknown symbol, overloaded).
  Malformed input never raises out of a subscription callback.
* Identity with ``--auth off``: the ``Dex-Trader`` header names the trader;
  every command is decoded as that trader's (the codec's ``trader``
  argument). Identity, not authentication (as ZeroMQ's hello).
* With keys (``settings.auth``): the broker authenticates each connection as
  a key's NKEY user and lets it publish only on its own request subjects
  (``transports/nats/users.py``); the server takes the principal from the
  subject's key id (``Authenticator.by_key_id``), never from a header, and
  refuses a request of a key no longer live (``UNAUTHENTICATED``) before any
  other work, or one whose reply subject is not the key's own inbox (dropped).
  A nats-server we start gets the keyring's users and reloads them when the
  keyring changes; a broker we did not start must require authentication.
* Order: one subscription (``dex.cmd.>``) takes every batch; callbacks run in
  arrival order and each hands its batch to the gateway before the next one
  is read, so one client's batches apply in the order it sent them.
* Market data: updates go to ``dex.md.<SYMBOL>`` with the gateway's
  ``md_seq``; a ``Gap`` from the hub goes out too. Snapshots come by request
  (``dex.q.snapshot``). NATS tells a publisher nothing about interest, so by
  default (``--market-data on-demand``) a symbol is published from its first
  snapshot request on (the hub subscription is made before that snapshot is
  taken, so every later update goes out): nobody pays the encoding of a
  symbol nobody reads. ``--market-data all`` publishes every listed symbol.
* ``dex.stats`` carries the gateway counters every second; slow-consumer
  events on our connection are counted (``ConnectionErrors``) and travel in
  the ``Dex-Slow-Consumers`` header of every stats message and reply.

``serve_nats(gateway)`` runs the same server inside the caller's loop; with
no URL it starts a private nats-server (JetStream, temp dir, free port) and
stops it by PID afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvloop
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from engine import ExchangeError, MalformedMessage
from transports.codec.lean import encode_refusal
from transports.codec.market_bytes import protobuf_bytes
from transports.codec.proto_codec import (
    encode_refused,
    encode_stats,
    error_reply,
)
from transports.core import legacy_flags
from transports.core.auth import Authenticator, Principal, add_auth_options, auth_from_options
from transports.core.gateway import Gateway
from transports.core.keys import RELOAD_CHECK_S
from transports.core.limits import Limits
from transports.core.marketdata import BookSnapshot, MarketData, Subscription
from transports.core.requests import RequestHandler, check_trader
from transports.core.server_cli import Listener, add_gateway_options, describe, gateway_options, run_process
from transports.core.signing import AuthFailure
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.local import NatsServerProcess
from transports.nats.settings import (
    DEFAULT_PREFIX,
    ERROR_HEADER,
    PENDING_BYTES_LIMIT,
    PENDING_MSGS_LIMIT,
    TRADER_HEADER,
    Subjects,
    client_url,
)
from transports.nats.users import BrokerUsers, inbox_prefix

TRANSPORT = "nats"
SLOW_HEADER = "Dex-Slow-Consumers"
log = logging.getLogger("dex-nats")

_DEFAULT_DEPTH = 10
_MAX_DEPTH = 1000
_STATS_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class NatsServerSettings:
    url: str | None = None
    prefix: str = DEFAULT_PREFIX
    name: str = ""
    host: str = "127.0.0.1"
    buffer: int = 100_000
    journal: str | None = None
    fsync: str = "batch"
    symbols: str = ""
    allow_admin: bool = False
    log_level: str = "info"
    max_batch: int = Limits().max_batch  # commands per batch (docs/limits.md)
    market_data: str = "on-demand"  # "all" symbols, symbols someone took a snapshot of ("on-demand"), or "off"
    start_nats: bool = False  # no NATS answers at the URL: start the bundled one (JetStream, nats_dir)
    nats_dir: str = "data/nats-server"
    auth: Authenticator | None = None  # None: --auth off (the Dex-Trader header names the trader; loopback only)


Query = Callable[[Msg, "str | Principal | None"], Awaitable[Sequence[bytes]]]


def _bytes(message: Message) -> bytes:
    return message.SerializeToString()


def trader_of(msg: Msg) -> str | None:
    """The trader a request acts for with ``--auth off`` (``Dex-Trader`` header), checked by the handler; None if absent."""
    trader = (msg.headers or {}).get(TRADER_HEADER)
    return check_trader(trader) if trader else None


class Misdirected(Exception):
    """A keyed request whose reply subject is not its key's inbox: answering it would write into another's inbox."""


class NatsServer:
    """The subscriptions and publishers of one gateway on one NATS connection."""

    def __init__(self, gateway: Gateway, nc: Client, errors: ConnectionErrors, settings: NatsServerSettings | None = None) -> None:
        self.gateway = gateway
        self.nc = nc
        self.errors = errors
        self.settings = settings or NatsServerSettings()
        self.subjects = Subjects(self.settings.prefix)
        self.name = self.settings.name or f"dex-nats-{socket.gethostname()}-{os.getpid()}"
        self._lookup = gateway.instrument
        self.auth = self.settings.auth
        limits = Limits(max_batch=self.settings.max_batch)
        self.requests = RequestHandler(gateway, TRANSPORT, limits, self.settings.allow_admin, auth=self.auth)
        self._queries: dict[str, Query] = {
            "ping": self._ping,
            "book": self._book,
            "order": self._order,
            "instruments": self._instruments,
            "stats": self._stats,
            "snapshot": self._snapshot,
            "cancel_on_disconnect": self._cancel_on_disconnect,
        }
        self._subs: list[NatsSubscription] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._md_tasks: dict[str, asyncio.Task[None]] = {}  # symbol -> its publisher
        self.refused = 0
        self.published = 0
        self.misdirected = 0  # keyed requests dropped: their reply subject was not their key's inbox

    def acting(self, msg: Msg, kind: str) -> str | Principal | None:
        """Who ``msg`` acts for: with keys, the principal of the key its subject names (``AuthFailure`` if none is live)."""
        if self.auth is None:
            return trader_of(msg)
        key_id = self.subjects.key_of(msg.subject, kind)
        if not msg.reply.startswith(inbox_prefix(key_id) + "."):
            raise Misdirected(msg.reply)
        return self.auth.by_key_id(key_id)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._subs.append(
            await self.nc.subscribe(
                self.subjects.commands_all,
                cb=self._on_batch,
                pending_msgs_limit=PENDING_MSGS_LIMIT,
                pending_bytes_limit=PENDING_BYTES_LIMIT,
            )
        )
        keyed = self.auth is not None  # with keys every request subject names its key
        lean, queries = (
            (self.subjects.lean_keyed, self.subjects.queries_keyed) if keyed else (self.subjects.lean, self.subjects.queries_all)
        )
        self._subs.append(
            await self.nc.subscribe(
                lean, cb=self._on_orders, pending_msgs_limit=PENDING_MSGS_LIMIT, pending_bytes_limit=PENDING_BYTES_LIMIT
            )
        )
        self._subs.append(
            await self.nc.subscribe(
                queries, cb=self._on_query, pending_msgs_limit=PENDING_MSGS_LIMIT, pending_bytes_limit=PENDING_BYTES_LIMIT
            )
        )
        await self.nc.flush()
        loop = asyncio.get_running_loop()
        if self.settings.market_data == "all":
            self._want_market_data([i.symbol for i in self.gateway.instruments])
        self._background.append(loop.create_task(self._publish_stats(), name="dex-nats stats"))

    async def stop(self, timeout: float = 10.0) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        background = [*self._background, *self._md_tasks.values()]
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        self._md_tasks.clear()
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)

    def stats_dict(self) -> dict[str, Any]:
        return {**self.gateway.stats_dict(), "nats_slow_consumers": self.errors.slow_consumers}

    def _headers(self) -> dict[str, str]:
        return {SLOW_HEADER: str(self.errors.slow_consumers)}

    # ------------------------------------------------------------- commands
    async def _on_batch(self, msg: Msg) -> None:
        if msg.reply:  # a command must be a request: without a reply subject nobody could be answered
            self._spawn(self._apply(msg))

    async def _apply(self, msg: Msg) -> None:
        try:
            acting = self.acting(msg, "cmd")
        except Misdirected:
            self.misdirected += 1
            return
        except ExchangeError as exc:  # the trader header is malformed, or the key is not live
            self.requests.refused(exc)
            reply = encode_refused(exc)
        else:
            reply = await self.requests.commands(msg.data, acting)
        if reply.HasField("error"):
            self.refused += 1
        with contextlib.suppress(Exception):  # the client is gone or we are reconnecting: its request times out
            await self.nc.publish(msg.reply, reply.SerializeToString())

    async def _on_orders(self, msg: Msg) -> None:
        if msg.reply:
            self._spawn(self._apply_orders(msg))

    async def _apply_orders(self, msg: Msg) -> None:
        try:
            acting = self.acting(msg, "lean")
        except Misdirected:
            self.misdirected += 1
            return
        except ExchangeError as exc:
            self.requests.refused(exc)
            data = encode_refusal(exc)
        else:
            data = await self.requests.orders(msg.data, acting)
        with contextlib.suppress(Exception):
            await self.nc.publish(msg.reply, data)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # A task per batch: gateway.submit queues the batch before its first await, so order holds.
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -------------------------------------------------------------- queries
    async def _on_query(self, msg: Msg) -> None:
        if not msg.reply:
            return
        kind = msg.subject.rpartition(".")[2]
        handler = self._queries.get(kind)
        try:
            acting = self.acting(msg, "q")
            if handler is None:
                raise MalformedMessage(f"unknown query {kind[:32]!r}")
            parts = await handler(msg, acting)
            headers = self._headers()
            headers["Dex-Parts"] = ",".join(str(len(p)) for p in parts)
            await self.nc.publish(msg.reply, b"".join(parts), headers=headers)
        except Misdirected:
            self.misdirected += 1
        except ExchangeError as exc:
            self.refused += 1
            with contextlib.suppress(Exception):
                await self.nc.publish(msg.reply, _bytes(error_reply(exc)), headers={ERROR_HEADER: "1"})
        except Exception:
            log.exception("internal error answering %s", msg.subject)
            with contextlib.suppress(Exception):
                error = ExchangeError("internal error; see the server log")
                await self.nc.publish(msg.reply, _bytes(error_reply(error)), headers={ERROR_HEADER: "1"})

    async def _ping(self, msg: Msg, acting: str | Principal | None) -> Sequence[bytes]:
        return (b"",)

    async def _instruments(self, msg: Msg, acting: str | Principal | None) -> Sequence[bytes]:
        return (_bytes(self.requests.instruments()),)

    async def _stats(self, msg: Msg, acting: str | Principal | None) -> Sequence[bytes]:
        return (_bytes(encode_stats(self.stats_dict())),)

    async def _book(self, msg: Msg, acting: str | Principal | None) -> Sequence[bytes]:
        return (_bytes(self.requests.book(msg.data)),)

    async def _order(self, msg: Msg, acting: str | Principal | None) -> Sequence[bytes]:
        return (_bytes(self.requests.order_status(msg.data, acting)),)

    async def _cancel_on_disconnect(self, msg: Msg, acting: str | Principal | None) -> Sequence[bytes]:
        return (_bytes(self.requests.cancel_on_disconnect(msg.data, acting)),)

    async def _snapshot(self, msg: Msg, acting: str | Principal | None) -> Sequence[bytes]:
        if self.settings.market_data == "on-demand":
            # Before the snapshot, so every later update goes out; unknown or repeated symbols are refused below.
            wanted = self.requests.market_data_symbols(msg.data)  # within the limits, repeats collapsed
            self._want_market_data([s for s in wanted if self.gateway.instrument(s) is not None])
        return [_bytes(m) for m in self.requests.snapshots(msg.data)]

    # ------------------------------------------------------ market data, stats
    def _want_market_data(self, symbols: Sequence[str]) -> None:
        """Publish ``symbols`` from now on (synchronously: an update after a snapshot taken next is published)."""
        for symbol in symbols:
            if symbol in self._md_tasks or self.gateway.instrument(symbol) is None:
                continue
            sub = self.gateway.subscribe([symbol])
            task = asyncio.get_running_loop().create_task(self._pump(sub), name=f"dex-nats market data {symbol}")
            self._md_tasks[symbol] = task

    async def _pump(self, sub: Subscription) -> None:
        try:
            while True:
                item = await sub.next()
                try:
                    await self._publish(item)
                    while (more := sub.poll()) is not None:
                        await self._publish(more)
                except Exception:  # a bug or a reconnect must not end market data for everyone
                    log.exception("market data: cannot publish %r", item)
        finally:
            self.gateway.unsubscribe(sub)

    async def _publish(self, item: MarketData) -> None:
        if isinstance(item, BookSnapshot):
            return  # subscribers ask for snapshots
        payload = protobuf_bytes(item, self._lookup)
        await self.nc.publish(self.subjects.market_data(item.symbol), payload)
        self.published += 1

    async def _publish_stats(self) -> None:
        while True:
            await asyncio.sleep(_STATS_INTERVAL_S)
            if self.settings.market_data == "all" and len(self._md_tasks) != len(self.gateway.instruments):
                self._want_market_data([i.symbol for i in self.gateway.instruments])  # a new listing
            with contextlib.suppress(Exception):
                await self.nc.publish(self.subjects.stats, _bytes(encode_stats(self.stats_dict())), headers=self._headers())
                await self.nc.publish(
                    self.subjects.nodes,
                    json.dumps(
                        {"name": self.name, "role": "server", "host": socket.gethostname(), "pid": os.getpid(), "ttl": 3.0}
                    ).encode(),
                )


async def connect_exchange(url: str, errors: ConnectionErrors, users: BrokerUsers | None) -> Client:
    """The exchange's connection: as its own NKEY user with keys, on a broker that must then require authentication."""
    options: dict[str, Any] = {} if users is None else {"nkeys_seed_str": users.exchange_seed}
    nc = await connect(url, "dex-nats", errors, **options)
    if users is not None and not getattr(nc, "_server_info", {}).get("auth_required"):
        with contextlib.suppress(Exception):
            await nc.close()
        raise OSError(
            f"the NATS server at {url} lets anyone connect: with --auth keys it must have the keyring's users "
            "(a nats-server dex-nats starts has them; else python -m transports.nats.users, docs/security.md)"
        )
    return nc


async def keep_users(process: NatsServerProcess) -> None:
    """Reload ``process``'s users whenever the keyring changes (checked every ``RELOAD_CHECK_S``): a revoked key is cut off."""
    while True:
        await asyncio.sleep(RELOAD_CHECK_S)
        try:
            if process.sync_users():
                log.info("nats-server users reloaded from the keyring (pid %d)", process.pid)
        except Exception:  # a keyring or signal failure must not stop serving; the server still refuses per request
            log.exception("cannot reload the nats-server users")


@contextlib.asynccontextmanager
async def serve_nats(gateway: Gateway, settings: NatsServerSettings | None = None) -> AsyncIterator[str]:
    """Serve ``gateway`` over NATS in the running loop; yields the NATS URL clients use.

    With no ``settings.url`` a private nats-server (JetStream, a temp dir, a
    free loopback port) is started for the purpose and stopped by PID after;
    with ``settings.auth`` it has the keyring's users, reloaded on change.
    """
    settings = settings or NatsServerSettings()
    users = BrokerUsers(settings.auth.keyring, settings.prefix) if settings.auth is not None else None
    with contextlib.ExitStack() as stack:
        url = settings.url
        process: NatsServerProcess | None = None
        if url is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="dex-nats-"))
            process = NatsServerProcess(workdir, users=users)
            await asyncio.get_running_loop().run_in_executor(None, process.start)
            stack.callback(process.stop)
            url = process.url
        errors = ConnectionErrors()
        nc = await connect_exchange(url, errors, users)
        server = NatsServer(gateway, nc, errors, settings)
        watcher = asyncio.get_running_loop().create_task(keep_users(process)) if process is not None and users else None
        try:
            await server.start()
            yield url
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await server.stop()
            with contextlib.suppress(Exception):
                await nc.close()


# ------------------------------------------------------------------ process
async def run_server(settings: NatsServerSettings) -> int:
    """The ``dex-nats`` process: recover, connect, serve until SIGTERM/SIGINT, stop cleanly."""
    url = client_url(settings.url)
    users = BrokerUsers(settings.auth.keyring, settings.prefix) if settings.auth is not None else None

    async def listen(gateway: Gateway) -> Listener:
        nonlocal url
        errors = ConnectionErrors()
        process: NatsServerProcess | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            nc = await connect_exchange(url, errors, users)
        except ExchangeError as exc:
            if not settings.start_nats or isinstance(exc, AuthFailure):  # a broker answered: it is not ours to replace
                raise OSError(str(exc)) from None
            parsed = urlsplit(url)
            process = NatsServerProcess(settings.nats_dir, host=parsed.hostname or "127.0.0.1", port=parsed.port or 4222, users=users)
            await asyncio.get_running_loop().run_in_executor(None, process.start)
            print(f"dex-nats: started nats-server (JetStream) at {process.url}, pid {process.pid}, data {process.store_dir}", flush=True)
            url = process.url
            nc = await connect_exchange(url, errors, users)
            if users is not None:
                watcher = asyncio.get_running_loop().create_task(keep_users(process))
        server = NatsServer(gateway, nc, errors, settings)
        await server.start()

        async def close() -> None:
            if watcher is not None:
                watcher.cancel()
            await server.stop()
            with contextlib.suppress(Exception):
                await nc.close()
            if process is not None:
                process.stop()

        keyed = "<KEY>." if users is not None else ""
        where = f"{url} (subjects {server.subjects.prefix}.cmd.{keyed}<SYMBOL>, {server.subjects.prefix}.md.<SYMBOL>; "
        return where + describe(gateway, settings.journal, settings.fsync) + ")", close

    return await run_process(
        "dex-nats",
        buffer=settings.buffer,
        journal=settings.journal,
        fsync=settings.fsync,  # type: ignore[arg-type]
        symbols=settings.symbols,
        listen=listen,
    )


def parse_args(argv: Sequence[str] | None = None) -> NatsServerSettings:
    parser = argparse.ArgumentParser(prog="dex-nats", description="The matching engine behind NATS request/reply (docs/nats.md).")
    add_gateway_options(parser, what="over NATS")
    parser.add_argument("--nats", default=None, help="NATS server URL (default $DEX_NATS_URL, else nats://127.0.0.1:4222)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"subject prefix (default {DEFAULT_PREFIX})")
    parser.add_argument(
        "--market-data",
        choices=("on-demand", "all", "off"),
        default="on-demand",
        help="publish every symbol, or (default) each symbol from its first snapshot request on",
    )
    parser.add_argument("--start-nats", action="store_true", help="if no NATS answers at the URL, start the bundled nats-server there")
    parser.add_argument("--nats-dir", default="data/nats-server", help="data directory of a nats-server started by --start-nats")
    add_auth_options(parser)
    args = legacy_flags.parse_args(parser, argv)
    common = gateway_options(parser, args)
    broker = urlsplit(client_url(args.nats).split(",")[0]).hostname or "127.0.0.1"
    return NatsServerSettings(
        auth=auth_from_options(args, broker),  # the broker's address: where traders connect
        url=args.nats,
        prefix=args.prefix,
        market_data=args.market_data,
        start_nats=args.start_nats,
        nats_dir=args.nats_dir,
        **common,
    )


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_server(settings))


if __name__ == "__main__":
    raise SystemExit(main())
