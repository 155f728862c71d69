"""Errors on the HTTP wire: every failure is ``{"type":"error","reason","code","message"}``.

The status comes from the one table, ``transports.codec.status``; this module
only adds the two refusals that exist before a command does (no identity,
a body too large) and installs handlers so that nothing (FastAPI's own
parameter validation, an unknown route, a bug) escapes in another shape.
A 404 for an unknown route names the nearest real one (``nearest_route``).

::

    ExchangeError (engine)
    ├── Unidentified      no X-Trader header (--auth off): 401 UNAUTHORIZED
    ├── AuthFailure       no valid signature (--auth keys): 401 UNAUTHENTICATED, the cause first in the
    │                     message and in WWW-Authenticate (transports.core.signing lists the causes)
    ├── RateLimited       a key over its rate or requests in flight: 429 RATE_LIMITED with Retry-After
    ├── MalformedMessage
    └── LimitExceeded
        └── PayloadTooLarge   a body or batch over the limit: 413 LIMIT_EXCEEDED

A key that may not do what it asked (``add_instrument`` without the admin
role) is 403 UNAUTHORIZED.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from engine import ExchangeError, MalformedMessage, RejectReason
from transports.codec.json_codec import dumps, error_reply
from transports.codec.status import RETRY_AFTER_SECONDS, http_status, is_retryable
from transports.core.limits import LimitExceeded
from transports.core.signing import AuthFailure

JSON = "application/json"
AUTH_SCHEME = "DEX-SIGNATURE"  # the WWW-Authenticate scheme of a 401: sign with the DEX-* headers (docs/security.md)
log = logging.getLogger("turbo-dex")


class Unidentified(ExchangeError):
    """The request names no trader."""

    reason = RejectReason.UNAUTHORIZED


class PayloadTooLarge(LimitExceeded):
    """A body (or a batch) larger than the server accepts: 413 LIMIT_EXCEEDED."""

    def __init__(self, message: str, limit: str = "max_request_bytes") -> None:
        super().__init__(message, limit)


def error_response(error: ExchangeError, status: int | None = None) -> Response:
    if status is None:
        status = 413 if isinstance(error, PayloadTooLarge) else http_status(error.reason, identified=not isinstance(error, Unidentified))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if is_retryable(error.reason) or error.reason is RejectReason.RATE_LIMITED else None
    if isinstance(error, AuthFailure):  # RFC 9110: a 401 names the scheme it wants; the cause is a token from a fixed list
        headers = {"WWW-Authenticate": f'{AUTH_SCHEME} realm="turbo-dex", error="{error.cause}"'}
    return Response(dumps(error_reply(error)), status_code=status, media_type=JSON, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("path", "query", "header"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def nearest_route(wanted: str, routes: Iterable[object]) -> str:
    """The real route (``"METHOD /path"``) most like ``wanted``; the 404 answer names it."""
    known = [f"{method} {path}" for path, methods in _route_table(routes) for method in sorted(methods)]
    first = _first_segment(wanted)

    def likeness(route: str) -> tuple[bool, float]:  # the same first path segment first (/book -> /book/{symbol}), then spelling
        return _first_segment(route) == first, difflib.SequenceMatcher(None, wanted, route).ratio()

    return max(known, key=likeness, default="GET /docs")


def _first_segment(route: str) -> str:
    return route.partition(" ")[2].strip("/").partition("/")[0]


def _route_table(routes: Iterable[object]) -> list[tuple[str, set[str]]]:
    table = []
    for route in routes:
        included = getattr(route, "original_router", None)  # a router included without a prefix (app.include_router)
        if included is not None:
            table += _route_table(included.routes)
            continue
        path = getattr(route, "path", "")
        methods = getattr(route, "methods", None) or ({"GET"} if path.startswith("/ws/") else set())
        if path and not path.startswith("/docs/") and methods - {"HEAD"}:
            table.append((path, set(methods) - {"HEAD"}))
    return table


def install_error_handlers(app: FastAPI, count: Callable[[str, str], None]) -> None:
    """Route every failure through ``error_response``; ``count`` each by reason name and limit name (for /metrics)."""

    async def on_exchange_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ExchangeError)
        count(exc.reason.name, exc.limit if isinstance(exc, LimitExceeded) else "")
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        count(RejectReason.MALFORMED_MESSAGE.name, "")
        return error_response(MalformedMessage(_validation_message(exc)), 400)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        count(RejectReason.MALFORMED_MESSAGE.name, "")
        message = f"{exc.detail}: {request.method} {request.url.path}"
        if exc.status_code == 404:
            message += f"; nearest route: {nearest_route(f'{request.method} {request.url.path}', app.routes)} (every route: /docs)"
        response = error_response(MalformedMessage(message), exc.status_code)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def on_client_gone(request: Request, exc: Exception) -> Response:
        # The client closed the connection while we read its body: nobody is
        # left to answer, and it is not our bug. (Status 499, nginx's "client
        # closed request", only shows in access logs.)
        return Response(status_code=499)

    async def on_bug(request: Request, exc: Exception) -> Response:
        count(RejectReason.INTERNAL_ERROR.name, "")
        log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(ExchangeError("internal error; see the server log"), 500)

    app.add_exception_handler(ExchangeError, on_exchange_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
    app.add_exception_handler(Exception, on_bug)
