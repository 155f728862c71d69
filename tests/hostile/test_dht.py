"""Hostile input over the DHT node's HTTP API (its own HTTP/1.1 server): oversize bodies and counts,
slow and idle connections, garbage. Bounds: ``support.check``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from engine import RejectReason
from protos.exchange.v1 import exchange_pb2 as pb
from tests.hostile.conftest import started
from tests.hostile.support import (
    Wire,
    empty_command_batch,
    exchange,
    head,
    idle,
    lean_order_batch,
    partial_bodies,
    random_bytes,
    random_connections,
    run,
    slowloris,
    status_of,
)
from transports.core.limits import Limits

MAX_REQUEST = Limits().max_request_bytes
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def dht_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    yield from started("dht", tmp_path_factory.mktemp("hostile-dht"))


def reason_in(response: bytes) -> RejectReason | None:
    """The reason of the protobuf ``Error`` a response carries (inside a ``ReplyBatch``/``OutcomeBatch``, or bare)."""
    _, _, body = response.partition(b"\r\n\r\n")
    for kind in (pb.ReplyBatch, pb.OutcomeBatch):
        with contextlib.suppress(Exception):
            reply = kind.FromString(body)
            if reply.HasField("error"):
                return RejectReason(reply.error.code)
    with contextlib.suppress(Exception):
        error = pb.Error.FromString(body)
        if error.code:
            return RejectReason(error.code)
    return None


# ------------------------------------------------------------------ oversize bytes and counts
def test_a_body_over_the_limit_is_refused_before_it_is_read(dht_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        size = 16 * MIB
        return reason_in(await exchange(w, head("POST", "/v1/batch", size) + empty_command_batch(size)))

    run(dht_wire, "a 16 MiB batch body", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_million_empty_commands_under_the_byte_limit(dht_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        body = empty_command_batch(MAX_REQUEST - 64)
        return reason_in(await exchange(w, head("POST", "/v1/batch", len(body)) + body))

    run(dht_wire, "CommandBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_millions_of_lean_commands_under_the_byte_limit(dht_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        body = lean_order_batch(MAX_REQUEST - 64)
        return reason_in(await exchange(w, head("POST", "/v1/lean", len(body)) + body))

    run(dht_wire, "lean OrderBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_book_query_with_a_huge_depth(dht_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        for _ in range(20):
            response = await exchange(w, head("GET", "/v1/book?symbol=BTC-USD&depth=4000000000"))
            assert status_of(response) in (200, 400, 413), response[:200]
        return None

    run(dht_wire, "book depth 4e9, 20 times", attack)


# ------------------------------------------------------------------ slow and idle connections
def test_five_hundred_slowloris_connections(dht_wire: Wire) -> None:
    run(dht_wire, "500 slowloris connections (3 s)", slowloris(b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"))


def test_two_thousand_idle_connections(dht_wire: Wire) -> None:
    run(dht_wire, "2000 idle connections (2 s)", idle(2000, 2.0))


def test_connections_holding_large_partial_bodies(dht_wire: Wire) -> None:
    run(dht_wire, "100 connections holding a body of the limit - 1", partial_bodies("/v1/batch", MAX_REQUEST - 1))


# ------------------------------------------------------------------ garbage
def test_random_bytes_to_the_port(dht_wire: Wire) -> None:
    run(dht_wire, "random bytes, 20 connections x 256 KiB", random_connections(20, 256 * 1024))


def test_garbage_payloads_and_wrong_message_types(dht_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reasons = []
        for path, body in (
            ("/v1/batch", random_bytes(4096)),
            ("/v1/lean", random_bytes(4096, 2)),
            ("/v1/lean", empty_command_batch(64)),  # a CommandBatch where an OrderBatch belongs
        ):
            reasons.append(reason_in(await exchange(w, head("POST", path, len(body)) + body)))
        assert all(r is not None for r in reasons), reasons
        return reasons[0]

    run(dht_wire, "garbage payloads and wrong message types", attack, reason=RejectReason.MALFORMED_MESSAGE)
