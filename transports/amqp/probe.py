"""Send a body that is not a CommandBatch to the commands queue, and read the reason the server gives (for the contract suite)."""

from __future__ import annotations

import asyncio
import secrets

import aio_pika

from engine import RejectReason
from transports.amqp import protocol as proto
from transports.amqp.connection import connect, strip_name
from transports.amqp.settings import AmqpNames, client_url, default_names
from transports.codec.proto_codec import decode_error


async def send_malformed(url: str | None) -> RejectReason:
    base, named = strip_name(client_url(url))
    names = AmqpNames(named) if named else default_names()
    connection = await connect(base, name="dex malformed probe")
    try:
        channel = await connection.channel()
        replies = await channel.declare_queue(f"{names.name}.probe.{secrets.token_hex(4)}", exclusive=True, auto_delete=True)
        message = aio_pika.Message(
            b"\xff\xff\xff\xff not a CommandBatch",
            type=proto.BATCH,
            reply_to=replies.name,
            correlation_id="probe",
            headers={"trader": "probe"},
        )
        await channel.default_exchange.publish(message, routing_key=names.commands)
        async with replies.iterator(timeout=10) as messages:
            async for reply in messages:
                await reply.ack()
                assert reply.type == proto.ERROR, reply.type
                return decode_error(reply.body).reason
        raise AssertionError("no reply")  # pragma: no cover - the iterator ends only by timeout
    finally:
        await asyncio.wait_for(connection.close(), 10)
