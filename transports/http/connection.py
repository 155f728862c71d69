"""A lean HTTP/1.1 keep-alive client connection pool for ``HttpClient``.

Why not httpx: on this machine one ``httpx.AsyncClient`` round trip to
turbo-dex cost about 4.6 ms against 0.7 ms for the same request over a plain
socket (2,000 sequential ``POST /orders``), so the HTTP transport's measured
latency was mostly the client's. This speaks just what the client needs:

* requests written in one ``write`` (request line, headers and body), with
  ``TCP_NODELAY`` so a small request is never held back by Nagle;
* responses with ``Content-Length`` or ``Transfer-Encoding: chunked``;
* keep-alive: a connection returns to the pool after a complete exchange and
  is dropped after ``Connection: close`` or any error (never reused mid-way);
* every failure to connect, write or read, and every timeout, raises
  ``ConnectionError``/``TimeoutError`` for the caller to map (``NotConnected``).

Concurrent requests on one pool each take their own connection (at most
``max_connections`` open; more wait), so replies can never be interleaved.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

_MAX_HEAD = 64 * 1024
_MAX_BODY = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    content: bytes
    close: bool  # the server will close this connection


class ProtocolViolation(ConnectionError):
    """The server's bytes are not an HTTP/1.1 response we can read."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _MAX_HEAD:
        raise ProtocolViolation("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolViolation(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    close = headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0"
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent to us
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return Reply(status, b"".join(chunks), close)
    length = headers.get("content-length")
    if length is None:
        if status in (204, 304) or 100 <= status < 200:
            return Reply(status, b"", close)
        return Reply(status, await reader.read(_MAX_BODY), True)  # body until the server closes
    size = int(length)
    if not 0 <= size <= _MAX_BODY:
        raise ProtocolViolation(f"bad Content-Length {length!r}")
    return Reply(status, await reader.readexactly(size) if size else b"", close)


class ConnectionPool:
    """Keep-alive connections to one ``http://host:port`` server."""

    def __init__(self, base_url: str, headers: dict[str, str], *, timeout: float, connect_timeout: float = 5.0, max_connections: int = 32):
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        authority = f"[{self.host}]" if ":" in self.host else self.host
        fixed = {"host": f"{authority}:{self.port}", **{k.lower(): v for k, v in headers.items()}}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port, limit=_MAX_HEAD), self.connect_timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer)

    def _encode(self, method: str, path: str, body: bytes | None, params: dict[str, object] | None, content_type: str | None) -> bytes:
        target = self.prefix + path + (f"?{urlencode(params)}" if params else "")
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed}"
        if body is not None:
            head += f"content-length: {len(body)}\r\n"
            if content_type:
                head += f"content-type: {content_type}\r\n"
        return (head + "\r\n").encode("latin-1") + (body or b"")

    async def request(
        self, method: str, path: str, *, body: bytes | None = None, params: dict[str, object] | None = None, content_type: str | None = None
    ) -> Reply:
        if self._closed:
            raise ConnectionError("the client is closed")
        message = self._encode(method, path, body, params, content_type)
        async with self._slots:
            conn = self._take_idle()
            reused = conn is not None
            while True:
                if conn is None:
                    conn = await self._open()
                try:
                    conn.writer.write(message)
                    reply = await asyncio.wait_for(_read_reply(conn.reader), self.timeout)
                except ProtocolViolation:
                    conn.close()
                    raise
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    conn.close()
                    conn = None
                    # A kept-alive connection can die between our check and our write. Only a GET is
                    # safe to send again; a POST may have reached the engine, so the caller decides.
                    if reused and method == "GET" and isinstance(exc, asyncio.IncompleteReadError) and not exc.partial:
                        reused = False
                        continue
                    raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
                except (TimeoutError, asyncio.LimitOverrunError, ValueError) as exc:
                    conn.close()
                    raise (exc if isinstance(exc, TimeoutError) else ProtocolViolation(str(exc))) from exc
                except BaseException:
                    conn.close()  # cancelled mid-exchange: the connection's state is unknown
                    raise
                if reply.close or self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)
                return reply

    def _take_idle(self) -> _Connection | None:
        """A kept-alive connection the server has not closed meanwhile (its EOF arrived while idle), or None."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            with contextlib.suppress(ConnectionError, OSError):
                await conn.writer.wait_closed()
