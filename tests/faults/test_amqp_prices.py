"""Persistent price updates on a durable subscriber queue survive a RabbitMQ restart (nothing confirmed is lost)."""

from __future__ import annotations

import asyncio

from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.prices import PricePublisher, PriceSubscriber, PriceUpdate


def test_confirmed_price_updates_survive_a_broker_restart_on_a_durable_queue(private_rabbitmq: LocalRabbitMQ) -> None:
    url = private_rabbitmq.url

    async def before() -> None:
        async with PriceSubscriber(url, ["BTC-USD"], queue="bots.prices"):
            pass  # declares and binds the durable queue, then goes away
        async with PricePublisher(url) as pub:
            for seq in range(1, 51):
                await pub.publish(PriceUpdate("BTC-USD", f"30000.{seq:02d}", seq, seq, "test"))

    async def after() -> list[PriceUpdate]:
        got: list[PriceUpdate] = []
        async with PriceSubscriber(url, ["BTC-USD"], queue="bots.prices") as sub:
            async for update in sub:
                got.append(update)
                if len(got) == 50:
                    break
        return got

    asyncio.run(before())
    private_rabbitmq.restart()
    got = asyncio.run(asyncio.wait_for(after(), 30))
    assert [u.seq for u in got] == list(range(1, 51))
    assert got[-1].price == "30000.50"
