"""A small HTTP/1.1 server on asyncio streams: keep-alive, Content-Length or chunked bodies, streamed replies.

Why our own: the node answers Grenache's ``POST /`` (JSON) and our binary
API on one port, streams market data, and must never crash on bad input.
Invariants: every request gets exactly one response or the connection is
closed; a request line, header block or body over its bound is answered
413/431 and the connection closed; a handler exception is a 500, logged,
and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("dex-node.http")

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    stream: AsyncIterator[bytes] | None = None  # chunked, when set
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
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
            if size > MAX_BODY_BYTES:
                raise _BadRequest(413, "body too large")
            parts.append(await reader.readexactly(length))
            await reader.readexactly(2)
        raise _BadRequest(413, "too many chunks")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400, "bad Content-Length") from None
    if length < 0 or length > MAX_BODY_BYTES:
        raise _BadRequest(413, "body too large")
    return await reader.readexactly(length) if length else b""


async def _parse(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the peer closed between requests
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "header block too large") from None
    lines = head.decode("latin-1").split("\r\n")
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
    body = await _read_body(reader, headers)
    url = urlsplit(parts[1])
    return Request(parts[0].upper(), url.path, dict(parse_qsl(url.query)), headers, body)


def _head(status: int, content_type: str, extra: dict[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    lines.extend(f"{k}: {v}" for k, v in extra.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
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
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            for _ in range(10_000_000):  # requests per connection
                try:
                    request = await _parse(reader)
                except _BadRequest as exc:
                    body = str(exc).encode()
                    writer.write(_head(exc.status, "text/plain", {"Connection": "close"}, len(body)) + body)
                    await writer.drain()
                    return
                if request is None:
                    return
                try:
                    response = await self.handler(request)
                except Exception:
                    log.exception("internal error on %s %s", request.method, request.path)
                    response = Response(500, b"internal error; see the node log", "text/plain")
                if response.stream is None:
                    writer.write(_head(response.status, response.content_type, response.headers, len(response.body)) + response.body)
                    await writer.drain()
                    continue
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
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
