"""Hostile input over NATS (through the session's real nats-server): oversize messages and counts,
snapshot amplification, garbage payloads and wrong message types.

The broker stands between the attacker and the server, so raw TCP attacks
hit nats-server, not ours; what reaches our server is what the broker
delivers (up to its ``max_payload``, 8 MiB here). Bounds: ``support.check``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from engine import RejectReason
from protos.exchange.v1 import exchange_pb2 as pb
from tests.hostile.conftest import started
from tests.hostile.support import Wire, book_request, empty_command_batch, lean_order_batch, random_bytes, run, snapshot_request
from transports.codec.proto_codec import decode_error
from transports.core.limits import Limits
from transports.nats.local import MAX_PAYLOAD
from transports.nats.settings import ERROR_HEADER, TRADER_HEADER, URL_ENV, Subjects

MAX_REQUEST = Limits().max_request_bytes
SUBJECTS = Subjects()


@pytest.fixture(scope="module")
def nats_wire(tmp_path_factory: pytest.TempPathFactory, nats_url: str) -> Iterator[Wire]:
    yield from started("nats", tmp_path_factory.mktemp("hostile-nats"), {URL_ENV: nats_url})


@contextlib.asynccontextmanager
async def connection(w: Wire) -> AsyncIterator[Client]:
    nc = await nats.connect(w.url, name="hostile", allow_reconnect=False, connect_timeout=5)
    try:
        yield nc
    finally:
        await nc.close()


async def request(nc: Client, subject: str, body: bytes, timeout: float = 20.0) -> Msg | None:
    try:
        return await nc.request(subject, body, timeout=timeout, headers={TRADER_HEADER: "mallory"})
    except nats.errors.TimeoutError:
        return None


def reason_of(msg: Msg | None, reply: type[pb.ReplyBatch] | type[pb.OutcomeBatch] | None = None) -> RejectReason | None:
    if msg is None:
        return None
    if (msg.headers or {}).get(ERROR_HEADER):
        return decode_error(msg.data).reason
    if reply is not None:
        with contextlib.suppress(Exception):
            message = reply.FromString(msg.data)
            if message.HasField("error"):
                return RejectReason(message.error.code)
    return None


# ------------------------------------------------------------------ oversize bytes and counts
def test_a_message_over_the_request_limit(nats_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with connection(w) as nc:
            msg = await request(nc, SUBJECTS.command("BTC-USD"), empty_command_batch(MAX_PAYLOAD - 4096))
        return reason_of(msg, pb.ReplyBatch)

    run(nats_wire, "CommandBatch of 8 MiB (2M empty commands)", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_million_empty_commands_under_the_byte_limit(nats_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with connection(w) as nc:
            msg = await request(nc, SUBJECTS.command("BTC-USD"), empty_command_batch(MAX_REQUEST - 64))
        return reason_of(msg, pb.ReplyBatch)

    run(nats_wire, "CommandBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_millions_of_lean_commands_under_the_byte_limit(nats_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with connection(w) as nc:
            msg = await request(nc, SUBJECTS.lean, lean_order_batch(MAX_REQUEST - 64))
        return reason_of(msg, pb.OutcomeBatch)

    run(nats_wire, "lean OrderBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_burst_of_oversize_messages_without_waiting(nats_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        body = empty_command_batch(MAX_PAYLOAD - 4096)
        async with connection(w) as nc:
            for _ in range(6):
                await nc.publish(SUBJECTS.command("BTC-USD"), body, headers={TRADER_HEADER: "mallory"})
            await nc.flush()
            await asyncio.sleep(1.0)
        return None

    run(nats_wire, "six 8 MiB CommandBatches published at once", attack)


# ------------------------------------------------------------------ amplification
def test_a_snapshot_request_naming_one_symbol_hundreds_of_thousands_of_times(nats_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with connection(w) as nc:
            msg = await request(nc, SUBJECTS.query("snapshot"), snapshot_request("BTC-USD", (MAX_PAYLOAD - 4096) // 9))
        assert msg is not None
        assert len(msg.data) < 1024 * 1024, f"a snapshot reply of {len(msg.data)} bytes"
        return reason_of(msg)

    run(nats_wire, "snapshot naming BTC-USD up to 8 MiB", attack)


def test_a_book_query_with_the_largest_depth(nats_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with connection(w) as nc:
            for _ in range(20):
                assert await request(nc, SUBJECTS.query("book"), book_request("BTC-USD", 2**32 - 1)) is not None
        return None

    run(nats_wire, "book depth 2^32-1, 20 times", attack)


# ------------------------------------------------------------------ garbage
def test_garbage_payloads_and_wrong_message_types(nats_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reasons = []
        async with connection(w) as nc:
            for subject, body, reply in (
                (SUBJECTS.command("BTC-USD"), random_bytes(4096), pb.ReplyBatch),
                (SUBJECTS.lean, random_bytes(4096, 2), pb.OutcomeBatch),
                (SUBJECTS.lean, empty_command_batch(64), pb.OutcomeBatch),  # a CommandBatch where an OrderBatch belongs
                (SUBJECTS.query("book"), random_bytes(4096, 3), None),
                (SUBJECTS.query("no-such-query"), b"", None),
            ):
                reasons.append(reason_of(await request(nc, subject, body, timeout=10), reply))
        assert all(r is not None for r in reasons), reasons
        return reasons[0]

    run(nats_wire, "garbage payloads and wrong message types", attack, reason=RejectReason.MALFORMED_MESSAGE)
