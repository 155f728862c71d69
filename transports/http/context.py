"""What every route group of the HTTP API shares: the gateway, the request handler, and reading a request.

One ``HttpContext`` per app (``app.create_app``). The route groups
(``routes_orders``, ``routes_market``, ``routes_operations``) take it and
stay thin: decode, submit, encode.

Invariants:

* The acting trader comes from one place, ``acting``: with an authenticator
  (``--auth keys``), the ``Principal`` of the request's signature
  (``transports.http.signed``; ``X-Trader`` is ignored); without one, the
  ``X-Trader`` header's bytes read as UTF-8 and checked by ``check_trader``,
  as on every wire. ``trader_of`` and ``trader_name`` are its trader's name,
  for routes that bind commands and queries to it.
* A body is bounded before it is read: a declared Content-Length over the
  limit is refused unread, a streamed body is refused at the first chunk that
  crosses it (``PayloadTooLarge``, LIMIT_EXCEEDED).
* ``add_instrument`` is refused (UNAUTHORIZED) unless the request may
  administer: a key with the admin role, or with ``--auth off`` a server
  started with ``--allow-admin``.
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
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway
from transports.core.limits import Limits
from transports.core.requests import Acting, RequestHandler, check_trader
from transports.http.errors import PayloadTooLarge, Unidentified
from transports.http.settings import TRADER_HEADER, HttpServerSettings
from transports.http.signed import principal

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
        limits = Limits(max_batch=self.settings.max_batch)
        self.requests = RequestHandler(self.gateway, TRANSPORT, limits, self.settings.allow_admin, auth=self.settings.auth)
        self.max_batch = min(self.settings.max_batch, self.gateway.config.buffer)

    @property
    def auth(self) -> Authenticator | None:
        return self.settings.auth

    def acting(self, request: HTTPConnection, *, admit: bool = True) -> Acting:
        """Who ``request`` acts for: the ``Principal`` its signature proves, or (``--auth off``) the X-Trader name.

        ``admit``: count a principal's request against its key's limits here (``RATE_LIMITED`` over them); the
        lean route leaves that to ``RequestHandler.orders``.
        """
        if self.settings.auth is not None:
            return principal(request, self.settings.auth, admit=admit)
        # Starlette reads header bytes as Latin-1 (losslessly): the name is those bytes read as UTF-8, as on every wire.
        raw = request.headers.get(TRADER_HEADER, "").encode("latin-1")
        if not raw.strip():
            raise Unidentified("the X-Trader header is required: it names the acting trader")
        return check_trader(raw)

    def trader_name(self, request: HTTPConnection) -> str:
        """The name of the trader ``request`` acts for (``acting``'s)."""
        return self.requests.acting(self.acting(request))[0]

    def trader_of(self, request: HTTPConnection) -> str:
        """The acting trader's name, authenticated when the app authenticates (the route groups bind commands to it)."""
        return self.trader_name(request)

    def may_administer(self, request: HTTPConnection) -> bool:
        """True when ``request`` may add instruments: an admin key, or ``--allow-admin`` with ``--auth off``."""
        return self.requests.acting(self.acting(request))[1]

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

    def check_admin(self, command: Command, admin: bool | None = None) -> None:
        """Refuse ``add_instrument`` unless ``admin`` (None: what this server allows without a key, ``--allow-admin``)."""
        allowed = self.requests.allow_admin if admin is None else admin
        if not allowed and type(command) is AddInstrument:
            raise ExchangeError(self.requests.admin_refusal, RejectReason.UNAUTHORIZED)

    async def apply_one(self, command: Command, *, admin: bool | None = None) -> Response:
        """One command's events, with the status of its reject if the engine rejected it (``admin``: as ``check_admin``)."""
        self.check_admin(command, admin)
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
