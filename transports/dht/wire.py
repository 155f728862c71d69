"""A lean HTTP/1.1 client on asyncio streams for the node API: keep-alive connections, one request each at a time.

Why not httpx: it costs ~2 ms of client CPU per request, which made the
client, not the exchange, the bottleneck of single-order traffic. This
client speaks exactly what ``httpd.py`` serves (Content-Length replies,
chunked streams) and distinguishes the two failures a caller must tell apart:
``Unreachable`` (the connection could not be made: nothing was sent) and
``Broken`` (it failed after the request was written: outcome unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlencode

MAX_HEADER_BYTES = 64 * 1024


class Unreachable(ConnectionError):
    """No connection: the request was not sent."""


class Broken(ConnectionError):
    """The connection failed after the request was (maybe) sent."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise Broken(f"bad status line {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    for _ in range(1 << 40):
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return
        data = await reader.readexactly(size)
        await reader.readexactly(2)
        yield data


class Endpoint:
    """Keep-alive connections to one node (``host``, ``port``); at most ``max_idle`` kept idle."""

    def __init__(self, host: str, port: int, *, connect_timeout: float = 5.0, max_idle: int = 16) -> None:
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: list[_Conn] = []

    def __repr__(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_HEADER_BYTES), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise Unreachable(f"{self!r}: {exc}") from None
        return _Conn(reader, writer)

    def _request_bytes(self, method: str, path: str, params: dict[str, object] | None, headers: dict[str, str], body: bytes) -> bytes:
        target = path + ("?" + urlencode(params) if params else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def request(
        self, method: str, path: str, *, params: dict[str, object] | None = None, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        """One request; (status, body).

        A GET on a reused idle connection that turns out closed is retried once on
        a fresh one; a POST never is (the server may have read and applied it).
        """
        data = self._request_bytes(method, path, params, headers or {}, body)
        for attempt in range(2):
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                conn.writer.write(data)
                status, head = await _head(conn.reader)
                if "chunked" in head.get("transfer-encoding", ""):
                    payload = b"".join([chunk async for chunk in _chunks(conn.reader)])
                else:
                    payload = await conn.reader.readexactly(int(head.get("content-length", "0")))
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                conn.close()
                idempotent = method == "GET"
                if idempotent and reused and attempt == 0 and isinstance(exc, asyncio.IncompleteReadError) and not exc.partial:
                    continue  # the server had closed this idle connection before reading our request
                raise Broken(f"{self!r}: {exc!r}") from None
            except BaseException:
                conn.close()  # cancelled mid-request: the connection's state is unknown
                raise
            if head.get("connection", "").lower() == "close" or len(self._idle) >= self.max_idle:
                conn.close()
            else:
                self._idle.append(conn)
            return status, payload
        raise Broken(f"{self!r}: connection closed")

    async def stream(
        self, path: str, *, params: dict[str, object] | None = None, headers: dict[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        """A GET whose chunked reply is yielded chunk by chunk, on a connection of its own."""
        conn = await self._connect()
        try:
            conn.writer.write(self._request_bytes("GET", path, params, headers or {}, b""))
            status, head = await _head(conn.reader)
            if status != 200:
                length = int(head.get("content-length", "0"))
                raise StreamRefused(status, await conn.reader.readexactly(length))
            async for chunk in _chunks(conn.reader):
                yield chunk
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise Broken(f"{self!r}: {exc!r}") from None
        finally:
            conn.close()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


class StreamRefused(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
