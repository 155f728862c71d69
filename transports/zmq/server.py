"""``dex-zmq``: the matching engine behind ZeroMQ (ROUTER for orders and queries, XPUB for market data).

Thin, like every server: frames -> ``proto_codec`` -> ``Gateway`` -> ``proto_codec``
-> frames. The frame layout is ``protocol.py`` (docs/zmq.md). Invariants:

* Every request gets exactly one reply while the client is connected: a
  ``ReplyBatch`` with the request's ``batch_id`` (an ``Error`` inside when the
  batch was refused whole: it did not decode, named an unknown symbol, had an
  inexact decimal, came from a connection that never said hello, or the
  gateway was overloaded), or ``[kind, corr, ...]`` / ``[b"error", corr, Error]``
  for the other requests. Malformed input never raises out of the reader.
* Identity, with ``--auth keys`` (docs/security.md, "ZeroMQ"): the ROUTER is
  a CURVE server; the ZAP handler (``curve.py``) lets in only a client key of
  a live key and names its key id as the connection's User-Id. Every request
  is read with its User-Id and resolved to the key's ``Principal`` again (a
  key revoked while connected is refused, UNAUTHENTICATED, within one
  keyring reload) and the request handler acts for it; ``hello`` only answers
  the key's trader. With ``--auth off`` (loopback only): a connection says
  ``hello`` with its trader once; the ROUTER's routing id of that connection
  is bound to the trader, and every command of every later batch is decoded
  as that trader's (the codec's ``trader`` argument, the same rule as
  ``bind_trader``). Identity, not authentication.
* Market data (XPUB) is public and stays plain (NULL): anyone may subscribe,
  as the issue asks; a subscriber that needs to be sure of a book reads its
  snapshot over the authenticated ROUTER.
* The hot path pays no ``zmq.asyncio``: the ROUTER is a sync socket drained
  from ``loop.add_reader`` with ``recv(NOBLOCK)`` (``loop_socket.py``); each
  batch is parsed once (``CommandBatch.FromString``) and handed to the codec
  as a message. Replies go out with ``NOBLOCK``; ROUTER_MANDATORY turns a
  client's full queue into a per-client outbox (in order, bounded) and a
  vanished client into a dropped reply, so one client never holds up another.
* Shutdown (SIGTERM/SIGINT): stop reading, let in-flight batches finish and
  their replies go out, close the sockets (bounded linger), then
  ``Gateway.stop()`` applies what is queued, fsyncs and writes a checkpoint.

``serve_zmq(gateway, settings)`` runs the same server inside the caller's
event loop (tests, the registry, a process serving several transports).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

import uvloop
import zmq
from google.protobuf.message import DecodeError, Message

from engine import ExchangeError, MalformedMessage
from transports.codec.proto_codec import error_reply, pb
from transports.core import legacy_flags
from transports.core.auth import Authenticator, add_auth_options, auth_from_options
from transports.core.gateway import Gateway
from transports.core.limits import LimitExceeded, Limits
from transports.core.loop_socket import LoopSocket
from transports.core.requests import Acting, RequestHandler, check_trader
from transports.core.server_cli import Listener, add_gateway_options, describe, gateway_options, run_process
from transports.core.signing import AuthFailure
from transports.zmq import protocol as proto
from transports.zmq.curve import ZapHandler, key_to_hex, make_curve_server, server_keys
from transports.zmq.publisher import MarketDataPublisher
from transports.zmq.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_PUB_PORT,
    ZmqServerSettings,
    tcp_endpoint,
    zmq_url,
)

TRANSPORT = "zmq"
log = logging.getLogger("dex-zmq")

_DRAIN_BUDGET = 512  # requests read per wake-up before other tasks (the gateway writer) get a turn
_RETRY_S = 0.002  # how soon a stalled client's outbox is retried

Frames = list[bytes]
Handler = Callable[[bytes, Frames, Acting], Sequence[bytes]]


def _bytes(message: Message) -> bytes:
    return message.SerializeToString()


class ZmqServer:
    """The ROUTER and XPUB sockets of one gateway, in the running event loop."""

    def __init__(self, gateway: Gateway, settings: ZmqServerSettings | None = None, context: zmq.Context[Any] | None = None) -> None:
        self.gateway = gateway
        self.settings = settings if settings is not None else ZmqServerSettings(port=0, pub_port=0, journal=None)
        self._own_context = context is None
        self.context: zmq.Context[Any] = context if context is not None else zmq.Context()
        self.auth: Authenticator | None = self.settings.auth
        limits = Limits(max_batch=self.settings.max_batch)
        self.requests = RequestHandler(gateway, TRANSPORT, limits, self.settings.allow_admin, auth=self.auth)
        self.server_key = ""  # the ROUTER's CURVE public key (Z85) with --auth keys
        self._zap: ZapHandler | None = None
        self._traders: dict[bytes, str] = {}  # routing id -> trader (insertion order: oldest first)
        self._outboxes: dict[bytes, deque[Frames]] = {}
        self._retry: asyncio.TimerHandle | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._handlers: dict[bytes, Handler] = {
            proto.HELLO: self._hello,
            proto.PING: lambda peer, body, acting: (),
            proto.INFO: lambda peer, body, acting: (self.pub_endpoint.encode(),),
            proto.BOOK: self._book,
            proto.ORDER: self._order,
            proto.INSTRUMENTS: lambda peer, body, acting: (_bytes(self.requests.instruments()),),
            proto.STATS: lambda peer, body, acting: (_bytes(self.requests.stats()),),
            proto.SNAPSHOT: self._snapshot,
            proto.CANCEL_ON_DISCONNECT: self._cancel_on_disconnect,
        }
        self.dropped_replies = 0  # to clients that vanished or stopped reading
        self.errors = 0  # requests answered with an Error
        self._router: zmq.Socket[Any] | None = None
        self._reader: LoopSocket | None = None
        self._publisher: MarketDataPublisher | None = None
        self.orders_endpoint = ""
        self.pub_endpoint = ""

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Bind both sockets (raises ``zmq.ZMQError`` if a port is taken) and start serving."""
        s = self.settings
        if self.auth is not None:
            # Bound before the ROUTER: libzmq lets a CURVE client in unchecked while no ZAP handler is bound.
            self._zap = ZapHandler(self.context, self.auth, self.requests.refused)
        router = self.context.socket(zmq.ROUTER)
        xpub = self.context.socket(zmq.XPUB)
        try:
            if self.auth is not None:
                keys = server_keys(self.auth.keyring.directory)
                make_curve_server(router, keys)
                router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no ZAP handler: no connection (never "let in")
                self.server_key = keys.public
            router.setsockopt(zmq.LINGER, 0)
            router.setsockopt(zmq.RCVHWM, s.router_rcvhwm)
            router.setsockopt(zmq.SNDHWM, s.router_sndhwm)
            router.setsockopt(zmq.SNDBUF, s.router_sndbuf)
            router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full or vanished client is an error we see, not a silent drop
            router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a client reconnecting with its routing id takes it over
            router.setsockopt(zmq.MAXMSGSIZE, s.max_message_bytes)
            router.setsockopt(zmq.HEARTBEAT_IVL, s.heartbeat_ivl_ms)
            router.setsockopt(zmq.HEARTBEAT_TIMEOUT, s.heartbeat_timeout_ms)
            xpub.setsockopt(zmq.LINGER, 0)
            xpub.setsockopt(zmq.SNDHWM, s.pub_sndhwm)
            xpub.setsockopt(zmq.MAXMSGSIZE, 4096)  # subscribers only send subscriptions
            self.orders_endpoint = _bind(router, s.host, s.port)
            self.pub_endpoint = _bind(xpub, s.host, s.pub_port)
        except zmq.ZMQError:
            router.close(0)
            xpub.close(0)
            if self._zap is not None:
                self._zap.close()
            raise
        self._router = router
        self._reader = LoopSocket(router, self._on_readable if self.auth is None else self._on_readable_keys)
        self._publisher = MarketDataPublisher(self.gateway, xpub)

    @property
    def url(self) -> str:
        """What a client connects to (``zmq://host:port``)."""
        host, _, port = self.orders_endpoint.removeprefix("tcp://").rpartition(":")
        url = zmq_url(host.strip("[]"), int(port))
        return f"{url}?key={key_to_hex(self.server_key)}" if self.server_key else url

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, answer what is in flight, close the sockets. The gateway is the caller's to stop."""
        if self._reader is None or self._router is None:
            return
        loop = asyncio.get_running_loop()
        self._reader.pause()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)
        # Replies still waiting for a slow client get the same grace as those already handed to ZeroMQ: a client
        # that stopped reading must not hold the shutdown for long.
        deadline = loop.time() + self.settings.close_linger_ms / 1000
        while self._outboxes and loop.time() < deadline:
            self._flush_outboxes()
            if self._outboxes:
                await asyncio.sleep(_RETRY_S)
        if self._outboxes:
            unsent = sum(len(box) for box in self._outboxes.values())
            self.dropped_replies += unsent
            self._outboxes.clear()
            log.warning("stopping with %d replies unsent to clients that are not reading", unsent)
        if self._retry is not None:
            self._retry.cancel()
        if self._publisher is not None:
            await self._publisher.close()
        # Replies already handed to ZeroMQ get close_linger_ms to reach connected clients.
        self._reader.close(self.settings.close_linger_ms)
        self._reader = None
        self._router = None
        if self._zap is not None:  # after the ROUTER: it must never run without its handler
            self._zap.close()
            self._zap = None
        if self._own_context:
            await loop.run_in_executor(None, self.context.term)

    def stats_dict(self) -> dict[str, Any]:
        return self.gateway.stats_dict()

    # ------------------------------------------------------------ receiving
    def _on_readable(self) -> None:
        router = self._router
        reader = self._reader
        if router is None or reader is None:
            return
        recv = router.recv_multipart
        traders = self._traders
        for _ in range(_DRAIN_BUDGET):
            try:
                frames = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._dispatch(frames, traders.get(frames[0]))
        reader.schedule()  # more may be waiting: come back after the other tasks had a turn

    def _on_readable_keys(self) -> None:
        """``_on_readable`` with keys: each request is read with its connection's User-Id (the key id ZAP named)."""
        router = self._router
        reader = self._reader
        if router is None or reader is None:
            return
        recv = router.recv
        for _ in range(_DRAIN_BUDGET):
            try:
                first = recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            frames = [first.bytes]
            while router.getsockopt(zmq.RCVMORE):
                frames.append(recv(zmq.NOBLOCK))
            try:
                acting = self._principal(first)
            except ExchangeError as exc:
                self._refuse(frames, exc)
                continue
            self._dispatch(frames, acting)
        reader.schedule()

    def _principal(self, frame: zmq.Frame) -> Acting:
        """The live key of the connection ``frame`` came on (``AuthFailure`` once it is revoked)."""
        assert self.auth is not None
        try:
            key_id = frame.get("User-Id")
        except zmq.ZMQError:
            key_id = ""
        if not isinstance(key_id, str) or not key_id:  # no ZAP handler vouched for it: never trusted
            raise AuthFailure("missing_credentials", "this connection was not authenticated (CURVE)")
        return self.auth.by_key_id(key_id)

    def _refuse(self, frames: Frames, error: ExchangeError) -> None:
        """Answer a request refused before any work: a batch by its id, any other request by its correlation."""
        peer = frames[0]
        self.errors += 1
        if len(frames) == 2:
            self._send(peer, [self.requests.refuse_batch(error, frames[1]).SerializeToString()])
            return
        self.requests.refused(error)
        corr = frames[2] if len(frames) >= 3 and len(frames[2]) <= proto.MAX_CORR else b""
        self._send(peer, [proto.ERROR, corr, _bytes(error_reply(error))])

    def _dispatch(self, frames: Frames, acting: Acting) -> None:
        try:
            if len(frames) == 2:
                self._on_batch(frames[0], frames[1], acting)
            else:
                self._on_request(frames, acting)
        except Exception:  # a bug in one request must not stop the server
            log.exception("internal error on a request of %d frames", len(frames))
            self._refuse_unattributable(frames[0], ExchangeError("internal error; see the server log"))

    def _on_batch(self, peer: bytes, frame: bytes, acting: Acting) -> None:
        try:
            self.requests.check_proto_batch(frame)  # bytes and command count, before anything is built
        except LimitExceeded as exc:
            self.errors += 1
            self._send(peer, [self.requests.refuse_batch(exc, frame).SerializeToString()])
            return
        except MalformedMessage:
            pass  # not a protobuf message at all: the parser says so below
        try:
            batch = pb.CommandBatch.FromString(frame)
        except DecodeError:
            self._refuse_unattributable(peer, MalformedMessage("a one-frame request must be a serialized CommandBatch"))
            return
        self._spawn(self._apply(peer, batch, acting))

    async def _apply(self, peer: bytes, batch: pb.CommandBatch, acting: Acting) -> None:
        reply = await self.requests.commands(batch, acting)
        if reply.HasField("error"):
            self.errors += 1
        self._send(peer, [reply.SerializeToString()])

    def _on_orders(self, peer: bytes, corr: bytes, body: Frames, acting: Acting) -> None:
        if len(body) != 1:
            self._refuse_unattributable(peer, MalformedMessage("an orders request is [orders, corr, OrderBatch]"), corr)
            return
        self._spawn(self._apply_orders(peer, corr, body[0], acting))

    async def _apply_orders(self, peer: bytes, corr: bytes, data: bytes, acting: Acting) -> None:
        reply = await self.requests.orders(data, acting)
        self._send(peer, [proto.ORDERS, corr, reply])

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def _refuse_unattributable(self, peer: bytes, error: ExchangeError, corr: bytes = b"") -> None:
        self.errors += 1
        self.requests.refused(error)
        self._send(peer, [proto.ERROR, corr, _bytes(error_reply(error))])

    def _on_request(self, frames: Frames, acting: Acting) -> None:
        peer = frames[0]
        if len(frames) < 3:
            self._refuse_unattributable(peer, MalformedMessage("a request is one CommandBatch frame, or [kind, corr, *body]"))
            return
        kind, corr = frames[1], frames[2]
        if len(corr) > proto.MAX_CORR:
            self._refuse_unattributable(peer, MalformedMessage(f"a correlation frame holds at most {proto.MAX_CORR} bytes"))
            return
        if kind == proto.ORDERS:
            self._on_orders(peer, corr, frames[3:], acting)
            return
        handler = self._handlers.get(kind)
        if handler is None:
            self._refuse_unattributable(peer, MalformedMessage(f"unknown request kind {kind[:32]!r}"), corr)
            return
        try:
            body = handler(peer, frames[3:], acting)
        except ExchangeError as exc:
            self._refuse_unattributable(peer, exc, corr)
            return
        self._send(peer, [kind, corr, *body])

    # ------------------------------------------------------------- requests
    def _hello(self, peer: bytes, body: Frames, acting: Acting) -> Sequence[bytes]:
        if self.auth is not None:  # the key names the trader: whatever name the client says is not asked
            trader, _ = self.requests.acting(acting)
            return (trader.encode(),)
        trader = check_trader(bytes(body[0]) if body else b"")
        traders = self._traders
        traders.pop(peer, None)
        traders[peer] = trader
        if len(traders) > self.settings.max_peers:
            del traders[next(iter(traders))]  # forgotten: its next batch is refused and its client says hello again
        return (trader.encode(),)

    def _book(self, peer: bytes, body: Frames, acting: Acting) -> Sequence[bytes]:
        return (_bytes(self.requests.book(body[0] if body else b"")),)

    def _order(self, peer: bytes, body: Frames, acting: Acting) -> Sequence[bytes]:
        return (_bytes(self.requests.order_status(body[0] if body else b"", acting)),)

    def _cancel_on_disconnect(self, peer: bytes, body: Frames, acting: Acting) -> Sequence[bytes]:
        return (_bytes(self.requests.cancel_on_disconnect(body[0] if body else b"", acting)),)

    def _snapshot(self, peer: bytes, body: Frames, acting: Acting) -> Sequence[bytes]:
        return [_bytes(m) for m in self.requests.snapshots(body[0] if body else b"")]

    # -------------------------------------------------------------- sending
    def _send(self, peer: bytes, frames: Frames) -> None:
        box = self._outboxes.get(peer)
        if box is not None:
            self._enqueue(peer, box, frames)
            return
        router = self._router
        if router is None:
            self.dropped_replies += 1
            return
        try:
            router.send_multipart([peer, *frames], zmq.NOBLOCK)
        except zmq.Again:  # this client's queue is at its HWM: it waits here, in order
            self._outboxes[peer] = deque([frames])
            self._schedule_retry()
        except zmq.ZMQError as exc:
            if exc.errno != errno.EHOSTUNREACH:
                log.error("cannot send a reply: %s", exc)
            self._forget(peer)  # the client is gone (EHOSTUNREACH); nobody is left to answer
        if self._reader is not None:
            self._reader.rearm()

    def _enqueue(self, peer: bytes, box: deque[Frames], frames: Frames) -> None:
        if len(box) >= self.settings.max_outbox:
            self.dropped_replies += 1
            if self.dropped_replies == 1 or self.dropped_replies % 10_000 == 0:
                log.warning("a client is not reading its replies; %d dropped so far", self.dropped_replies)
            return
        box.append(frames)

    def _forget(self, peer: bytes) -> None:
        self.dropped_replies += 1 + len(self._outboxes.pop(peer, ()))
        self._traders.pop(peer, None)

    def _schedule_retry(self) -> None:
        if self._retry is None and self._reader is not None:
            self._retry = self._reader.loop.call_later(_RETRY_S, self._flush_outboxes)

    def _flush_outboxes(self) -> None:
        self._retry = None
        router = self._router
        if router is None:
            return
        for peer, box in list(self._outboxes.items()):
            try:
                while box:
                    router.send_multipart([peer, *box[0]], zmq.NOBLOCK)
                    box.popleft()
            except zmq.Again:
                continue
            except zmq.ZMQError as exc:
                if exc.errno != errno.EHOSTUNREACH:
                    log.error("cannot send a reply: %s", exc)
                self._forget(peer)
                continue
            del self._outboxes[peer]
        if self._outboxes:
            self._schedule_retry()
        if self._reader is not None:
            self._reader.rearm()


def _bind(sock: zmq.Socket[Any], host: str, port: int) -> str:
    """Bind ``host:port`` (port 0: any free one); the endpoint actually bound."""
    if ":" in host:
        sock.setsockopt(zmq.IPV6, 1)
    sock.bind(tcp_endpoint(host, port or "*"))
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


@contextlib.asynccontextmanager
async def serve_zmq(gateway: Gateway, settings: ZmqServerSettings | None = None) -> AsyncIterator[str]:
    """Serve ``gateway`` over ZeroMQ in the running event loop; yields the client URL (``zmq://host:port``).

    The caller starts and stops the gateway. Port 0 (the default here) picks
    free ports; the market-data endpoint comes from the server (``info``).
    """
    server = ZmqServer(gateway, settings)
    server.start()
    try:
        yield server.url
    finally:
        await server.stop()


# ------------------------------------------------------------------ process
async def run_server(settings: ZmqServerSettings) -> int:
    """The ``dex-zmq`` process: recover, bind, serve until SIGTERM/SIGINT, stop cleanly."""

    async def listen(gateway: Gateway) -> Listener:
        server = ZmqServer(gateway, settings)
        try:
            server.start()
        except zmq.ZMQError as exc:
            raise OSError(f"{settings.host} ports {settings.port}/{settings.pub_port}: {exc}") from exc
        endpoints = f"orders {server.orders_endpoint}, market data {server.pub_endpoint}"
        where = f"{server.url} ({endpoints}; {describe(gateway, settings.journal, settings.fsync)})"
        return where, server.stop

    return await run_process(
        "dex-zmq", buffer=settings.buffer, journal=settings.journal, fsync=settings.fsync, symbols=settings.symbols, listen=listen
    )


def parse_args(argv: Sequence[str] | None = None) -> ZmqServerSettings:
    parser = argparse.ArgumentParser(prog="dex-zmq", description="The matching engine behind ZeroMQ (docs/zmq.md).")
    add_gateway_options(parser, default_host=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"orders and queries, ROUTER (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument(
        "--pub-port", type=int, default=DEFAULT_PUB_PORT, help=f"market data, PUB (default {DEFAULT_PUB_PORT}; 0 = any free)"
    )
    add_auth_options(parser)
    args = legacy_flags.parse_args(parser, argv)
    common = gateway_options(parser, args)
    for name in ("port", "pub_port"):
        if not 0 <= getattr(args, name) < 65536:
            parser.error(f"--{name.replace('_', '-')} must be a TCP port (0 = any free)")
    if args.port == args.pub_port and args.port != 0:
        parser.error("--port and --pub-port must differ")
    auth = auth_from_options(args, args.host)
    return replace(ZmqServerSettings(), port=args.port, pub_port=args.pub_port, auth=auth, **common)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_server(settings))


if __name__ == "__main__":
    raise SystemExit(main())
