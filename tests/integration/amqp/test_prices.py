"""Price updates over RabbitMQ (``pricefeed``): JSON with decimal-string prices, routed by pair, persistent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aio_pika
import pytest

from pricefeed.publishers import PRICE_EXCHANGE, AmqpPublisher
from pricefeed.subscribers import AmqpSubscriber
from pricefeed.update import BadPriceUpdate, PriceUpdate


def _update(pair: str, price: str, seq: int, published_ns: int = 1_000) -> PriceUpdate:
    p = Decimal(price)
    return PriceUpdate(pair, seq, p, p, p, "test", published_ns)


def test_updates_reach_the_subscribers_of_their_pair_only_in_order(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    btc, eth = f"{rabbitmq_prefix}BTC-USD", f"{rabbitmq_prefix}ETH-USD"

    async def scenario() -> None:
        async with AmqpSubscriber(rabbitmq_url, [btc]) as btc_only, AmqpPublisher(rabbitmq_url) as pub:
            for seq in range(1, 6):
                await pub.publish(_update(eth, f"2000.{seq}", seq))
                await pub.publish(_update(btc, f"30000.0{seq}", seq))
            got: list[PriceUpdate] = []
            async for update in btc_only:
                got.append(update)
                if len(got) == 5:
                    break
            assert [u.pair for u in got] == [btc] * 5
            assert [u.seq for u in got] == [1, 2, 3, 4, 5]
            assert got[0].price == Decimal("30000.01") and got[0].source == "test"

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_wire_is_json_with_decimal_string_prices_and_persistent(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    pair = f"{rabbitmq_prefix}SOL-USD"

    async def scenario() -> None:
        connection = await aio_pika.connect_robust(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(PRICE_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue("", exclusive=True)
            await queue.bind(exchange, routing_key=pair)
            async with AmqpPublisher(rabbitmq_url) as pub:
                await pub.publish(PriceUpdate(pair, 1, Decimal("101.25"), Decimal("101.20"), Decimal("101.30"), "synthetic", 42))
            message = None
            for _ in range(100):
                message = await queue.get(fail=False)
                if message is not None:
                    break
                await asyncio.sleep(0.05)
            assert message is not None
            assert (
                message.body
                == (
                    f'{{"pair":"{pair}","seq":1,"price":"101.25","bid":"101.20","ask":"101.30","source":"synthetic",'
                    '"ts_ns":42,"published_ns":42}'
                ).encode()
            )
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT and message.content_type == "application/json"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "body",
    [
        b'{"pair":"BTC-USD","price":30000.5,"ts_ns":1,"seq":1,"source":"x"}',  # a float price
        b'{"pair":"BTC-USD","price":"-1","ts_ns":1,"seq":1,"source":"x"}',
        b'{"pair":"BTC-USD","price":"NaN","ts_ns":1,"seq":1,"source":"x"}',
        b'{"pair":"BTC-USD","price":"abc","ts_ns":1,"seq":1,"source":"x"}',
        b'{"price":"1","ts_ns":1,"seq":1}',
        b"\x80\x04 pickle",
        b"[1, 2]",
    ],
)
def test_bad_price_messages_are_refused(body: bytes) -> None:
    with pytest.raises(BadPriceUpdate):
        PriceUpdate.from_json(body)


def test_a_subscriber_skips_and_counts_malformed_updates(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    pair = f"{rabbitmq_prefix}XRP-USD"

    async def scenario() -> None:
        async with AmqpSubscriber(rabbitmq_url, [pair]) as sub:
            connection = await aio_pika.connect_robust(rabbitmq_url)
            async with connection:
                channel = await connection.channel()
                exchange = await channel.declare_exchange(PRICE_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
                await exchange.publish(aio_pika.Message(b'{"pair":"x","price":1.5}'), routing_key=pair)
            async with AmqpPublisher(rabbitmq_url) as pub:
                await pub.publish(_update(pair, "0.5", 1))
            update = await anext(sub.updates())
            assert update.price == Decimal("0.5") and sub.malformed == 1

    asyncio.run(asyncio.wait_for(scenario(), 30))
