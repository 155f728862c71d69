"""``NatsClient``: the ``TraderClient`` for ``dex-nats`` over NATS core request/reply.

The server is ``url``, else ``$DEX_NATS_URL``, else nats://127.0.0.1:4222.
Invariants:

* Every request carries ``Dex-Trader``; a batch goes to ``dex.cmd.<SYMBOL>``
  of its first command, with a fresh ``batch_id``; the reply must carry it.
* With a ``credential`` (docs/security.md, "NATS"): the connection logs in
  as the key's NKEY user (its Ed25519 seed signs the broker's nonce), every
  request goes to the key's own subjects (``dex.cmd.<KEY>.<SYMBOL>``,
  ``dex.lean.<KEY>``, ``dex.q.<KEY>.<kind>``) and replies come to the key's
  inbox (``_INBOX.<KEY>.``). A broker that refuses the user (revoked, never
  issued) raises ``AuthFailure`` (``UNAUTHENTICATED``); ``connect`` tries the
  login again until ``connect_timeout`` first, since a key created a moment
  ago is a broker user only once the server has reloaded the broker's users.
* A batch larger than ``MAX_COMMANDS_PER_REQUEST`` goes as several requests,
  sent in order and pipelined; the replies are joined in order. Each part is
  applied whole or refused whole (the first refusal is raised; parts before
  it were applied).
* Never hang: no reply within ``timeout`` raises ``NotConnected`` (the batch
  may or may not have been applied); no responders raises ``NotConnected``.
* Market data: subscribe to ``dex.md.<SYMBOL>`` first (pending limits raised),
  then ask for snapshots; updates with ``md_seq`` <= the snapshot's are
  discarded; a jump in ``md_seq`` or a ``Gap`` yields ``Gap``, then a fresh
  snapshot, then the updates after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import AuthorizationError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from engine import (
    AddInstrument,
    BookDepth,
    Command,
    Instrument,
    MalformedMessage,
    NotConnected,
    OrderView,
    RejectReason,
)
from transports.codec import lean
from transports.codec.json_codec import InstrumentLookup
from transports.codec.proto_codec import (
    decode_book,
    decode_error,
    decode_market_data,
    decode_order_status,
    decode_stats,
    encode_commands,
    pb,
)
from transports.core.client import Replies, TraderClient
from transports.core.instruments_cache import InstrumentsCache
from transports.core.keys import Credential
from transports.core.marketdata import BookSnapshot, MarketData, in_sequence
from transports.core.signing import AuthFailure
from transports.nats.connection import ConnectionErrors, connect, refused_by_broker
from transports.nats.settings import (
    DEFAULT_PREFIX,
    ERROR_HEADER,
    MAX_COMMANDS_PER_REQUEST,
    PENDING_BYTES_LIMIT,
    PENDING_MSGS_LIMIT,
    TRADER_HEADER,
    Subjects,
    client_url,
)

NEW_KEY_RETRY_S = 0.25  # between logins of a key the broker refused while connecting (its user may be a reload away)


def _symbol_of(command: Command) -> str:
    """The symbol a command's subject names ("_" when the command names none, e.g. a cancel by id)."""
    if isinstance(command, AddInstrument):
        return command.instrument.symbol
    return str(getattr(command, "symbol", "") or "_")


class NatsClient(TraderClient):
    transport: ClassVar[str] = "nats"

    def __init__(
        self,
        trader: str,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
        prefix: str = DEFAULT_PREFIX,
        credential: Credential | None = None,
    ) -> None:
        super().__init__(credential.trader if credential is not None else trader)
        self.url = client_url(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.subjects = Subjects(prefix)
        self.errors = ConnectionErrors()
        self._nc: Client | None = None
        self._ids = itertools.count(1)
        self._headers = {TRADER_HEADER: self.trader}
        self._catalog = InstrumentsCache(self._instrument_list)
        self._connecting: asyncio.Lock | None = None
        self._key = credential.key_id if credential is not None else ""
        self._credential = credential
        # A keyed client's requests in flight: the broker cutting the key off (revoked) fails them at once.
        self._waiting: set[asyncio.Task[Any]] = set()
        self._cut: set[asyncio.Task[Any]] = set()
        if credential is not None:
            self.errors.on_refused = self._cut_off

    def _cut_off(self) -> None:
        """The broker refused our key: fail the requests in flight and stop reconnecting (a revoked key stays revoked)."""
        for task in self._waiting:
            if task not in self._cut:
                self._cut.add(task)
                task.cancel()
        nc = self._nc
        if nc is not None and not nc.is_closed:
            asyncio.get_running_loop().create_task(nc.close())

    def _connect_options(self) -> dict[str, Any]:
        """The NKEY login and inbox of a keyed client (the seed stays in nats-py's signing callback, never logged)."""
        if self._credential is None:
            return {}
        from transports.nats.users import inbox_prefix, user_seed  # nkeys: only a keyed client needs it

        return {"nkeys_seed_str": user_seed(self._credential), "inbox_prefix": inbox_prefix(self._key)}

    def _command_subject(self, symbol: str) -> str:
        return self.subjects.command_of(self._key, symbol) if self._key else self.subjects.command(symbol)

    def _query_subject(self, kind: str) -> str:
        return self.subjects.query_of(self._key, kind) if self._key else self.subjects.query(kind)

    # ----------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._nc is not None:
                return
            nc = await self._login()
            self._nc = nc
            try:
                await self._catalog.refresh()
            except BaseException:
                await self.close()
                raise

    async def _login(self) -> Client:
        """Connect; a keyed client retries a refused login until its connect timeout (a new key's user may be a reload away)."""
        deadline = time.monotonic() + self.connect_timeout
        while True:
            options = self._connect_options()
            try:
                nc = await connect(self.url, f"dex-trader {self.trader}", self.errors, timeout=self.connect_timeout, **options)
            except AuthFailure:
                if self._credential is None or time.monotonic() + NEW_KEY_RETRY_S > deadline:
                    raise
                await asyncio.sleep(NEW_KEY_RETRY_S)
                continue
            self.errors.refused = False  # refusals before this login are over
            return nc

    async def close(self) -> None:
        self._stop_heartbeat()
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):  # already closed, or the server is gone: nothing left to release
                await asyncio.wait_for(nc.close(), 5)

    async def _ready(self) -> Client:
        if self._nc is None:
            await self.connect()
        assert self._nc is not None
        return self._nc

    async def _request(self, subject: str, data: bytes, timeout: float | None = None) -> Msg:
        nc = await self._ready()
        if self.errors.refused and not nc.is_connected:
            raise refused_by_broker(self.url)
        task = asyncio.current_task() if self._key else None
        if task is not None:
            self._waiting.add(task)
        try:
            return await nc.request(subject, data, timeout=self.timeout if timeout is None else timeout, headers=self._headers)
        except asyncio.CancelledError:
            if task is None or task not in self._cut:
                raise
            self._cut.discard(task)
            task.uncancel()
            raise refused_by_broker(self.url) from None
        except NoRespondersError:
            raise NotConnected(f"no dex-nats server serves {subject} at {self.url}") from None
        except NatsTimeout:
            raise NotConnected(f"no reply on {subject} within the timeout ({self.url})") from None
        except Exception as exc:  # the connection closed or is reconnecting
            if isinstance(exc, MalformedMessage | NotConnected):
                raise
            if self.errors.refused or isinstance(
                nc.last_error, AuthorizationError
            ):  # the broker closed us for want of a live key (revoked since we connected)
                raise refused_by_broker(self.url) from None
            raise NotConnected(f"not connected to NATS at {self.url} ({type(exc).__name__}: {exc})") from None
        finally:
            if task is not None:
                self._waiting.discard(task)

    async def _query(self, kind: str, data: bytes = b"") -> list[bytes]:
        msg = await self._request(self._query_subject(kind), data)
        headers = msg.headers or {}
        if headers.get(ERROR_HEADER):
            raise decode_error(msg.data)
        parts = headers.get("Dex-Parts", "")
        if not parts:
            return [msg.data]
        out, at = [], 0
        for size in (int(p) for p in parts.split(",")):
            out.append(msg.data[at : at + size])
            at += size
        return out

    # ------------------------------------------------------------ commands
    async def submit(self, commands: Sequence[Command]) -> Replies:
        if not commands:
            return []
        await self._ready()
        lookup: InstrumentLookup = self._catalog.by_symbol.get
        chunks = [commands[i : i + MAX_COMMANDS_PER_REQUEST] for i in range(0, len(commands), MAX_COMMANDS_PER_REQUEST)]
        try:
            frames = [self._frame(chunk, lookup) for chunk in chunks]
        except MalformedMessage as exc:  # a symbol this client has not seen (yet): ask the server, once
            if exc.reason is not RejectReason.UNKNOWN_SYMBOL:
                raise
            lookup = await self._catalog.lookup_for(commands)
            frames = [self._frame(chunk, lookup) for chunk in chunks]
        # Pipelined: the requests leave in order on one connection, so they apply in order.
        futures = [asyncio.ensure_future(self._request(subject, frame)) for subject, _, frame in frames]
        try:
            messages = [await f for f in futures]
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()
        replies: Replies = []
        for (_, batch_id, _), msg in zip(frames, messages, strict=True):
            reply = pb.ReplyBatch.FromString(msg.data)
            if reply.batch_id != batch_id and not reply.HasField("error"):
                raise MalformedMessage(f"a reply to batch {reply.batch_id} came for batch {batch_id}")
            replies.extend(await self._catalog.decode(reply, lookup))
        return replies

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        """Lean order entry: one request on ``<prefix>.lean`` (a batch of 10,000 orders is about 300 kB)."""
        msg = await self._request(self.subjects.lean_of(self._key) if self._key else self.subjects.lean, batch)
        return lean.decode_outcomes(msg.data)

    def _frame(self, chunk: Sequence[Command], lookup: InstrumentLookup) -> tuple[str, int, bytes]:
        batch_id = next(self._ids)
        return self._command_subject(_symbol_of(chunk[0])), batch_id, encode_commands(chunk, lookup, batch_id).SerializeToString()

    # ------------------------------------------------------------- queries

    async def _instrument_list(self) -> bytes:
        return (await self._query("instruments"))[0]

    async def instruments(self) -> list[Instrument]:
        return await self._catalog.refresh()

    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        data = (await self._query("book", pb.BookRequest(symbol=symbol, depth=depth).SerializeToString()))[0]
        await self._catalog.know([symbol])
        return decode_book(data, self._catalog.by_symbol.get)

    async def order(self, order_id: int) -> OrderView | None:
        data = (await self._query("order", pb.OrderStatusRequest(order_id=int(order_id)).SerializeToString()))[0]
        reply = pb.OrderStatusReply.FromString(data)
        if reply.HasField("order"):
            await self._catalog.know([reply.order.symbol])
        return decode_order_status(reply, self._catalog.by_symbol.get)

    async def stats(self) -> dict[str, Any]:
        msg = await self._request(self._query_subject("stats"), b"")
        if (msg.headers or {}).get(ERROR_HEADER):
            raise decode_error(msg.data)
        out = decode_stats(msg.data)
        out["nats_slow_consumers"] = int((msg.headers or {}).get("Dex-Slow-Consumers", "0"))
        return out

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        data = (await self._query("cancel_on_disconnect", pb.CancelOnDisconnectRequest(grace_ms=grace_ms).SerializeToString()))[0]
        return pb.CancelOnDisconnectReply.FromString(data).grace_ms

    async def ping(self) -> None:
        await self._request(self._query_subject("ping"), b"", self.connect_timeout)

    async def snapshots(self, symbols: Sequence[str]) -> list[BookSnapshot]:
        await self._catalog.know(symbols)
        parts = await self._query("snapshot", pb.MarketDataRequest(symbols=list(symbols)).SerializeToString())
        return self._catalog.snapshots(parts)

    # --------------------------------------------------------- market data
    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        nc = await self._ready()
        wanted = await self._catalog.subscribable(symbols)
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def arrived(msg: Msg) -> None:
            queue.put_nowait(msg)

        subs = [
            await nc.subscribe(
                self.subjects.market_data(s), cb=arrived, pending_msgs_limit=PENDING_MSGS_LIMIT, pending_bytes_limit=PENDING_BYTES_LIMIT
            )
            for s in wanted
        ]
        lookup = self._catalog.by_symbol.get

        async def arrivals() -> AsyncIterator[MarketData]:
            while True:
                if self._nc is None:
                    raise NotConnected("the client was closed")
                yield decode_market_data((await queue.get()).data, lookup)

        try:
            await nc.flush(max(1, round(self.connect_timeout)))  # the subscriptions are in place before the snapshots are taken
            async for item in in_sequence(arrivals(), self.snapshots, wanted):
                yield item
        finally:
            for sub in subs:
                with contextlib.suppress(Exception):  # the connection is closed already
                    await sub.unsubscribe()
