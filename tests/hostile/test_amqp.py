"""Hostile input over RabbitMQ (through the session's real broker): oversize messages and counts,
snapshot amplification, garbage payloads and wrong message types.

The broker stands between the attacker and the server: what reaches our
server is what RabbitMQ delivers (messages up to its own size limit,
16 MiB or more). Bounds: ``support.check``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from engine import RejectReason
from protos.exchange.v1 import exchange_pb2 as pb
from tests.hostile.conftest import started
from tests.hostile.support import Wire, book_request, empty_command_batch, lean_order_batch, random_bytes, run, snapshot_request
from transports.amqp import protocol as proto
from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.connection import strip_name
from transports.amqp.settings import AmqpNames
from transports.codec.proto_codec import decode_error
from transports.core.limits import Limits

MAX_REQUEST = Limits().max_request_bytes
BROKER_MAX = Limits().max_broker_message_bytes  # RabbitMQ's max_message_size (scripts/rabbitmq.sh)
MIB = 1024 * 1024


class BrokerRefused(Exception):
    """RabbitMQ refused the message itself (over its max_message_size): it never reached our server."""


@pytest.fixture(scope="module")
def amqp_wire(tmp_path_factory: pytest.TempPathFactory, rabbitmq_broker: LocalRabbitMQ) -> Iterator[Wire]:
    yield from started("amqp", tmp_path_factory.mktemp("hostile-amqp"))  # the broker's URL is in $DEX_AMQP_URL


class Attacker:
    def __init__(self, channel: AbstractChannel, replies: AbstractQueue, commands: str) -> None:
        self.channel = channel
        self.replies = replies
        self.commands = commands
        self._waiting: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}

    async def on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message)

    async def send(self, kind: str, body: bytes) -> str:
        corr = secrets.token_hex(4)
        self._waiting[corr] = asyncio.get_running_loop().create_future()
        message = aio_pika.Message(
            body, type=kind, reply_to=self.replies.name, correlation_id=corr, headers={proto.TRADER_HEADER: "mallory"}
        )
        try:
            await self.channel.default_exchange.publish(message, routing_key=self.commands)
        except asyncio.CancelledError as exc:  # aio-pika's way of saying the broker closed the channel
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise BrokerRefused(str(exc)) from None
        except aio_pika.exceptions.AMQPError as exc:
            raise BrokerRefused(str(exc)) from None
        return corr

    async def ask(self, kind: str, body: bytes, timeout: float = 20.0) -> AbstractIncomingMessage | None:
        corr = await self.send(kind, body)
        try:
            return await asyncio.wait_for(self._waiting[corr], timeout)
        except (TimeoutError, KeyError):
            return None


@contextlib.asynccontextmanager
async def attacker(w: Wire) -> AsyncIterator[Attacker]:
    base, name = strip_name(w.url)
    connection = await aio_pika.connect(base, name="hostile")
    try:
        channel = await connection.channel()
        replies = await channel.declare_queue(f"{name}.hostile.{secrets.token_hex(4)}", exclusive=True, auto_delete=True)
        a = Attacker(channel, replies, AmqpNames(name).commands)
        await replies.consume(a.on_reply, no_ack=True)
        yield a
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 10)


def reason_of(message: AbstractIncomingMessage | None) -> RejectReason | None:
    if message is None:
        return None
    if message.type == proto.ERROR:
        return decode_error(message.body).reason
    reply: pb.ReplyBatch | pb.OutcomeBatch = pb.OutcomeBatch() if message.type == proto.ORDERS else pb.ReplyBatch()
    with contextlib.suppress(Exception):
        reply.ParseFromString(message.body)
        if reply.HasField("error"):
            return RejectReason(reply.error.code)
    return None


# ------------------------------------------------------------------ oversize bytes and counts
def test_a_16_mib_message_is_refused_by_the_broker(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with attacker(w) as a:
            with pytest.raises(BrokerRefused):
                await a.ask(proto.BATCH, empty_command_batch(16 * MIB))
        return None

    run(amqp_wire, "CommandBatch of 16 MiB (over the broker's limit)", attack)


def test_a_message_just_under_the_brokers_limit(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with attacker(w) as a:
            return reason_of(await a.ask(proto.BATCH, empty_command_batch(BROKER_MAX - 4096)))

    run(amqp_wire, "CommandBatch just under the broker's limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_million_empty_commands_under_the_byte_limit(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with attacker(w) as a:
            return reason_of(await a.ask(proto.BATCH, empty_command_batch(MAX_REQUEST - 64)))

    run(amqp_wire, "CommandBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_millions_of_lean_commands_under_the_byte_limit(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with attacker(w) as a:
            return reason_of(await a.ask(proto.ORDERS, lean_order_batch(MAX_REQUEST - 64)))

    run(amqp_wire, "lean OrderBatch of empty commands up to the byte limit", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_burst_of_oversize_messages_without_waiting(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        body = empty_command_batch(BROKER_MAX - 4096)
        async with attacker(w) as a:
            sent = [await a.send(proto.BATCH, body) for _ in range(6)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(a._waiting[c] for c in sent if c in a._waiting)), 20)
        return None

    run(amqp_wire, "six CommandBatches just under the broker's limit at once", attack)


# ------------------------------------------------------------------ amplification
def test_a_snapshot_request_naming_one_symbol_again_and_again(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with attacker(w) as a:
            reply = await a.ask(proto.SNAPSHOT, snapshot_request("BTC-USD", (BROKER_MAX - 4096) // 9))
        assert reply is not None and len(reply.body) < MIB, f"a snapshot reply of {reply and len(reply.body)} bytes"
        return reason_of(reply)

    run(amqp_wire, "snapshot naming BTC-USD up to the broker's limit", attack)


def test_a_book_query_with_the_largest_depth(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with attacker(w) as a:
            for _ in range(20):
                assert await a.ask(proto.BOOK, book_request("BTC-USD", 2**32 - 1)) is not None
        return None

    run(amqp_wire, "book depth 2^32-1, 20 times", attack)


# ------------------------------------------------------------------ garbage
def test_garbage_payloads_and_wrong_message_types(amqp_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        reasons = []
        async with attacker(w) as a:
            for kind, body in (
                (proto.BATCH, random_bytes(4096)),
                (proto.ORDERS, random_bytes(4096, 2)),
                (proto.BOOK, random_bytes(4096, 3)),
                ("no-such-type", b"x"),
                (proto.ORDERS, empty_command_batch(64)),  # a CommandBatch where an OrderBatch belongs
            ):
                reasons.append(reason_of(await a.ask(kind, body, timeout=10)))
        assert all(r is not None for r in reasons), reasons
        return reasons[0]

    run(amqp_wire, "garbage payloads and wrong message types", attack, reason=RejectReason.MALFORMED_MESSAGE)
