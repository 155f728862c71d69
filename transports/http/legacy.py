"""Legacy routes for clients of the HTTP API this one replaces (docs/http.md, "Legacy routes").

``POST /order`` takes ``{"symbol","side","price","quantity"}`` with JSON
numbers and answers ``{"id": N, "status": "accepted"}``; a bare JSON array of
such orders at ``POST /orders/batch`` answers ``{"accepted","rejected","total"}``
(``app.py`` hands a batch here when its first item says ``quantity``, a field
the current shape does not have).

Invariants:

* A JSON number is read exactly from its text (``json`` with
  ``parse_float``/``parse_int`` = ``Decimal``), never through a binary float,
  then converted through the instrument's tick and lot by the one codec: a
  value off the tick or the lot is refused as INVALID_PRICE/INVALID_QUANTITY,
  exactly as on the current routes.
* ``quantity`` is an alias of ``qty``; ``type`` may name the order type
  (``limit``/``market``), as it did. Anything else is the current place command.
* Identity is the current app's: the ``X-Trader`` header, bound to every order.
* Every answer, errors included, carries ``Deprecation`` and a ``Link`` to the
  successor route. Errors are the usual error body with the usual status and
  reason; the message names the current shape.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from engine import Command, Event, ExchangeError, MalformedMessage, OrderAccepted, OrderRejected, RejectReason
from transports.codec.json_codec import decode_command, dumps
from transports.core.gateway import Gateway
from transports.http import openapi as doc
from transports.http.errors import PayloadTooLarge, error_response

TRANSPORT = "http"
JSON = "application/json"
# RFC 9745: the date from which the legacy routes are deprecated (2026-12-01T00:00:00Z).
DEPRECATED_SINCE = "@1796083200"
CURRENT_SHAPE = 'current API: POST /orders with {"symbol","side","price":"<decimal string>","qty":"<decimal string>"}, see /docs'
_MAX_DIGITS = 64  # a JSON number with more digits than this is no price or quantity (and 1e999999999 must not be expanded)
_NUMERIC = ("price", "qty", "stop_price")

TraderOf = Callable[[Request], str]
ReadBody = Callable[[Request], Awaitable[bytes]]


def is_legacy_batch(data: Any) -> bool:
    """A batch in the old shape: its first order says ``quantity`` (the current shape says ``qty``)."""
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "quantity" in data[0]


def _no_constant(name: str) -> Any:
    raise MalformedMessage(f"{name} is not a number an order can carry")


def exact_loads(raw: bytes) -> Any:
    """JSON with every number as the ``Decimal`` of its text (never a binary float)."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError, InvalidOperation) as exc:
        raise MalformedMessage(f"not valid JSON: {exc}") from None


def _decimal_text(value: Any, key: str) -> Any:
    """A ``Decimal`` as a plain decimal string (the codec converts it exactly); anything else as it came."""
    if not isinstance(value, Decimal):
        return value
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or (len(digits) + exponent if exponent >= 0 else max(len(digits), -exponent)) > _MAX_DIGITS:
        reason = RejectReason.INVALID_QUANTITY if key == "qty" else RejectReason.INVALID_PRICE
        raise MalformedMessage(f"{key} {value} is out of range", reason)
    return format(value, "f")


def modern_order(item: Any) -> dict[str, Any]:
    """One old-shape order as the current place command (numbers as exact decimal strings)."""
    if not isinstance(item, dict):
        raise MalformedMessage("an order must be a JSON object")
    order = dict(item)
    if "quantity" in order:
        if "qty" in order:
            raise MalformedMessage("give quantity or qty, not both")
        order["qty"] = order.pop("quantity")
    kind = order.pop("type", "place")
    if kind != "place":
        order.setdefault("order_type", kind)  # the old shape's type was the order type
    for key in _NUMERIC:
        if key in order:
            order[key] = _decimal_text(order[key], key)
    return order


def _explained(error: ExchangeError, where: str = "") -> ExchangeError:
    """The same error (class, reason and so status kept), its message naming the current shape and which order of a batch."""
    error.message = f"{where}{error.message} ({CURRENT_SHAPE})"
    error.args = (error.message,)
    return error


class LegacyApi:
    """The old routes over a gateway; ``trader_of`` and ``read_body`` are the app's own."""

    def __init__(self, gateway: Gateway, trader_of: TraderOf, read_body: ReadBody, max_batch: int) -> None:
        self.gateway = gateway
        self.trader_of = trader_of
        self.read_body = read_body
        self.max_batch = max_batch

    def _decode(self, item: Any, trader: str) -> Command:
        return decode_command(modern_order(item), self.gateway.instrument, trader)

    def _answer(self, body: Any, successor: str) -> Response:
        return Response(dumps(body), media_type=JSON, headers=_headers(successor))

    def _refuse(self, error: ExchangeError, successor: str, *, counted: bool = False) -> Response:
        """The error body with the reason's status; ``counted``: the engine already counted this reject."""
        if not counted:
            self.gateway.stats.refused(TRANSPORT, error.reason.name)
        response = error_response(error)
        response.headers.update(_headers(successor))
        return response

    async def place(self, request: Request) -> Response:
        try:
            trader = self.trader_of(request)
            command = self._decode(exact_loads(await self.read_body(request)), trader)
        except ExchangeError as exc:
            return self._refuse(_explained(exc), "/orders")
        try:
            events = (await self.gateway.submit([command], TRANSPORT))[0]
        except ExchangeError as exc:  # OVERLOADED: nothing applied, retry
            return self._refuse(exc, "/orders")
        first = events[0] if events else None
        if isinstance(first, OrderRejected):
            return self._refuse(ExchangeError(first.message, first.reason), "/orders", counted=True)
        order_id = first.order_id if isinstance(first, OrderAccepted) else None
        return self._answer({"id": order_id, "status": "accepted"}, "/orders")

    async def batch(self, raw: bytes, trader: str) -> Response:
        """A whole old-shape batch: decoded all or nothing, then applied in order."""
        try:
            items = exact_loads(raw)
            if len(items) > self.max_batch:
                raise PayloadTooLarge(f"a batch holds at most {self.max_batch} orders, got {len(items)}", "max_batch")
            commands = [self._decoded(item, trader, i) for i, item in enumerate(items)]
        except ExchangeError as exc:
            return self._refuse(exc, "/orders/batch")
        try:
            replies = await self.gateway.submit(commands, TRANSPORT) if commands else []
        except ExchangeError as exc:  # OVERLOADED: nothing applied, retry
            return self._refuse(exc, "/orders/batch")
        return self._answer(batch_summary(replies), "/orders/batch")

    def _decoded(self, item: Any, trader: str, index: int) -> Command:
        try:
            return self._decode(item, trader)
        except ExchangeError as exc:
            raise _explained(exc, f"order {index}: ") from None


def batch_summary(replies: list[list[Event]]) -> dict[str, Any]:
    """The old batch answer, plus the count of each reject reason (a field old clients ignore)."""
    reasons: dict[str, int] = {}
    accepted = 0
    for events in replies:
        first = events[0] if events else None
        if isinstance(first, OrderRejected):
            reasons[first.reason.name] = reasons.get(first.reason.name, 0) + 1
        elif isinstance(first, OrderAccepted):
            accepted += 1
    return {"accepted": accepted, "rejected": sum(reasons.values()), "total": len(replies), "reasons": reasons}


def _headers(successor: str) -> dict[str, str]:
    return {"Deprecation": DEPRECATED_SINCE, "Link": f'<{successor}>; rel="successor-version", </docs>; rel="deprecation"'}


LEGACY_ORDER = {
    "type": "object",
    "description": "The old order shape: JSON numbers, read exactly from their text. `quantity` is an alias of `qty`.",
    "properties": {
        "symbol": {"type": "string"},
        "side": {"type": "string", "enum": ["buy", "sell"]},
        "price": {"type": "number"},
        "quantity": {"type": "number"},
        "type": {"type": "string", "enum": ["limit", "market"]},
    },
    "required": ["symbol", "side", "quantity"],
}
LEGACY_REPLY = {
    "type": "object",
    "properties": {"id": {"type": ["integer", "null"]}, "status": {"type": "string", "enum": ["accepted"]}},
    "required": ["id", "status"],
}
LEGACY_BATCH_REPLY = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "rejected": {"type": "integer"},
        "total": {"type": "integer"},
        "reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
    "required": ["accepted", "rejected", "total"],
}
_DEPRECATION_HEADERS = {
    "Deprecation": {"schema": {"type": "string"}, "description": "RFC 9745: deprecated since this date"},
    "Link": {"schema": {"type": "string"}, "description": "the successor route and these docs"},
}


def add_legacy_routes(app: FastAPI, api: LegacyApi) -> None:
    """``POST /order``; the batch is answered from the current ``/orders/batch`` route (see ``is_legacy_batch``)."""
    errors = {code: doc.ERROR for code in (400, 401, 404, 409, 413, 422, 503)}
    responses = doc.responses(LEGACY_REPLY, errors)
    for answer in responses.values():
        answer["headers"] = _DEPRECATION_HEADERS

    @app.post(
        "/order",
        summary="Deprecated: one order in the old shape; use POST /orders",
        deprecated=True,
        responses=responses,
        openapi_extra=doc.with_trader(doc.body(LEGACY_ORDER)),
        tags=["legacy"],
    )
    async def post_legacy_order(request: Request) -> Response:
        return await api.place(request)
