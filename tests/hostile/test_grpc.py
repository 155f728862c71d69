"""Hostile input over gRPC: oversize messages and counts, amplification, idle peers, broken HTTP/2, garbage.

The attacker's channel lifts gRPC's own send limit, so what the server
refuses is the server's doing. Bounds: ``support.check``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import grpc
import grpc.aio
import pytest

from engine import RejectReason
from protos.exchange.v1 import exchange_pb2 as pb
from tests.hostile.conftest import started
from tests.hostile.support import (
    Wire,
    book_request,
    empty_command_batch,
    held_connections,
    idle,
    lean_order_batch,
    random_bytes,
    random_connections,
    run,
    snapshot_request,
)
from transports.codec.proto_codec import decode_error
from transports.core.limits import Limits
from transports.grpc.settings import ERROR_TRAILER

MAX_REQUEST = Limits().max_request_bytes
MIB = 1024 * 1024
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame


@pytest.fixture(scope="module")
def grpc_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    yield from started("grpc", tmp_path_factory.mktemp("hostile-grpc"))


def _identity(data: bytes) -> bytes:
    return data


@contextlib.asynccontextmanager
async def channel(w: Wire):  # type: ignore[no-untyped-def]
    host, port = w.host_port()
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    async with grpc.aio.insecure_channel(f"{host}:{port}", options=options) as chan:
        yield chan


METADATA = (("x-trader", "mallory"),)


def trailer_reason(error: grpc.aio.AioRpcError) -> RejectReason | None:
    """The reason in the ``Error`` trailer; without one, a refusal by gRPC's own message limit is
    RESOURCE_EXHAUSTED, the status LIMIT_EXCEEDED maps to (the most the wire says then)."""
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_TRAILER and isinstance(value, bytes):
            return decode_error(value).reason
    return RejectReason.LIMIT_EXCEEDED if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else None


async def unary(w: Wire, method: str, body: bytes, reply: type) -> tuple[object | None, grpc.aio.AioRpcError | None]:  # type: ignore[type-arg]
    async with channel(w) as chan:
        call = chan.unary_unary(f"/exchange.v1.Exchange/{method}", _identity, reply.FromString)  # type: ignore[attr-defined]
        try:
            return await call(body, metadata=METADATA, timeout=30), None
        except grpc.aio.AioRpcError as exc:
            return None, exc


# ------------------------------------------------------------------ oversize bytes and counts
def test_a_64_mib_submit_batch_is_refused_before_it_is_parsed(grpc_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reply, error = await unary(w, "SubmitBatch", empty_command_batch(64 * MIB), pb.ReplyBatch)
        if error is not None:
            return trailer_reason(error)
        return RejectReason(reply.error.code) if isinstance(reply, pb.ReplyBatch) and reply.HasField("error") else None

    run(grpc_wire, "SubmitBatch of 64 MiB (16.7M empty commands)", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_million_empty_commands_under_the_byte_limit(grpc_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reply, error = await unary(w, "SubmitBatch", empty_command_batch(MAX_REQUEST - 64), pb.ReplyBatch)
        if error is not None:
            return trailer_reason(error)
        return RejectReason(reply.error.code) if isinstance(reply, pb.ReplyBatch) and reply.HasField("error") else None

    run(grpc_wire, "SubmitBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_millions_of_lean_commands_on_the_orders_stream(grpc_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with channel(w) as chan:
            call = chan.stream_stream("/exchange.v1.Exchange/Orders", _identity, pb.OutcomeBatch.FromString)(metadata=METADATA)
            await call.write(lean_order_batch(MAX_REQUEST - 64))
            try:
                reply = await asyncio.wait_for(call.read(), 30)
            except grpc.aio.AioRpcError as exc:
                return trailer_reason(exc)
            finally:
                call.cancel()
        return RejectReason(reply.error.code) if isinstance(reply, pb.OutcomeBatch) and reply.HasField("error") else None

    run(grpc_wire, "lean OrderBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


# ------------------------------------------------------------------ amplification
def test_market_data_naming_one_symbol_hundreds_of_thousands_of_times(grpc_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        request = snapshot_request("BTC-USD", (MAX_REQUEST - 64) // 9)
        async with channel(w) as chan:
            call = chan.unary_stream("/exchange.v1.Exchange/MarketData", _identity, pb.MarketDataMessage.FromString)(
                request, metadata=METADATA
            )
            try:
                first = await asyncio.wait_for(call.read(), 30)
                assert isinstance(first, pb.MarketDataMessage) and first.HasField("snapshot"), first
                with contextlib.suppress(TimeoutError):  # duplicates collapse: one snapshot, then only updates
                    second = await asyncio.wait_for(call.read(), 0.5)
                    assert not (isinstance(second, pb.MarketDataMessage) and second.HasField("snapshot")), "a second snapshot"
            except grpc.aio.AioRpcError as exc:
                return trailer_reason(exc)
            finally:
                call.cancel()
        return None

    run(grpc_wire, "MarketData naming BTC-USD up to the byte limit", attack)


def test_a_book_query_with_the_largest_depth(grpc_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        for _ in range(20):
            _, error = await unary(w, "GetBook", book_request("BTC-USD", 2**32 - 1), pb.BookDepth)
            if error is not None:
                return trailer_reason(error)
        return None

    run(grpc_wire, "GetBook depth 2^32-1, 20 times", attack)


# ------------------------------------------------------------------ idle peers
def test_five_hundred_idle_http2_peers(grpc_wire: Wire) -> None:
    run(grpc_wire, "500 idle HTTP/2 peers (2 s)", idle(0, 2.0, PREFACE + SETTINGS, 500))


def test_a_stream_left_holding_a_partial_message(grpc_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        host, port = w.host_port()
        # HEADERS would need HPACK; a DATA frame on a stream never opened is as far as a raw peer gets.
        data = b"\x00\x40\x00\x00\x00\x00\x00\x00\x01" + b"\x00\x00\x3f\xff\xff" + bytes(0x4000 - 5)
        async with held_connections(host, port, 200, PREFACE + SETTINGS + data):
            await asyncio.sleep(1.0)
        return None

    run(grpc_wire, "200 peers with a partial DATA frame", attack)


# ------------------------------------------------------------------ garbage
def test_random_bytes_and_broken_http2_frames(grpc_wire: Wire) -> None:
    unknown_frame = PREFACE + SETTINGS + b"\xff\xff\xff\xee\x00\x00\x00\x00\x01"  # 16 MiB - 1 of a frame type nobody knows
    run(grpc_wire, "random bytes and broken HTTP/2 frames", random_connections(10, 64 * 1024, b"", PREFACE, unknown_frame))


def test_garbage_payloads_and_wrong_message_types(grpc_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reasons = []
        for method, body, reply in (
            ("SubmitBatch", random_bytes(4096), pb.ReplyBatch),
            ("SubmitBatch", book_request("BTC-USD", 10), pb.ReplyBatch),  # a BookRequest where a CommandBatch belongs
            ("GetBook", random_bytes(4096, 2), pb.BookDepth),
        ):
            answer, error = await unary(w, method, body, reply)
            if error is not None:
                reasons.append(trailer_reason(error))
            elif isinstance(answer, pb.ReplyBatch) and answer.HasField("error"):
                reasons.append(RejectReason(answer.error.code))
            else:
                reasons.append(None)
        assert all(r is not None for r in reasons), reasons
        return reasons[0]

    run(grpc_wire, "garbage payloads and wrong message types", attack, reason=RejectReason.MALFORMED_MESSAGE)
