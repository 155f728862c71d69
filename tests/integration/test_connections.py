"""Connection hygiene on the HTTP servers (turbo-dex, and the DHT node's own server): docs/limits.md.

A connection that trickles its headers, sends part of its body, or idles is
closed after its timeout; a body over the limit is refused from its
Content-Length before it is read; connections beyond the per-peer cap and
declared bodies beyond the buffer budget are refused with ``OVERLOADED``.
Each is counted by limit in the gateway's stats. Timeouts are short here
(0.5 s) and every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import orjson
import pytest

from engine import Engine, Instrument, RejectReason
from transports.codec.proto_codec import pb
from transports.core.gateway import Gateway
from transports.core.limits import ConnectionLimits
from transports.dht.httpd import HttpServer, Request, Response, guard_for
from transports.http.server import serve_http
from transports.http.settings import HttpServerSettings

LIMITS = ConnectionLimits(
    header_timeout_s=0.5,
    body_timeout_s=0.5,
    idle_timeout_s=0.5,
    max_connections=10,
    max_connections_per_peer=3,
    max_buffered_bytes=1_000_000,
)
MAX_BODY = 600_000
Open = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@asynccontextmanager
async def http_server(gateway: Gateway, limits: ConnectionLimits) -> AsyncIterator[tuple[str, int]]:
    settings = HttpServerSettings(port=0, log_level="warning", connections=limits, max_body_bytes=MAX_BODY)
    async with serve_http(gateway, settings) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


@asynccontextmanager
async def dht_server(gateway: Gateway, limits: ConnectionLimits) -> AsyncIterator[tuple[str, int]]:
    async def handler(request: Request) -> Response:
        return Response(200, b'{"status":"ok"}', "application/json")

    server = HttpServer(handler, guard_for(gateway.stats, limits), max_body=MAX_BODY)
    await server.start("127.0.0.1", 0)
    try:
        yield "127.0.0.1", server.port
    finally:
        await server.stop()


SERVERS = {"http": http_server, "dht": dht_server}
PATH = {"http": b"/health", "dht": b"/v1/anything"}
POST = {"http": b"/orders/batch", "dht": b"/v1/batch"}


def run(name: str, scenario: Callable[[Open, Gateway], Awaitable[None]], limits: ConnectionLimits = LIMITS) -> None:
    async def main() -> None:
        gateway = Gateway(Engine())
        await gateway.start([Instrument.create("BTC-USD", "0.01", "0.001")])
        try:
            async with SERVERS[name](gateway, limits) as (host, port):

                async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
                    return await asyncio.open_connection(host, port)

                await asyncio.wait_for(scenario(connect, gateway), 30)
        finally:
            await gateway.stop()

    asyncio.run(main())


def reason_of(answer: bytes) -> str:
    """The reason an error answer names: a JSON error body (turbo-dex) or a protobuf ``Error`` (the DHT node)."""
    body = answer.partition(b"\r\n\r\n")[2]
    if body.startswith(b"{"):
        return str(orjson.loads(body)["reason"])
    return RejectReason(pb.Error.FromString(body).code).name


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (within 5 s, or the test fails).

    A reset counts as closed: a server that closes with the client's unread bytes in its buffer sends RST.
    """
    try:
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_connection_that_trickles_its_headers_is_closed_after_the_header_timeout(server: str) -> None:
    async def scenario(connect: Open, gateway: Gateway) -> None:
        reader, writer = await connect()
        writer.write(b"GET " + PATH[server] + b" HTTP/1.1\r\n")

        async def trickle() -> None:
            for _ in range(50):  # a header byte every 0.1 s: never a whole header block
                await asyncio.sleep(0.1)
                writer.write(b"X")

        dribble = asyncio.create_task(trickle())
        try:
            assert await closed(reader) == b""
        finally:
            dribble.cancel()
        assert gateway.stats_dict()["limits_exceeded"] == {"header_timeout_s": 1}

    run(server, scenario)


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_idle_connections_are_closed_before_and_between_requests(server: str) -> None:
    async def scenario(connect: Open, gateway: Gateway) -> None:
        silent, _ = await connect()
        assert await closed(silent) == b""  # never sent a byte
        reader, writer = await connect()
        writer.write(b"GET " + PATH[server] + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"}"), 5)).startswith(b"HTTP/1.1 200")
        assert await closed(reader) == b""  # kept alive, then idle
        stats = gateway.stats_dict()["limits_exceeded"]
        assert stats.get("header_timeout_s", 0) + stats.get("idle_timeout_s", 0) == 2

    run(server, scenario)


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_body_that_stops_coming_is_closed_after_the_body_timeout(server: str) -> None:
    async def scenario(connect: Open, gateway: Gateway) -> None:
        reader, writer = await connect()
        writer.write(b"POST " + POST[server] + b" HTTP/1.1\r\nHost: x\r\nX-Trader: a\r\nContent-Length: 100\r\n\r\n[{")
        assert await closed(reader) == b""
        assert gateway.stats_dict()["limits_exceeded"] == {"body_timeout_s": 1}

    run(server, scenario)


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_body_over_the_limit_is_refused_from_its_content_length(server: str) -> None:
    async def scenario(connect: Open, gateway: Gateway) -> None:
        reader, writer = await connect()
        writer.write(b"POST " + POST[server] + b" HTTP/1.1\r\nHost: x\r\nX-Trader: a\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        answer = await closed(reader)  # answered, and closed, without a byte of the body sent
        assert answer.startswith(b"HTTP/1.1 413") and reason_of(answer) == "LIMIT_EXCEEDED"
        assert gateway.stats_dict()["limits_exceeded"] == {"max_request_bytes": 1}

    run(server, scenario)


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_declared_bodies_beyond_the_buffer_budget_are_refused_as_overloaded(server: str) -> None:
    async def scenario(connect: Open, gateway: Gateway) -> None:
        head = b"POST " + POST[server] + b" HTTP/1.1\r\nHost: x\r\nX-Trader: a\r\nContent-Length: %d\r\n\r\n[" % MAX_BODY
        _, first = await connect()
        first.write(head)  # holds 600 kB of the 1 MB budget while its body comes
        await asyncio.sleep(0.1)
        reader, second = await connect()
        second.write(head)
        answer = await closed(reader)
        assert answer.startswith(b"HTTP/1.1 503") and b"etry-" in answer and reason_of(answer) == "OVERLOADED"
        assert gateway.stats_dict()["limits_exceeded"].get("max_buffered_bytes") == 1
        first.close()

    run(server, scenario)


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_connections_beyond_the_per_peer_cap_are_refused_and_the_others_still_served(server: str) -> None:
    async def scenario(connect: Open, gateway: Gateway) -> None:
        held = [await connect() for _ in range(LIMITS.max_connections_per_peer)]
        reader, _ = await connect()
        answer = await closed(reader)
        assert answer.startswith(b"HTTP/1.1 503") and reason_of(answer) == "OVERLOADED"
        assert gateway.stats_dict()["limits_exceeded"] == {"max_connections_per_peer": 1}
        r, w = held[0]
        w.write(b"GET " + PATH[server] + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(r.readuntil(b"}"), 5)).startswith(b"HTTP/1.1 200")
        for _, writer in held:
            writer.close()

    run(server, scenario, replace(LIMITS, header_timeout_s=10.0))
