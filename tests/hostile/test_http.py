"""Hostile input over HTTP (turbo-dex's API): oversize bodies and counts, slow and idle connections, garbage.

Every case states its bounds through ``support.check``: the server's peak
RSS grows by at most ``RSS_BOUND_MB``, the steady client's p99 stays under
``P99_BOUND_MS`` while it runs, and a normal order is accepted afterwards.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest

from engine import RejectReason
from protos.exchange.v1 import exchange_pb2 as pb
from tests.hostile.conftest import started
from tests.hostile.support import (
    Wire,
    exchange,
    head,
    idle,
    json_empty_list,
    lean_order_batch,
    partial_bodies,
    random_bytes,
    random_connections,
    run,
    send_and_close,
    slowloris,
    status_of,
)
from transports.core.limits import Limits

MAX_BODY = Limits().max_request_bytes  # the body limit of a server with the default --max-batch
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    yield from started("http", tmp_path_factory.mktemp("hostile-http"))


def reason_in(response: bytes) -> RejectReason | None:
    """The ``reason`` of an HTTP error response's JSON body, or of a protobuf ``OutcomeBatch``'s error."""
    _, _, body = response.partition(b"\r\n\r\n")
    with contextlib.suppress(ValueError, KeyError):
        return RejectReason[json.loads(body)["reason"]]
    with contextlib.suppress(Exception):
        reply = pb.OutcomeBatch.FromString(body)
        if reply.HasField("error"):
            return RejectReason(reply.error.code)
    return None


# ------------------------------------------------------------------ oversize bytes
def test_a_body_over_the_limit_is_refused_before_it_is_read(http: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        size = max(8 * MIB, MAX_BODY + MIB)
        response = await exchange(w, head("POST", "/orders/batch", size) + b"[" + b" " * (size - 1))
        return reason_in(response)

    run(http, "body over the limit (Content-Length)", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_chunked_body_over_the_limit_is_refused(http: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        chunk = b" " * MIB
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // MIB + 8)) + b"0\r\n\r\n"
        response = await exchange(w, head("POST", "/orders/batch", extra="Transfer-Encoding: chunked\r\n") + body)
        return reason_in(response)

    run(http, "chunked body over the limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


# ------------------------------------------------------------------ oversize counts
def test_millions_of_empty_json_commands_under_the_byte_limit(http: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        body = json_empty_list(MAX_BODY - 64)
        response = await exchange(w, head("POST", "/orders/batch", len(body)) + body)
        return reason_in(response)

    run(http, "empty JSON commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_millions_of_lean_commands_under_the_byte_limit(http: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        body = lean_order_batch(MAX_BODY - 64)
        response = await exchange(w, head("POST", "/orders/lean", len(body)) + body)
        return reason_in(response)

    run(http, "empty lean commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


# ------------------------------------------------------------------ amplification
def test_a_book_query_with_a_huge_depth(http: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        for _ in range(20):
            response = await exchange(w, head("GET", "/book/BTC-USD?depth=4000000000"))
            assert status_of(response) in (200, 400, 413, 422), response[:200]
        return None

    run(http, "book depth 4e9, 20 times", attack)


def test_market_data_queries_asking_for_everything(http: Wire) -> None:
    queries = [
        "/candles/BTC-USD?interval=1m&start=0&end=99999999999999999999&limit=4000000000",
        "/trades/BTC-USD?limit=4000000000&since=99999999999999999999999",
        "/depth/BTC-USD?limit=4000000000",
        "/candles/" + "X" * 4000,
    ]

    async def attack(w: Wire) -> RejectReason | None:
        for _ in range(20):
            for query in queries:
                response = await exchange(w, head("GET", query))
                assert status_of(response) in (400, 404, 413), response[:200]
            assert status_of(await exchange(w, head("GET", "/ticker"))) == 200
        return None

    run(http, "candles, trades, depth and ticker with limits of 4e9, 20 times", attack)


def test_a_market_data_request_naming_one_symbol_a_million_times(http: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        host, port = w.host_port()
        query = ",".join(["BTC-USD"] * 1_000_000)
        request = (
            f"GET /ws/marketdata?symbols={query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        await send_and_close(host, port, request, read_s=3, complete=lambda r: b"\r\n\r\n" in r)
        return None

    run(http, "market data naming BTC-USD 1M times", attack)


# ------------------------------------------------------------------ slow and idle connections
def test_five_hundred_slowloris_connections(http: Wire) -> None:
    run(http, "500 slowloris connections (3 s)", slowloris(b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"))


def test_two_thousand_idle_connections(http: Wire) -> None:
    run(http, "2000 idle connections (2 s)", idle(2000, 2.0))


def test_connections_holding_large_partial_bodies(http: Wire) -> None:
    run(http, "100 connections holding a body of the limit - 1", partial_bodies("/orders/batch", MAX_BODY - 1))


# ------------------------------------------------------------------ garbage
def test_random_bytes_to_the_port(http: Wire) -> None:
    run(http, "random bytes, 20 connections x 256 KiB", random_connections(20, 256 * 1024))


def test_a_valid_request_with_a_garbage_body_and_wrong_types(http: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reasons = []
        for path, body in (
            ("/orders", random_bytes(4096)),
            ("/orders/batch", b'{"type": "place"}'),  # an object where a list belongs
            ("/orders/lean", b'[{"type": "place"}]'),  # JSON where protobuf belongs
            ("/orders", b'{"type": "cancel", "order_id": "x"}'),
        ):
            response = await exchange(w, head("POST", path, len(body)) + body)
            assert 400 <= status_of(response) < 500 or path == "/orders/lean", response[:300]
            reasons.append(reason_in(response))
        assert all(r is not None for r in reasons), reasons
        return reasons[0]

    run(http, "garbage bodies and wrong types", attack, reason=RejectReason.MALFORMED_MESSAGE)
