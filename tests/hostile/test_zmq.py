"""Hostile input over ZeroMQ: oversize frames and counts, snapshot amplification, idle peers, garbage ZMTP.

The attacker is a DEALER of its own (or a raw TCP socket below ZMTP).
Bounds: ``support.check``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
import zmq
import zmq.asyncio

from engine import RejectReason
from protos.exchange.v1 import exchange_pb2 as pb
from tests.hostile.conftest import started
from tests.hostile.support import (
    Wire,
    book_request,
    empty_command_batch,
    idle,
    lean_order_batch,
    random_bytes,
    random_connections,
    run,
    snapshot_request,
)
from transports.codec.proto_codec import decode_error
from transports.core.limits import Limits
from transports.zmq.settings import parse_url

MAX_REQUEST = Limits().max_request_bytes
MIB = 1024 * 1024
DROPPED_S = 2.0  # how long to wait for a reply to a frame over the server's MAXMSGSIZE (the peer is dropped: none comes)
# A ZMTP 3.0 greeting: signature, version 3.0, the NULL mechanism, as-server 0, filler.
GREETING = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + bytes(31)


@pytest.fixture(scope="module")
def zmq_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    yield from started("zmq", tmp_path_factory.mktemp("hostile-zmq"))


@contextlib.asynccontextmanager
async def dealer(w: Wire) -> AsyncIterator[zmq.asyncio.Socket]:
    context = zmq.asyncio.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(parse_url(w.url).orders_endpoint)
    try:
        await sock.send_multipart([b"hello", b"h", b"mallory"])
        await asyncio.wait_for(sock.recv_multipart(), 10)
        yield sock
    finally:
        sock.close()


async def ask(sock: zmq.asyncio.Socket, frames: Sequence[bytes], timeout: float = 20.0) -> list[bytes] | None:
    """Send one request; its reply frames, or None if none came (the server dropped it or the peer)."""
    await sock.send_multipart(list(frames), copy=False)
    try:
        return list(await asyncio.wait_for(sock.recv_multipart(), timeout))
    except TimeoutError:
        return None


def reason_of(reply: list[bytes] | None) -> RejectReason | None:
    """The reason of an ``error`` reply, or of the ``Error`` inside a ``ReplyBatch``/``OutcomeBatch``."""
    if not reply:
        return None
    if reply[0] == b"error":
        return decode_error(reply[-1]).reason
    message: pb.ReplyBatch | pb.OutcomeBatch = pb.OutcomeBatch() if reply[0] == b"orders" else pb.ReplyBatch()
    with contextlib.suppress(Exception):
        message.ParseFromString(reply[-1])
        if message.HasField("error"):
            return RejectReason(message.error.code)
    return None


# ------------------------------------------------------------------ oversize bytes and counts
def test_a_16_mib_frame_of_empty_commands(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with dealer(w) as sock:
            return reason_of(await ask(sock, [empty_command_batch(16 * MIB)], timeout=DROPPED_S))

    run(zmq_wire, "one 16 MiB frame (4.19M empty commands)", attack)


def test_six_16_mib_frames_in_a_row(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        frame = empty_command_batch(16 * MIB)
        async with dealer(w) as sock:
            for _ in range(6):
                await sock.send(frame, copy=False)
            replies = []
            with contextlib.suppress(TimeoutError):
                for _ in range(6):
                    replies.append(list(await asyncio.wait_for(sock.recv_multipart(), DROPPED_S)))
        return reason_of(replies[0]) if replies else None

    run(zmq_wire, "six 16 MiB frames in a row", attack)


def test_a_million_empty_commands_under_the_byte_limit(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with dealer(w) as sock:
            return reason_of(await ask(sock, [empty_command_batch(MAX_REQUEST - 64)]))

    run(zmq_wire, "CommandBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_millions_of_lean_commands_under_the_byte_limit(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with dealer(w) as sock:
            return reason_of(await ask(sock, [b"orders", b"c1", lean_order_batch(MAX_REQUEST - 64)]))

    run(zmq_wire, "lean OrderBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


# ------------------------------------------------------------------ amplification
def test_a_snapshot_request_naming_one_symbol_a_million_times(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with dealer(w) as sock:
            reply = await ask(sock, [b"snapshot", b"c1", snapshot_request("BTC-USD", 1_000_000)], timeout=DROPPED_S)
        assert reply is None or len(reply) <= 3, f"a reply of {len(reply)} frames"
        return reason_of(reply)

    run(zmq_wire, "snapshot naming BTC-USD 1M times", attack)


def test_a_snapshot_request_under_the_byte_limit_collapses_its_duplicates(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with dealer(w) as sock:
            reply = await ask(sock, [b"snapshot", b"c1", snapshot_request("BTC-USD", (MAX_REQUEST - 64) // 9)])
        assert reply is not None, "no reply"
        # Refused for naming too many symbols, or answered with one snapshot (the duplicates collapsed).
        assert reason_of(reply) == RejectReason.LIMIT_EXCEEDED or (reply[0] == b"snapshot" and len(reply) == 3), reply[:3]
        return reason_of(reply)

    run(zmq_wire, "snapshot naming BTC-USD up to the byte limit", attack)


def test_a_book_query_with_the_largest_depth(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with dealer(w) as sock:
            for i in range(20):
                reply = await ask(sock, [b"book", b"b%d" % i, book_request("BTC-USD", 2**32 - 1)])
                assert reply is not None and reply[0] in (b"book", b"error"), reply
        return None

    run(zmq_wire, "book depth 2^32-1, 20 times", attack)


# ------------------------------------------------------------------ idle peers
def test_five_hundred_idle_peers(zmq_wire: Wire) -> None:
    run(zmq_wire, "500 idle peers, half after a ZMTP greeting (2 s)", idle(250, 2.0, GREETING, 250))


# ------------------------------------------------------------------ garbage
def test_random_bytes_and_garbage_zmtp(zmq_wire: Wire) -> None:
    run(zmq_wire, "random bytes and garbage after a ZMTP greeting", random_connections(10, 64 * 1024, b"", GREETING, read_s=0.2))


def test_valid_frames_with_garbage_payloads_and_wrong_kinds(zmq_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reasons = []
        async with dealer(w) as sock:
            for frames in (
                [random_bytes(4096)],  # one frame that is no CommandBatch
                [b"book", b"c1", random_bytes(4096, 2)],
                [b"orders", b"c2", random_bytes(4096, 3)],
                [b"no-such-kind", b"c3", b"x"],
                [b"book", b"c" * 4096, b""],  # a correlation frame over its limit
                [b"snapshot", b"c5", random_bytes(4096, 5)],
            ):
                reasons.append(reason_of(await ask(sock, frames, timeout=10)))
        assert all(r is not None for r in reasons), reasons
        return reasons[0]

    run(zmq_wire, "garbage payloads and wrong kinds", attack, reason=RejectReason.MALFORMED_MESSAGE)
