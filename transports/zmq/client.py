"""``ZmqClient``: the ``TraderClient`` for ``dex-zmq`` over one DEALER (orders, queries) and a SUB per market-data stream.

The server is ``url``, else ``$DEX_ZMQ_SERVER``, else zmq://127.0.0.1:5555.
``connect()`` says hello (binding the connection to this client's trader),
asks for the market-data endpoint and fetches the instruments, all three
pipelined in one round trip, within ``connect_timeout``: ZeroMQ connects
lazily and would otherwise wait for a server forever.

Invariants:

* Pipelining: every batch carries a fresh ``batch_id``; any number of
  ``submit`` calls may be in flight on the one DEALER, and each gets the
  ``ReplyBatch`` with its id. Queries use a correlation frame from the same
  counter, so ids never collide.
* Never hang: a request with no reply within ``timeout`` (``connect_timeout``
  while connecting) fails with ``NotConnected``. After such a failure the
  batch may or may not have been applied.
* No ``zmq.asyncio`` (``loop_socket.py``): the socket is drained from
  ``loop.add_reader``; a reply is parsed once (to find its id) in the reader
  and decoded in the awaiting task.
* A connection the server does not know (it restarted, or forgot the oldest
  of very many) gets its batch refused with UNAUTHORIZED, nothing applied:
  the client says hello again and sends that batch once more.
* Keys (docs/security.md, "ZeroMQ"): with a ``credential`` the DEALER is a
  CURVE client with the key's CURVE pair, trusting the server's public key
  (``server_key``, else the URL's ``?key=``, else the credential's
  ``extra["zmq_server_key"]``). The server knows the trader from the key; the
  ``hello`` only learns its name. A socket monitor watches the handshake: a
  server that refuses the key (ZAP), or wants CURVE from a client without a
  key, fails every waiting request with UNAUTHENTICATED at once and the
  DEALER is closed with what it still held (never sent later behind the
  caller's back); the next call connects again.
* Market data: a SUB socket subscribed to the symbols' topics; snapshots
  come from the ROUTER. Updates with ``md_seq`` <= the snapshot's are
  discarded; a jump in ``md_seq`` (ZeroMQ dropped messages at a high-water
  mark) or a ``Gap`` from the server yields ``Gap``, then a fresh snapshot,
  then the updates after it.

Errors (``engine`` hierarchy, never a ZeroMQ exception): ``NotConnected``,
``Overloaded`` (nothing applied; retry), ``MalformedMessage`` (the server
could not decode the input; ``reason`` says which rule), ``ExchangeError``
with ``UNAUTHORIZED``, ``UNAUTHENTICATED`` (the key was refused; ``AuthFailure``), ``RATE_LIMITED``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import zmq
from google.protobuf.message import DecodeError
from zmq.utils.monitor import parse_monitor_message

from engine import (
    BookDepth,
    Command,
    ExchangeError,
    Instrument,
    NotConnected,
    OrderView,
    RejectReason,
)
from transports.codec import lean
from transports.codec.proto_codec import (
    decode_book,
    decode_error,
    decode_instruments,
    decode_market_data,
    decode_order_status,
    decode_stats,
    encode_commands,
    pb,
)
from transports.core.client import Replies, TraderClient
from transports.core.instruments_cache import InstrumentsCache
from transports.core.keys import Credential
from transports.core.loop_socket import LoopSocket
from transports.core.marketdata import BookSnapshot, MarketData, in_sequence
from transports.core.signing import AuthFailure
from transports.zmq import protocol as proto
from transports.zmq.curve import EXTRA_SERVER_KEY, make_curve_client
from transports.zmq.settings import DEALER_HWM, SUB_RCVHWM, ZmqAddress, client_url, parse_url

_WATCHDOG_S = 0.1  # how often deadlines are checked while requests are in flight
_RETRY_S = 0.001  # how soon a send refused at the DEALER's HWM is retried
_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
)
# A CURVE server hangs up on a client without CURVE; when it hangs up before its greeting is read, the client sees
# only a broken pipe (no detail) and retries. A server without CURVE never does that to a client without it, so this
# many hang-ups in a row, with no handshake between, say the server requires CURVE (under load seen for 12 s).
_HANGUPS_MEAN_CURVE = 3
_monitors = itertools.count(1)


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Any]
    deadline: float


class ZmqClient(TraderClient):
    transport: ClassVar[str] = "zmq"

    def __init__(
        self,
        trader: str,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
        sub_rcvhwm: int = SUB_RCVHWM,
        credential: Credential | None = None,
        server_key: str | None = None,
    ) -> None:
        super().__init__(credential.trader if credential is not None else trader)
        self.credential = credential
        self.server_key = server_key  # Z85; None: from the URL or the credential
        self.url = client_url(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._hangups = 0  # handshakes the server broke off in a row (_HANGUPS_MEAN_CURVE)
        self.sub_rcvhwm = sub_rcvhwm
        self.pub_endpoint = ""
        self._address: ZmqAddress | None = None
        self._reader: LoopSocket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._outbox: deque[list[bytes]] = deque()  # sends refused at the HWM, in order
        self._retry: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._catalog = InstrumentsCache(self._instrument_list)
        self._connecting: asyncio.Future[None] | None = None
        self._streams: dict[LoopSocket, asyncio.Event] = {}
        self._monitor: LoopSocket | None = None

    # ----------------------------------------------------------- lifecycle
    def _unreachable(self, why: str) -> NotConnected:
        return NotConnected(f"not connected to the ZeroMQ server at {self.url} ({why})")

    async def connect(self) -> None:
        if self._reader is not None:
            if self._connecting is not None:
                await asyncio.shield(self._connecting)
            return
        try:
            self._address = parse_url(self.url)
        except ValueError as exc:
            raise self._unreachable(str(exc)) from None
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        sock: zmq.Socket[bytes] = context.socket(zmq.DEALER)
        try:
            self._secure(sock, self._address)
        except ExchangeError:
            sock.close(0)
            raise
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, DEALER_HWM)
        sock.setsockopt(zmq.RCVHWM, DEALER_HWM)
        # Our own routing id: a reconnect after a network blip keeps the server's trader binding.
        sock.setsockopt(zmq.ROUTING_ID, os.urandom(16))
        if ":" in self._address.host:
            sock.setsockopt(zmq.IPV6, 1)
        self._hangups = 0
        monitor_endpoint = f"inproc://dex-zmq-client-monitor-{os.getpid()}-{next(_monitors)}"
        sock.monitor(monitor_endpoint, _HANDSHAKE_EVENTS)
        monitor: zmq.Socket[bytes] = context.socket(zmq.PAIR)
        monitor.setsockopt(zmq.LINGER, 0)
        monitor.connect(monitor_endpoint)
        sock.connect(self._address.orders_endpoint)
        self._reader = LoopSocket(sock, self._on_readable)
        self._monitor = LoopSocket(monitor, self._on_monitor, self._reader.loop)
        self._connecting = self._reader.loop.create_future()
        deadline = self.connect_timeout
        hello = self._request(proto.HELLO, [self.trader.encode()], deadline)
        info = self._request(proto.INFO, [], deadline)
        listing = self._request(proto.INSTRUMENTS, [], deadline)
        try:
            await hello
            port = self._address.pub_port
            if port is None:
                endpoint = (await info)[0].decode()
                port = int(endpoint.rpartition(":")[2])
            else:
                info.cancel()
            self.pub_endpoint = self._address.pub_endpoint(port)
            self._catalog.by_symbol = {i.symbol: i for i in decode_instruments((await listing)[0])}
        except BaseException as exc:
            for step in (hello, info, listing):
                if not step.done():
                    step.cancel()
                elif not step.cancelled():
                    step.exception()  # retrieved: the first failure is the one raised
            if isinstance(exc, asyncio.CancelledError):
                self._connecting.cancel()
            else:
                self._connecting.set_exception(exc)
                self._connecting.exception()  # retrieved: nobody else may be waiting
            self._connecting = None
            await self.close()
            raise
        self._connecting.set_result(None)
        self._connecting = None

    async def close(self) -> None:
        self._stop_heartbeat()
        for stream, arrived in list(self._streams.items()):
            stream.close(0)
            arrived.set()  # a reader waiting on it finds the socket closed and raises NotConnected
        self._streams.clear()
        self._drop(self._unreachable("the client was closed"))

    def _drop(self, error: ExchangeError) -> None:
        """Close the DEALER with what it still holds unsent (LINGER 0) and fail every waiting request with ``error``."""
        reader, self._reader = self._reader, None
        monitor, self._monitor = self._monitor, None
        if reader is not None:
            if monitor is not None:
                reader.sock.disable_monitor()
            reader.close(0)
        if monitor is not None:
            monitor.close(0)
        for timer in (self._retry, self._watchdog):
            if timer is not None:
                timer.cancel()
        self._retry = self._watchdog = None
        self._outbox.clear()
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(error)

    def _secure(self, sock: zmq.Socket[bytes], address: ZmqAddress) -> None:
        """With a credential: make ``sock`` a CURVE client that trusts the server's key (``AuthFailure`` if none is known)."""
        credential = self.credential
        if credential is None:
            return
        server_key = self.server_key or address.server_key or credential.extra.get(EXTRA_SERVER_KEY)
        if not server_key:
            raise AuthFailure(
                "missing_credentials",
                "the server's CURVE public key is needed: zmq://host:port?key=<64 hex digits> (the server prints it), "
                "or the credential's extra['zmq_server_key']",
            )
        if not credential.curve_public or not credential.curve_secret:
            raise AuthFailure("missing_credentials", f"the credential of key {credential.key_id} has no CURVE key pair")
        make_curve_client(sock, credential.curve_public, credential.curve_secret, server_key)

    def _on_monitor(self) -> None:
        """A handshake failed: the server refused this client's key, or the client and the server disagree on CURVE."""
        monitor = self._monitor
        if monitor is None:
            return
        while True:
            try:
                event = parse_monitor_message(monitor.sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return
            error = self._handshake_error(int(event["event"]), int(event["value"]))
            if error is not None:
                self._drop(error)  # the DEALER would otherwise retry, and deliver what it holds if a later try passed
                return

    def _handshake_error(self, event: int, value: int) -> ExchangeError | None:
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._hangups = 0
            return None
        if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and self.credential is None:
            self._hangups += 1
            if self._hangups < _HANGUPS_MEAN_CURVE:
                return None
            return AuthFailure(
                "missing_credentials",
                f"the ZeroMQ server at {self.url} hung up on {self._hangups} handshakes: it requires CURVE, connect with a key",
            )
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            return AuthFailure("unknown_key", f"the ZeroMQ server at {self.url} refused this client's CURVE key (unknown or revoked)")
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH and self.credential is None:
            return AuthFailure("missing_credentials", f"the ZeroMQ server at {self.url} requires CURVE: connect with a key")
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return self._unreachable("the server does not use CURVE (is it started with --auth keys?)")
        if self.credential is not None and value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            return self._unreachable("the server did not prove the CURVE key this client trusts (check ?key=)")
        return None

    async def _ready(self) -> LoopSocket:
        if self._reader is None or self._connecting is not None:
            await self.connect()
        assert self._reader is not None
        return self._reader

    # ---------------------------------------------------------------- wire
    def _send(self, frames: list[bytes]) -> None:
        reader = self._reader
        if reader is None:
            raise self._unreachable("the client is closed")
        if self._outbox:
            self._outbox.append(frames)
            return
        try:
            reader.sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:  # the DEALER's queue is at its HWM: keep the order, retry soon
            self._outbox.append(frames)
            self._retry = reader.loop.call_later(_RETRY_S, self._flush)
        reader.rearm()

    def _flush(self) -> None:
        self._retry = None
        reader = self._reader
        if reader is None:
            return
        outbox = self._outbox
        try:
            while outbox:
                reader.sock.send_multipart(outbox[0], zmq.NOBLOCK)
                outbox.popleft()
        except zmq.Again:
            self._retry = reader.loop.call_later(_RETRY_S, self._flush)
        reader.rearm()

    def _expect(self, request_id: int, timeout: float) -> asyncio.Future[Any]:
        reader = self._reader
        assert reader is not None
        loop = reader.loop
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[request_id] = _Pending(future, loop.time() + timeout)
        if self._watchdog is None:
            self._watchdog = loop.call_later(_WATCHDOG_S, self._check_deadlines)
        return future

    def _check_deadlines(self) -> None:
        self._watchdog = None
        reader = self._reader
        if reader is None:
            return
        now = reader.loop.time()
        expired = [rid for rid, item in self._pending.items() if item.deadline <= now]
        for rid in expired:
            item = self._pending.pop(rid)
            if not item.future.done():
                item.future.set_exception(self._unreachable("no reply within the timeout"))
        if self._pending:
            self._watchdog = reader.loop.call_later(_WATCHDOG_S, self._check_deadlines)

    def _on_readable(self) -> None:
        reader = self._reader
        if reader is None:
            return
        recv = reader.sock.recv_multipart
        pending = self._pending
        while True:
            try:
                frames = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) == 1:
                try:
                    reply = pb.ReplyBatch.FromString(frames[0])
                except DecodeError:
                    continue  # not from a dex-zmq server; nothing to match it to
                item = pending.pop(reply.batch_id, None)
                if item is not None and not item.future.done():
                    item.future.set_result(reply)
            elif len(frames) >= 2 and frames[1]:
                item = pending.pop(int.from_bytes(frames[1], "big"), None)
                if item is not None and not item.future.done():
                    item.future.set_result(frames)
            # else: an error the server could not attribute to a request (it never comes from this client's frames)

    def _request(self, kind: bytes, body: list[bytes], timeout: float | None = None) -> asyncio.Future[list[bytes]]:
        """Send ``[kind, corr, *body]``; the future is the reply's body frames (an error reply raises)."""
        request_id = next(self._ids)
        reply = self._expect(request_id, self.timeout if timeout is None else timeout)
        self._send([kind, request_id.to_bytes(8, "big"), *body])
        loop = reply.get_loop()
        result: asyncio.Future[list[bytes]] = loop.create_future()

        def done(f: asyncio.Future[Any]) -> None:
            if result.done():  # its caller gave up (cancelled): whatever ends the reply now is read by nobody
                if not f.cancelled():
                    f.exception()  # read, so that asyncio does not log "exception was never retrieved"
                return
            if f.cancelled():
                result.cancel()
            elif (exc := f.exception()) is not None:
                result.set_exception(exc)
            else:
                frames: list[bytes] = f.result()
                if frames[0] == proto.ERROR:
                    result.set_exception(decode_error(frames[2] if len(frames) > 2 else b""))
                else:
                    result.set_result(frames[2:])

        reply.add_done_callback(done)
        return result

    async def _query(self, kind: bytes, body: list[bytes] | None = None) -> list[bytes]:
        await self._ready()
        return await self._request(kind, body or [])

    # ------------------------------------------------------------ commands
    async def submit(self, commands: Sequence[Command]) -> Replies:
        if not commands:
            return []
        await self._ready()
        batch_id = next(self._ids)
        frame, lookup = await self._catalog.encode(commands, batch_id)
        reply: pb.ReplyBatch = await self._batch(batch_id, frame)
        if reply.HasField("error"):
            error = decode_error(reply.error)
            if error.reason is not RejectReason.UNAUTHORIZED or self.credential is not None:
                raise error  # with a key the server never forgets who this is: UNAUTHORIZED is a real refusal
            # The server does not know this connection (it restarted, or forgot it): nothing was applied.
            await self._request(proto.HELLO, [self.trader.encode()])
            batch_id = next(self._ids)
            reply = await self._batch(batch_id, encode_commands(commands, lookup, batch_id).SerializeToString())
        return await self._catalog.decode(reply, lookup)

    async def submit_orders(self, batch: bytes) -> lean.Outcomes:
        await self._ready()
        try:
            return lean.decode_outcomes((await self._request(proto.ORDERS, [batch]))[0])
        except ExchangeError as exc:
            if exc.reason is not RejectReason.UNAUTHORIZED or self.credential is not None:
                raise
        # The server does not know this connection (it restarted, or forgot it): nothing was applied.
        await self._request(proto.HELLO, [self.trader.encode()])
        return lean.decode_outcomes((await self._request(proto.ORDERS, [batch]))[0])

    def _batch(self, batch_id: int, frame: bytes) -> asyncio.Future[pb.ReplyBatch]:
        future = self._expect(batch_id, self.timeout)
        self._send([frame])
        return future

    # ------------------------------------------------------------- queries

    async def _instrument_list(self) -> bytes:
        return (await self._query(proto.INSTRUMENTS))[0]

    async def instruments(self) -> list[Instrument]:
        return await self._catalog.refresh()

    async def book(self, symbol: str, depth: int = 10) -> BookDepth:
        frames = await self._query(proto.BOOK, [pb.BookRequest(symbol=symbol, depth=depth).SerializeToString()])
        await self._catalog.know([symbol])
        return decode_book(frames[0], self._catalog.by_symbol.get)

    async def order(self, order_id: int) -> OrderView | None:
        frames = await self._query(proto.ORDER, [pb.OrderStatusRequest(order_id=int(order_id)).SerializeToString()])
        reply = pb.OrderStatusReply.FromString(frames[0])
        if reply.HasField("order"):
            await self._catalog.know([reply.order.symbol])
        return decode_order_status(reply, self._catalog.by_symbol.get)

    async def stats(self) -> dict[str, Any]:
        return decode_stats((await self._query(proto.STATS))[0])

    async def _arm_cancel_on_disconnect(self, grace_ms: int) -> int:
        frames = await self._query(proto.CANCEL_ON_DISCONNECT, [pb.CancelOnDisconnectRequest(grace_ms=grace_ms).SerializeToString()])
        return pb.CancelOnDisconnectReply.FromString(frames[0]).grace_ms

    async def ping(self) -> None:
        """One round trip to the server (``NotConnected`` if there is no answer within ``connect_timeout``)."""
        await self._ready()
        await self._request(proto.PING, [], self.connect_timeout)

    async def snapshots(self, symbols: Sequence[str]) -> list[BookSnapshot]:
        """A fresh ``BookSnapshot`` of each symbol, from the ROUTER."""
        await self._catalog.know(symbols)
        frames = await self._query(proto.SNAPSHOT, [pb.MarketDataRequest(symbols=list(symbols)).SerializeToString()])
        return self._catalog.snapshots(frames)

    # --------------------------------------------------------- market data
    async def market_data(self, symbols: Sequence[str]) -> AsyncIterator[MarketData]:
        reader = await self._ready()
        wanted = await self._catalog.subscribable(symbols)
        sub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, self.sub_rcvhwm)
        for symbol in wanted:
            sub.setsockopt(zmq.SUBSCRIBE, proto.topic(symbol))
        if ":" in self.pub_endpoint.removeprefix("tcp://").rpartition(":")[0]:
            sub.setsockopt(zmq.IPV6, 1)
        sub.connect(self.pub_endpoint)
        arrived = asyncio.Event()
        stream = LoopSocket(sub, arrived.set, reader.loop)
        self._streams[stream] = arrived
        lookup = self._catalog.by_symbol.get

        async def arrivals() -> AsyncIterator[MarketData]:
            while True:
                try:
                    frames = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    arrived.clear()
                    await arrived.wait()
                    continue
                except zmq.ZMQError as exc:
                    raise self._unreachable(f"market-data stream closed: {exc}") from None
                if len(frames) == 2:
                    yield decode_market_data(frames[1], lookup)

        try:
            async for item in in_sequence(arrivals(), self.snapshots, wanted):  # subscribed above: snapshots now
                yield item
        finally:
            self._streams.pop(stream, None)
            stream.close(0)
