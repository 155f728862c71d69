"""What every route group of the HTTP API shares: the gateway, the request handler, and reading a request.

One ``HttpContext`` per app (``app.create_app``). The route groups
(``routes_orders``, ``routes_market``, ``routes_operations``) take it and
stay thin: decode, submit, encode.

Invariants:

* The acting trader comes from one place, ``trader_of``: the ``X-Trader``
  header's bytes read as UTF-8 and checked by ``check_trader``, as on every
  wire.
* A body is bounded before it is read: a declared Content-Length over the
  limit is refused unread, a streamed body is refused at the first chunk that
  crosses it (``PayloadTooLarge``, LIMIT_EXCEEDED).
* ``add_instrument`` is refused (UNAUTHORIZED) unless the server allows admin
  commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

from engine import AddInstrument, Command, ExchangeError, MalformedMessage, OrderRejected, RejectReason
from transports.codec.json_codec import dumps, encode_event, loads
from transports.codec.status import http_status
from transports.core.gateway import Gateway
from transports.core.limits import Limits
from transports.core.requests import RequestHandler, check_trader
from transports.http.errors import PayloadTooLarge, Unidentified
from transports.http.settings import TRADER_HEADER, HttpServerSettings

TRANSPORT = "http"
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


@dataclass(slots=True)
class HttpContext:
    gateway: Gateway
    settings: HttpServerSettings
    requests: RequestHandler = field(init=False)
    max_batch: int = field(init=False)

    def __post_init__(self) -> None:
        self.requests = RequestHandler(self.gateway, TRANSPORT, Limits(max_batch=self.settings.max_batch), self.settings.allow_admin)
        self.max_batch = min(self.settings.max_batch, self.gateway.config.buffer)

    def trader_of(self, request: HTTPConnection) -> str:
        # Starlette reads header bytes as Latin-1 (losslessly): the name is those bytes read as UTF-8, as on every wire.
        raw = request.headers.get(TRADER_HEADER, "").encode("latin-1")
        if not raw.strip():
            raise Unidentified("the X-Trader header is required: it names the acting trader")
        return check_trader(raw)

    async def read_body(self, request: Request) -> bytes:
        max_body = self.settings.body_limit
        length = request.headers.get("content-length")
        if length is not None:
            if length.isdigit() and int(length) > max_body:
                raise PayloadTooLarge(f"body larger than {max_body} bytes")
            return await request.body()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge(f"body larger than {max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_object(self, request: Request, kind: str) -> dict[str, Any]:
        """The body as a command object of ``kind`` (``type`` may be omitted); an empty body is ``{}``."""
        raw = await self.read_body(request)
        data = loads(raw) if raw.strip() else {}
        if not isinstance(data, dict):
            raise MalformedMessage("the body must be a JSON object")
        if data.get("type", kind) != kind:
            raise MalformedMessage(f"this endpoint takes a {kind!r} command, not {data['type']!r}")
        return {**data, "type": kind}

    def check_admin(self, command: Command) -> None:
        if not self.settings.allow_admin and type(command) is AddInstrument:
            raise ExchangeError("add_instrument over HTTP needs a server started with --allow-admin", RejectReason.UNAUTHORIZED)

    async def apply_one(self, command: Command) -> Response:
        """One command's events, with the status of its reject if the engine rejected it."""
        self.check_admin(command)
        events = (await self.gateway.submit([command], TRANSPORT))[0]
        status = 200
        if events:
            first = events[0]
            if type(first) is OrderRejected:
                assert isinstance(first, OrderRejected)
                status = http_status(first.reason)
        lookup = self.gateway.instrument
        return Response(dumps({"events": [encode_event(e, lookup) for e in events]}), status_code=status, media_type=JSON)

    def instrument_or_404(self, symbol: str) -> None:
        if self.gateway.instrument(symbol) is None:
            raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)


def json_response(data: Any) -> Response:
    return Response(dumps(data), media_type=JSON)
