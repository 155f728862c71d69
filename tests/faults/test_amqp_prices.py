"""Persistent price updates on a durable subscriber queue survive a RabbitMQ restart (nothing confirmed is lost)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from pricefeed.publishers import AmqpPublisher
from pricefeed.subscribers import AmqpSubscriber
from pricefeed.update import PriceUpdate
from transports.amqp.broker import LocalRabbitMQ


def test_confirmed_price_updates_survive_a_broker_restart_on_a_durable_queue(private_rabbitmq: LocalRabbitMQ) -> None:
    url = private_rabbitmq.url

    async def before() -> None:
        async with AmqpSubscriber(url, ["BTC-USD"], queue="bots.prices"):
            pass  # declares and binds the durable queue, then goes away
        async with AmqpPublisher(url) as pub:
            for seq in range(1, 51):
                price = Decimal(f"30000.{seq:02d}")
                await pub.publish(PriceUpdate("BTC-USD", seq, price, price, price, "test", seq))

    async def after() -> list[PriceUpdate]:
        got: list[PriceUpdate] = []
        async with AmqpSubscriber(url, ["BTC-USD"], queue="bots.prices") as sub:
            async for update in sub:
                got.append(update)
                if len(got) == 50:
                    break
        return got

    asyncio.run(before())
    private_rabbitmq.restart()
    got = asyncio.run(asyncio.wait_for(after(), 30))
    assert [u.seq for u in got] == list(range(1, 51))
    assert got[-1].price == Decimal("30000.50")
