"""Prices nobody consumes do not pile up: the broker drops an AMQP price update after ``PRICE_TTL_S``.

A feed left running between two runs of the bots used to fill their durable
partition queues with stale prices, and the next start spent its first
seconds rejecting them. Here a real RabbitMQ and the real publisher: the
update carries its expiration, and one with a short TTL is gone from an
unconsumed queue once it has passed.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aio_pika
import pytest

from pricefeed import publishers
from pricefeed.publishers import PRICE_TTL_S, AmqpPublisher
from pricefeed.update import PriceUpdate, Quote, make_update


def _update(seq: int) -> PriceUpdate:
    return make_update(Quote("BTC-USD", Decimal("29999"), Decimal("30001"), Decimal("30000")), seq, "test")


async def _published(url: str, exchange: str, queue_name: str, wait_s: float) -> aio_pika.abc.AbstractIncomingMessage | None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(queue_name, auto_delete=False, durable=False)
        await queue.bind(target, routing_key="BTC-USD")
        feed = AmqpPublisher(url, exchange)
        await feed.connect()
        try:
            await feed.publish(_update(1))
        finally:
            await feed.close()
        await asyncio.sleep(wait_s)
        message = await queue.get(fail=False, timeout=5)
        if message is not None:
            await message.ack()
        await queue.delete(if_unused=False, if_empty=False)
        return message
    finally:
        await connection.close()


def test_a_price_update_carries_its_expiration(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    message = asyncio.run(_published(rabbitmq_url, f"{rabbitmq_prefix}price_updates", f"{rabbitmq_prefix}keep", 0.0))
    assert message is not None and message.expiration == PRICE_TTL_S


def test_an_unconsumed_price_is_dropped_by_the_broker_once_expired(
    rabbitmq_url: str, rabbitmq_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publishers, "PRICE_TTL_S", 0.3)
    message = asyncio.run(_published(rabbitmq_url, f"{rabbitmq_prefix}price_updates", f"{rabbitmq_prefix}stale", 1.0))
    assert message is None
