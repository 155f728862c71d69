"""Signed requests over HTTP and WebSocket, as Binance and Kraken sign theirs (docs/security.md, "HTTP and WebSocket").

A client proves its key on every private request with four headers::

    DEX-KEY:       the key id
    DEX-TIMESTAMP: when it signed, Unix milliseconds
    DEX-WINDOW:    how long the request stays valid, milliseconds (default 5000, at most 60000)
    DEX-SIGNATURE: transports.core.signing.sign(credential, payload(timestamp, window, METHOD, path, query, body))

``path`` is the request target's path exactly as sent (percent-encoded, no
query), ``query`` the query string exactly as sent without the four
parameters below, ``body`` the body's bytes (empty for a GET). A WebSocket
upgrade may carry the four as query parameters (``dex-key``,
``dex-timestamp``, ``dex-window``, ``dex-signature``) instead, since a
browser cannot set headers on one; the signature then covers the query
without them.

Invariants:

* ``SignedRequests`` (the ASGI middleware of an app that authenticates)
  takes a request's four values and its body (up to the body limit) before
  routing, and removes the four query parameters from the request's scope,
  so neither a route nor a log line sees them (uvicorn's access and
  WebSocket lines print the path and query, never a header).
* A request is verified once, when a route first asks who acts
  (``principal``); routes that never ask (market data, operations) stay
  public whatever credentials come with them.
* A private HTTP request is admitted against its key's limits when it is
  first identified and released when the middleware has sent its answer; a
  WebSocket upgrade takes a token but no in-flight slot (a stream lives long).
* No signature reaches a log line: the websockets library logs an upgrade's
  request line and every header at debug level (through uvicorn's
  ``uvicorn.error`` logger on a server, ``websockets.client`` in a client),
  so ``redact_signatures`` filters those loggers' records.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transports.core.auth import Authenticator, Principal
from transports.core.keys import Credential
from transports.core.signing import DEFAULT_WINDOW_MS, AuthFailure, sign_request
from transports.http.errors import PayloadTooLarge

KEY: Final = "dex-key"
TIMESTAMP: Final = "dex-timestamp"
WINDOW: Final = "dex-window"
SIGNATURE: Final = "dex-signature"
FIELDS: Final = (KEY, TIMESTAMP, WINDOW, SIGNATURE)
_FIELD_BYTES: Final = frozenset(f.encode() for f in FIELDS)
_STATE: Final = "dex_signed"  # the request's SignedRequest, in the ASGI scope's "state"
MISSING: Final = "sign the request: DEX-KEY, DEX-TIMESTAMP, DEX-WINDOW and DEX-SIGNATURE headers (docs/security.md)"


_IN_QUERY: Final = re.compile(r"(dex-signature=)[^&\s]*", re.IGNORECASE)
REDACTED: Final = "[redacted]"
SERVER_LOGGERS: Final = ("uvicorn.error", "uvicorn.access")  # uvicorn's lines, and websockets' on a server
CLIENT_LOGGERS: Final = ("websockets.client",)


class _RedactSignatures(logging.Filter):
    """Rewrites a record's arguments so that no signature is formatted into it (a header's value, a query's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            out = list(args)
            for i, arg in enumerate(out):
                if not isinstance(arg, str):
                    continue
                if arg.lower() == SIGNATURE and i + 1 < len(out):  # websockets: "< %s: %s" % (name, value)
                    out[i + 1] = REDACTED
                elif "dex-signature=" in arg.lower():
                    out[i] = _IN_QUERY.sub(rf"\g<1>{REDACTED}", arg)
            record.args = tuple(out)
        elif isinstance(record.msg, str) and "dex-signature" in record.msg.lower():
            record.msg = _IN_QUERY.sub(rf"\g<1>{REDACTED}", record.msg)
        return True


def redact_signatures(logger_names: tuple[str, ...]) -> None:
    """Filter the records of ``logger_names`` so no signature is logged (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSignatures) for f in logger.filters):
            logger.addFilter(_RedactSignatures())


# ---------------------------------------------------------------- clients
def signed_headers(
    credential: Credential, method: str, path: str, query: str, body: bytes, window_ms: int = DEFAULT_WINDOW_MS
) -> dict[str, str]:
    """The four headers that sign one request now (``path`` and ``query`` exactly as the request line writes them)."""
    signed = sign_request(credential, method, path, query, body, window_ms)
    return {KEY: signed.key_id, TIMESTAMP: str(signed.timestamp_ms), WINDOW: str(signed.window_ms), SIGNATURE: signed.signature}


def signed_query(credential: Credential, path: str, query: str = "", window_ms: int = DEFAULT_WINDOW_MS) -> str:
    """``query`` with the four signing parameters appended: a WebSocket upgrade (GET ``path``) from a client without headers."""
    values = signed_headers(credential, "GET", path, query, b"", window_ms)
    extra = "&".join(f"{name}={quote(value, safe='')}" for name, value in values.items())
    return f"{query}&{extra}" if query else extra


# ---------------------------------------------------------------- servers
@dataclass(slots=True)
class SignedRequest:
    """What one request carried to prove its key, kept until a route asks who acts."""

    values: dict[str, str]
    method: str
    path: str
    query: str
    body: bytes | None  # None: larger than the body limit, not read
    outcome: Principal | AuthFailure | None = None  # the verification's, once done
    admitted: Principal | None = None  # holding an in-flight slot until the answer is sent
    counted: bool = False  # admitted against the key's limits (once per request)


def split_query(raw: bytes) -> tuple[dict[str, str], bytes]:
    """The signing parameters of a raw query string, and the query without them (the others as sent, in order)."""
    if not raw:
        return {}, raw
    found: dict[str, str] = {}
    kept: list[bytes] = []
    for part in raw.split(b"&"):
        name, _, value = part.partition(b"=")
        if name.lower() in _FIELD_BYTES:
            found[name.lower().decode()] = unquote(value.decode("latin-1"))
        else:
            kept.append(part)
    return found, b"&".join(kept) if found else raw


def _header_values(scope: Scope) -> dict[str, str]:
    return {name.decode(): value.decode("latin-1") for name, value in scope.get("headers", ()) if name in _FIELD_BYTES}


class SignedRequests:
    """The ASGI middleware of an app that authenticates: keeps each request's proof for ``principal``."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, body_limit: int) -> None:
        redact_signatures(SERVER_LOGGERS)
        self.app = app
        self.authenticator = authenticator
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        from_query, rest = split_query(scope.get("query_string", b""))
        if from_query:
            scope["query_string"] = rest  # in place: uvicorn logs this scope's query, which no longer holds a signature
        values = _header_values(scope) or from_query
        if not values:
            await self.app(scope, receive, send)  # unsigned: public routes answer, private ones refuse (missing_credentials)
            return
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
        signed = SignedRequest(values, scope.get("method", "GET"), path, rest.decode("latin-1"), b"")
        if kind == "http":
            signed.body, receive = await _buffered(scope, receive, self.body_limit)
        scope.setdefault("state", {})[_STATE] = signed
        try:
            await self.app(scope, receive, send)
        finally:
            if signed.admitted is not None:
                self.authenticator.release(signed.admitted)


async def _buffered(scope: Scope, receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The body (None over ``limit``: left for the route to refuse) and a ``receive`` that hands the app it again."""
    declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None, receive
    messages: deque[Message] = deque()
    size, complete = 0, True
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            complete = False  # the client left: the route meets the disconnect when it reads
            break
        size += len(message.get("body", b""))
        if size > limit:
            complete = False
            break
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages) if complete else None

    async def replay() -> Message:
        return messages.popleft() if messages else await receive()

    return body, replay


def principal(connection: HTTPConnection, authenticator: Authenticator, *, admit: bool = True) -> Principal:
    """Who ``connection`` acts for, proved by its signature (``AuthFailure`` otherwise); ``admit``: count it against its key's limits."""
    signed: SignedRequest | None = connection.scope.get("state", {}).get(_STATE)
    if signed is None:
        raise AuthFailure("missing_credentials", MISSING)
    if signed.outcome is None:
        if signed.body is None:
            raise PayloadTooLarge("body larger than the server accepts")
        key, stamp, window, signature = (signed.values.get(name, "") for name in FIELDS)
        try:
            signed.outcome = authenticator.verify_signed(
                key, stamp, window, signature, signed.method, signed.path, signed.query, signed.body
            )
        except AuthFailure as exc:
            signed.outcome = exc
    outcome = signed.outcome
    if isinstance(outcome, AuthFailure):
        raise outcome
    if admit and not signed.counted:
        authenticator.admit(outcome)
        signed.counted = True
        if connection.scope["type"] == "websocket":
            authenticator.release(outcome)  # a token for the upgrade; the stream holds no slot
        else:
            signed.admitted = outcome  # released by SignedRequests once the answer is sent
    return outcome
