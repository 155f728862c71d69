"""A small HTTP/1.1 server on asyncio streams: keep-alive, Content-Length or chunked bodies, streamed replies.

Why our own: the node answers Grenache's ``POST /`` (JSON) and our binary
API on one port, streams market data, and must never crash on bad input.
Invariants: every request gets exactly one response or the connection is
closed; a request line, header block or body over its bound is answered
413/431 and the connection closed; a handler exception is a 500, logged,
and the server keeps serving.

Connection limits (docs/limits.md, with the ``ConnectionGuard`` of the
node's gateway when one is given): a connection over the per-peer or total
cap is answered 503 and closed; the header block must arrive within
``header_timeout_s`` (a kept-alive connection waits ``idle_timeout_s``
more for its next request) and the body within ``body_timeout_s``, else the
connection is closed; a body is refused from its ``Content-Length`` (or
while its chunks arrive) over ``max_body`` bytes, and when the bodies held
by all connections together would pass ``max_buffered_bytes`` (503).
Refusals and timeouts are counted by limit (``dex_limits_exceeded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from engine import ExchangeError
from transports.codec.proto_codec import error_reply
from transports.core.connections import ConnectionGuard
from transports.core.gateway import GatewayStats
from transports.core.limits import ConnectionLimits, LimitExceeded, Limits

log = logging.getLogger("dex-node.http")

PROTOBUF = "application/x-protobuf"
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = Limits().max_request_bytes  # what the largest allowed batch needs, in any encoding
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    query_string: str = ""  # the target's query as sent (what a signed request's signature covers)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    stream: AsyncIterator[bytes] | None = None  # chunked, when set
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, error: ExchangeError | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error  # a refusal with a reason: answered as a protobuf Error, like the node's other refusals


class _Body:
    """Reads one request's body, holding its bytes against the server's buffer budget until ``release``."""

    def __init__(self, guard: ConnectionGuard | None, max_body: int) -> None:
        self.guard = guard
        self.max_body = max_body
        self.held = 0

    def hold(self, size: int) -> None:
        if size > self.max_body:
            if self.guard is not None:
                self.guard.exceeded("max_request_bytes")
            message = f"a request body is at most {self.max_body} bytes"
            raise _BadRequest(413, message, LimitExceeded(message, "max_request_bytes"))
        if self.guard is not None:
            refusal = self.guard.reserve(size - self.held)
            if refusal is not None:
                raise _BadRequest(503, refusal.message, refusal)
        self.held = size

    def release(self) -> None:
        if self.guard is not None and self.held:
            self.guard.unreserve(self.held)
        self.held = 0

    async def read(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            size = 0
            for _ in range(1_000_000):
                line = await reader.readuntil(b"\r\n")
                try:
                    length = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequest(400, "bad chunk size") from None
                if length == 0:
                    await reader.readuntil(b"\r\n")  # (trailers are not supported; the empty line ends the body)
                    return b"".join(parts)
                size += length
                self.hold(size)
                parts.append(await reader.readexactly(length))
                await reader.readexactly(2)
            raise _BadRequest(413, "too many chunks")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest(400, "bad Content-Length") from None
        if length < 0:
            raise _BadRequest(400, "bad Content-Length")
        if not length:
            return b""
        self.hold(length)  # before a byte of it is read
        return await reader.readexactly(length)


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the peer closed between requests
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "header block too large") from None


def _request(lines: list[str], headers: dict[str, str], body: bytes) -> Request:
    method, target, _ = lines[0].split(" ")
    url = urlsplit(target)
    return Request(method.upper(), url.path, dict(parse_qsl(url.query)), headers, body, url.query)


def _headers(lines: list[str]) -> dict[str, str]:
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400, "bad header line")
        headers[name.strip().lower()] = value.strip()
    return headers


def _head(status: int, content_type: str, extra: dict[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    lines.extend(f"{k}: {v}" for k, v in extra.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    def __init__(self, handler: Handler, guard: ConnectionGuard | None = None, max_body: int = MAX_BODY_BYTES) -> None:
        self.handler = handler
        self.guard = guard
        self.limits = guard.limits if guard is not None else ConnectionLimits()
        self.max_body = max_body
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEADER_BYTES)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(BaseException):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str((writer.get_extra_info("peername") or ("",))[0])
        if self.guard is not None:
            refusal = self.guard.admit(peer)
            if refusal is not None:
                await _refuse(writer, 503, refusal.message, refusal)
                writer.close()
                return
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._requests(reader, writer)
        finally:
            if self.guard is not None:
                self.guard.release(peer)
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self.limits
        wait = limits.header_timeout_s  # the first request's head; later ones also get the idle time
        body = _Body(self.guard, self.max_body)
        try:
            for _ in range(10_000_000):  # requests per connection
                try:
                    try:
                        async with asyncio.timeout(wait):
                            head = await _read_head(reader)
                    except TimeoutError:
                        self._exceeded("header_timeout_s" if wait == limits.header_timeout_s else "idle_timeout_s")
                        return
                    if head is None:
                        return
                    lines = head.decode("latin-1").split("\r\n")
                    headers = _headers(lines)
                    try:
                        async with asyncio.timeout(limits.body_timeout_s):
                            content = await body.read(reader, headers)
                    except TimeoutError:
                        self._exceeded("body_timeout_s")
                        return
                    request = _request(lines, headers, content)
                except _BadRequest as exc:
                    await _refuse(writer, exc.status, str(exc), exc.error)
                    return
                wait = limits.idle_timeout_s + limits.header_timeout_s
                try:
                    response = await self.handler(request)
                except Exception:
                    log.exception("internal error on %s %s", request.method, request.path)
                    response = Response(500, b"internal error; see the node log", "text/plain")
                finally:
                    body.release()
                await _respond(writer, response)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            body.release()

    def _exceeded(self, limit: str) -> None:
        if self.guard is not None:
            self.guard.exceeded(limit)


async def _refuse(writer: asyncio.StreamWriter, status: int, message: str, error: ExchangeError | None = None) -> None:
    """Answer ``status`` with ``message`` (a protobuf ``Error`` when it has a reason) and let the caller close."""
    body, kind = (error_reply(error).SerializeToString(), PROTOBUF) if error is not None else (message.encode(), "text/plain")
    extra = {"Connection": "close"}
    if status == 503:
        extra["Retry-After"] = "1"
    with contextlib.suppress(ConnectionError):
        writer.write(_head(status, kind, extra, len(body)) + body)
        await writer.drain()


async def _respond(writer: asyncio.StreamWriter, response: Response) -> None:
    if response.stream is None:
        writer.write(_head(response.status, response.content_type, response.headers, len(response.body)) + response.body)
        await writer.drain()
        return
    writer.write(_head(response.status, response.content_type, response.headers, None))
    try:
        async for chunk in response.stream:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
    finally:
        close = getattr(response.stream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def guard_for(stats: GatewayStats, limits: ConnectionLimits | None = None) -> ConnectionGuard:
    """The connection guard of a node's HTTP server, counting into its gateway's stats as transport ``dht``."""
    return ConnectionGuard(limits if limits is not None else ConnectionLimits(), stats, "dht")
