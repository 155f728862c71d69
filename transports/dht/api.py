"""The node's HTTP API: our binary API (``/v1/...``, protobuf through ``proto_codec``) and Grenache's JSON RPC (``POST /``).

Thin: bytes -> codec -> ``Replica.submit`` (writes: replicated, sequenced by
the owner) or the local ``Gateway`` (reads: this replica's copy, which may be
behind the owner by the entries not yet applied here) -> codec -> bytes.
Invariants: every request gets one answer; input that does not decode is a
``MALFORMED_MESSAGE`` error (HTTP 400) and nothing of it is applied.

Who acts: with an ``Authenticator`` (``--auth keys``), every request that acts
for a trader is a signed request (``signed.py``), verified by this node before
it is decoded or proposed to the replicated log; its ``Principal`` goes to the
request handler, which binds every command to the key's trader, checks the
admin role and the key's limits. A refusal is ``UNAUTHENTICATED`` (HTTP 401)
with its cause, counted. With ``--auth off`` (loopback only) a batch is bound
to the trader named by the ``X-Trader`` header (Grenache: the payload's
``trader``).
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from engine import AddInstrument, Command, ExchangeError, MalformedMessage, RejectReason
from transports.codec import json_codec
from transports.codec.json_views import encode_depth
from transports.codec.lean import encode_refusal
from transports.codec.proto_codec import (
    encode_book,
    encode_instruments,
    encode_market_data,
    encode_order_status,
    encode_refused,
    encode_stats,
    error_reply,
)
from transports.codec.status import http_status
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway, Replies
from transports.core.limits import LimitExceeded, Limits
from transports.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from transports.core.metrics import metrics_registry
from transports.core.metrics import render as render_metrics
from transports.core.requests import Acting, RequestHandler, check_trader
from transports.core.signing import AuthFailure
from transports.dht.httpd import Request, Response
from transports.dht.replica import Replica
from transports.dht.signed import verified

log = logging.getLogger("dex-node.api")

PROTO = "application/x-protobuf"
MAX_DEPTH = 1000
STATS_BARRIER_S = 2.0  # how long /v1/stats waits for the group to commit its read barrier


def _batch_status(reason: RejectReason) -> int:
    """HTTP status of a refused batch: input that never decoded, over a limit, unauthenticated or over its key's rate;
    else 200 (the error is inside)."""
    return http_status(reason) if reason in _STATUS_REFUSALS else 200


_STATUS_REFUSALS = frozenset(
    {RejectReason.MALFORMED_MESSAGE, RejectReason.LIMIT_EXCEEDED, RejectReason.UNAUTHENTICATED, RejectReason.RATE_LIMITED}
)


def frame(message: bytes) -> bytes:
    """One market-data frame on the stream: 4-byte big-endian length, then the message."""
    return struct.pack(">I", len(message)) + message


def _error(exc: ExchangeError) -> Response:
    return Response(http_status(exc.reason), error_reply(exc).SerializeToString(), PROTO)


def _trader(request: Request) -> str:
    raw = request.headers.get("x-trader", "").encode("latin-1")  # the header's bytes (read as Latin-1): UTF-8, as on every wire
    if not raw.strip():
        raise ExchangeError("name the trader in the X-Trader header", RejectReason.UNAUTHORIZED)
    return check_trader(raw)


def _int(request: Request, name: str, default: int | None = None) -> int:
    text = request.query.get(name)
    if text is None:
        if default is None:
            raise MalformedMessage(f"missing query parameter {name!r}")
        return default
    try:
        return int(text)
    except ValueError:
        raise MalformedMessage(f"{name} must be an integer") from None


def _grenache_reply(message: list[Any], compressed: bool) -> Response:
    body = orjson.dumps(message)
    return Response(200, gzip.compress(body, 1) if compressed else body, "application/json")


class NodeApi:
    def __init__(
        self,
        gateway: Gateway,
        replica: Replica,
        *,
        allow_admin: bool = False,
        service: str = "dex:exchange",
        auth: Authenticator | None = None,
    ) -> None:
        self.gateway = gateway
        self.replica = replica
        self.allow_admin = allow_admin and auth is None  # with keys, only an admin key may administer
        self.auth = auth
        self.service = service
        self.peers: Callable[[], Awaitable[list[str]]] | None = None  # the discovery's lookup, when there is one
        self._lookup = gateway.instrument
        self.errors = 0

        async def replicate(commands: list[Command], transport: str, record: bytes | None) -> Replies:
            return await replica.submit(commands)  # the replicated log is the journal here

        self._requests = RequestHandler(gateway, "dht", Limits(), allow_admin, replicate, auth=auth)
        self._metrics = metrics_registry(gateway)  # this replica's gateway: every node applies every command
        self._routes = {
            ("GET", "/v1/book"): self._book,
            ("GET", "/v1/order"): self._order,
            ("GET", "/v1/instruments"): self._instruments,
            ("GET", "/v1/snapshot"): self._snapshot,
            ("GET", "/v1/cluster"): self._cluster,
            ("GET", "/v1/applied"): self._applied,
            ("POST", "/v1/cancel-on-disconnect"): self._cancel_on_disconnect,
        }

    async def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/v1/batch":
            return await self._batch(request)
        if request.method == "POST" and request.path == "/v1/lean":
            return await self._lean(request)
        if request.method == "POST" and request.path == "/":
            return await self._grenache(request)
        if request.method == "GET" and request.path == "/metrics":
            return Response(200, render_metrics(self._metrics), METRICS_CONTENT_TYPE)
        if request.method == "GET" and request.path == "/v1/stats":
            return Response(200, await self._stats(), PROTO)
        if request.method == "GET" and request.path == "/v1/peers":
            found = await self.peers() if self.peers is not None else []
            return Response(200, orjson.dumps(sorted(found)), "application/json")
        if request.method == "GET" and request.path == "/v1/md":
            try:
                return self._market_data(request)
            except ExchangeError as exc:
                return _error(exc)
        route = self._routes.get((request.method, request.path))
        if route is None:
            return Response(404, error_reply(MalformedMessage(f"no route {request.method} {request.path[:64]}")).SerializeToString(), PROTO)
        try:
            return Response(200, route(request), PROTO)
        except ExchangeError as exc:
            self.errors += 1
            return _error(exc)

    # ------------------------------------------------------------- writes
    def _acting(self, request: Request) -> Acting:
        """Who ``request`` acts for: the principal its signature proves (``--auth keys``), else its ``X-Trader``."""
        if self.auth is None:
            return _trader(request)
        try:
            return verified(self.auth, request)
        except AuthFailure as exc:
            self._requests.refused(exc)
            raise

    async def _batch(self, request: Request) -> Response:
        """A ``CommandBatch`` in, a ``ReplyBatch`` out, through the request handler (limits before decoding)."""
        try:
            trader = self._acting(request)
        except ExchangeError as exc:
            self.errors += 1
            return Response(_batch_status(exc.reason), encode_refused(exc, 0).SerializeToString(), PROTO)
        reply = await self._requests.commands(request.body, trader)
        if reply.HasField("error"):
            self.errors += 1
            return Response(_batch_status(RejectReason(reply.error.code)), reply.SerializeToString(), PROTO)
        return Response(200, reply.SerializeToString(), PROTO)

    async def _lean(self, request: Request) -> Response:
        """Lean order entry (docs/wire-schema.md): an ``OrderBatch`` in, an ``OutcomeBatch`` out, refusals inside."""
        try:
            trader = self._acting(request)
        except ExchangeError as exc:
            self.errors += 1
            return Response(200, encode_refusal(exc), PROTO)
        return Response(200, await self._requests.orders(request.body, trader), PROTO)

    async def _grenache(self, request: Request) -> Response:
        """Grenache RPC: ``[rid, key, payload]`` -> ``[rid, error or null, result]`` (always HTTP 200, JSON)."""
        rid: Any = None
        compressed = request.headers.get("grc-compress", "none") == "gzip"
        try:
            try:
                body = self._inflate(request.body) if compressed else request.body
                self._requests.check_json_batch(body)  # bytes, and the values parsing would build, before it does
                message = orjson.loads(body)
            except (orjson.JSONDecodeError, OSError, EOFError, zlib.error):
                raise MalformedMessage("the body must be JSON [rid, key, payload]") from None
            if not isinstance(message, list) or len(message) != 3 or not isinstance(message[2], dict):
                raise MalformedMessage("the body must be JSON [rid, key, payload]")
            rid, key, payload = message
            if key != self.service:
                raise MalformedMessage(f"this node serves {self.service!r}, not {str(key)[:64]!r}")
            result = await self._grenache_action(payload, request)
        except ExchangeError as exc:
            self.errors += 1
            if isinstance(exc, LimitExceeded):
                self._requests.refused(exc)
            return _grenache_reply([rid, f"ERR_{exc.reason.name}: {exc.message}", None], compressed)
        return _grenache_reply([rid, None, result], compressed)

    def _inflate(self, body: bytes) -> bytes:
        """A gzip body, inflated to at most the request limit: a small body may not unpack to gigabytes."""
        bound = self._requests.limits.max_request_bytes
        inflater = zlib.decompressobj(wbits=31)  # gzip framing
        out = inflater.decompress(body, bound + 1)
        if len(out) > bound:
            raise LimitExceeded(f"a request inflates to at most {bound} bytes", "max_request_bytes")
        return out

    async def _grenache_action(self, payload: dict[str, Any], request: Request) -> Any:
        action = payload.get("action")
        if action == "submit":
            return await self._grenache_submit(payload, request)
        if action == "book":
            symbol = str(payload.get("symbol", ""))
            instrument = self.gateway.instrument(symbol)
            depth = self.gateway.depth(symbol, min(int(payload.get("depth") or 10), MAX_DEPTH))
            if depth is None or instrument is None:
                raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
            return encode_depth(depth, instrument)
        if action == "cluster":
            return self.replica.status()
        raise MalformedMessage("action must be submit, book or cluster")

    async def _grenache_submit(self, payload: dict[str, Any], request: Request) -> Any:
        """Grenache ``submit``: signed like any other request with ``--auth keys`` (the payload's ``trader`` is then
        ignored: the key's trader acts); the admin role and the key's limits as in the request handler."""
        acting: Acting
        if self.auth is not None:
            acting = self._acting(request)
        else:
            trader = payload.get("trader")
            if not isinstance(trader, str) or not trader.strip():
                raise ExchangeError("submit needs a trader", RejectReason.UNAUTHORIZED)
            acting = check_trader(trader)
        admitted = None
        try:
            admitted = self._requests.admit(acting)
            name, admin = self._requests.acting(acting)
            commands = json_codec.decode_commands(payload.get("commands"), self._lookup, name)
            if not commands:
                raise MalformedMessage("an empty batch")
            self._requests.check_count(len(commands))
            if not admin and any(type(c) is AddInstrument for c in commands):
                raise ExchangeError(self._requests.admin_refusal, RejectReason.UNAUTHORIZED)
            replies = await self.replica.submit(commands)
        except ExchangeError as exc:
            if exc.reason in (RejectReason.RATE_LIMITED, RejectReason.UNAUTHORIZED):
                self._requests.refused(exc)  # refused for who asked, as the request handler counts them
            raise
        finally:
            self._requests.release(admitted)
        return [json_codec.encode_events(events, self._lookup) for events in replies]

    def _cancel_on_disconnect(self, request: Request) -> bytes:
        return self._requests.cancel_on_disconnect(request.body, self._acting(request)).SerializeToString()

    # -------------------------------------------------------------- reads
    def _book(self, request: Request) -> bytes:
        symbol = request.query.get("symbol", "")
        depth = self.gateway.depth(symbol, max(1, min(_int(request, "depth", 10), MAX_DEPTH)))
        if depth is None:
            raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        return encode_book(depth, self._lookup).SerializeToString()

    def _order(self, request: Request) -> bytes:
        acting = self._acting(request)
        try:
            admitted = self._requests.admit(acting)
        except ExchangeError as exc:
            self._requests.refused(exc)
            raise
        try:
            trader, _ = self._requests.acting(acting)
            view = self.gateway.order_status(trader, _int(request, "id"))
        finally:
            self._requests.release(admitted)
        return encode_order_status(view, self._lookup).SerializeToString()

    def _instruments(self, request: Request) -> bytes:
        return encode_instruments(self.gateway.instruments).SerializeToString()

    async def _stats(self) -> bytes:
        """The counters once this node has applied everything the group committed before the request: a client
        that reads them after its orders were acknowledged by other nodes sees those orders counted. Without a
        majority (a partition, an election) it waits at most ``STATS_BARRIER_S``, then answers with its own view."""
        try:
            await self.replica.barrier(STATS_BARRIER_S)
        except ExchangeError as exc:
            log.warning("stats from this node's own view: %s", exc.message)
        return encode_stats(self.gateway.stats_dict()).SerializeToString()

    def _snapshot(self, request: Request) -> bytes:
        symbol = request.query.get("symbol", "")
        try:
            snapshot = self.gateway.marketdata.snapshot(symbol)
        except KeyError:
            raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL) from None
        return encode_market_data(snapshot, self._lookup).SerializeToString()

    def _cluster(self, request: Request) -> bytes:
        return orjson.dumps(self.replica.status())

    def _applied(self, request: Request) -> bytes:
        """How many entries this node applied, the digest of that sequence, and the digest after the first ``at``."""
        sequence = self.replica.sequence
        at = _int(request, "at", sequence.count)
        digest_at = sequence.digest_at(at)
        return orjson.dumps(
            {"count": sequence.count, "digest": sequence.digest.hex(), "at": at, "digest_at": digest_at.hex() if digest_at else None}
        )

    def _market_data(self, request: Request) -> Response:
        symbols = self._requests.snapshot_symbols([s for s in request.query.get("symbols", "").split(",") if s])
        for symbol in symbols:
            if self.gateway.instrument(symbol) is None:
                raise MalformedMessage(f"unknown symbol {symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        subscription = self.gateway.subscribe(symbols)
        gateway, lookup = self.gateway, self._lookup

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for item in subscription:
                    yield frame(encode_market_data(item, lookup).SerializeToString())
            finally:
                gateway.unsubscribe(subscription)

        return Response(200, content_type=PROTO, stream=stream())
