"""uvicorn's httptools protocol, with the connection limits of docs/limits.md.

uvicorn closes a kept-alive connection after ``timeout_keep_alive`` but has
no other timer: a connection that never finishes its headers, or its body,
is held for ever. ``guarded_protocol(guard, max_body)`` is the protocol
class to pass as ``uvicorn.Config(http=...)``; each connection:

* is counted by the ``ConnectionGuard`` when it opens (per peer address and
  in all); over a cap it is answered ``503 OVERLOADED`` and closed;
* must send its request line and headers within ``header_timeout_s`` of
  opening (or of starting a new request on a kept-alive connection), and in
  at most ``max_header_bytes``; else it is closed (``431`` for the bytes);
* must send its body within ``body_timeout_s`` of the end of its headers;
  else it is closed;
* with nothing in flight, is closed after ``idle_timeout_s`` (uvicorn's
  keep-alive timer);
* may not declare a body over ``max_body`` (``413 LIMIT_EXCEEDED`` from the
  ``Content-Length``, before a byte of it is read), and the bodies declared
  by all connections together may not exceed ``max_buffered_bytes``
  (``503 OVERLOADED``); a chunked body reserves ``max_body``. A refused
  request is answered by a small app instead of ours, with
  ``Connection: close``: uvicorn stops reading its body (at most its
  64 KiB high-water mark is held) and closes the connection.

Every refusal and timeout is counted by transport and limit name
(``GatewayStats.limits_exceeded``). A WebSocket upgrade leaves the guard:
the market-data stream that follows is bounded by its subscription.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from transports.core.connections import ConnectionGuard
from transports.core.limits import LimitExceeded
from transports.http.errors import error_response


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    guard: ClassVar[ConnectionGuard]
    max_body: ClassVar[int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._peer = ""
        self._admitted = False
        self._reserved = 0
        self._in_head = True
        self._head_bytes = 0

    # -------------------------------------------------------- connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else ""
        refusal = self.guard.admit(self._peer)
        if refusal is not None:  # refused before uvicorn sets the connection up: a flood costs little
            self.transport = transport
            transport.write(_raw_response(refusal))
            transport.close()
            return
        super().connection_made(transport)
        self._admitted = True
        self._arm("header_timeout_s", self.guard.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._unreserve()
        if self._admitted:
            self._admitted = False
            self.guard.release(self._peer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        was_in_head = self._in_head
        super().data_received(data)
        if was_in_head and self._in_head:  # every byte of this read belongs to an unfinished head
            self._head_bytes += len(data)
            most = self.guard.limits.max_header_bytes
            if self._head_bytes > most and not self.transport.is_closing():
                error = LimitExceeded(f"request line and headers are at most {most} bytes", "max_header_bytes")
                self.guard.exceeded("max_header_bytes")
                self.transport.write(_raw_response(error, 431))
                self.transport.close()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        if self._admitted:
            self._admitted = False
            self.guard.release(self._peer)
        super().handle_websocket_upgrade()

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.guard.exceeded("idle_timeout_s")
        super().timeout_keep_alive_handler()

    # ----------------------------------------------------------- request
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        if self._timer is None:
            self._arm("header_timeout_s", self.guard.limits.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        if self.parser.should_upgrade():
            super().on_headers_complete()
            return
        refusal, expects_body = self._admit_body()
        if refusal is None:
            super().on_headers_complete()
            if expects_body:
                self._arm("body_timeout_s", self.guard.limits.body_timeout_s)
            return
        response = error_response(refusal)
        response.headers["connection"] = "close"
        ours = self.app
        self.app = response  # answers this request instead of ours (uvicorn does the same for limit_concurrency)
        try:
            super().on_headers_complete()
        finally:
            self.app = ours

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._unreserve()
        super().on_response_complete()

    def _admit_body(self) -> tuple[LimitExceeded | None, bool]:
        """(the refusal of this request's body, if any; whether a body follows)."""
        length = -1
        chunked = False
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            length = self.max_body
        if length <= 0:
            return None, False
        if length > self.max_body:
            error = LimitExceeded(f"a request body is at most {self.max_body} bytes, got {length}", "max_request_bytes")
            self.guard.exceeded("max_request_bytes")
            return error, True
        refusal = self.guard.reserve(length)
        if refusal is None:
            self._reserved += length
        return refusal, True

    # ------------------------------------------------------------ timers
    def _arm(self, limit: str, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expire, limit)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, limit: str) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.guard.exceeded(limit)
            self.transport.close()

    def _unreserve(self) -> None:
        if self._reserved:
            self.guard.unreserve(self._reserved)
            self._reserved = 0


def guarded_protocol(guard: ConnectionGuard, max_body: int) -> type[GuardedHttpToolsProtocol]:
    """The protocol class of one server (``uvicorn.Config(http=...)``), bound to its guard and body limit."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": guard, "max_body": max_body})


def _raw_response(error: LimitExceeded, status: int | None = None) -> bytes:
    """A whole HTTP/1.1 response refusing with ``error``, for when no request cycle exists to answer it."""
    response = error_response(error, status)
    head = [f"HTTP/1.1 {response.status_code} {_PHRASES.get(response.status_code, 'Refused')}"]
    head += [f"{name}: {value}" for name, value in response.headers.items()]
    head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + bytes(response.body)


_PHRASES = {413: "Payload Too Large", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}
