"""``dex-pricefeed`` as a process, publishing to a real RabbitMQ, a real nats-server and a ZeroMQ PUB socket at once."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from decimal import Decimal

import aio_pika
import nats
import zmq

from pricefeed.update import PriceUpdate
from tests.integration.bots.support import ROOT

PAIRS = "BTC-USD,ETH-USD"


def test_one_feed_publishes_every_update_on_amqp_nats_and_zmq(tmp_path, rabbitmq_url, rabbitmq_prefix, nats_url):
    exchange_name = f"{rabbitmq_prefix}price_updates"

    async def scenario() -> tuple[list[aio_pika.abc.AbstractIncomingMessage], list[tuple[str, bytes]], list[list[bytes]], str]:
        connection = await aio_pika.connect(rabbitmq_url)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"{rabbitmq_prefix}watch", exclusive=True)
        await queue.bind(exchange, routing_key="ETH-USD")  # one pair only: the routing key is the pair
        nc = await nats.connect(nats_url)
        seen_nats: list[tuple[str, bytes]] = []

        async def on_nats(msg: nats.aio.msg.Msg) -> None:
            seen_nats.append((msg.subject, msg.data))

        await nc.subscribe("prices.>", cb=on_nats)
        await nc.flush()
        command = [
            sys.executable, "-m", "pricefeed.cli", "--amqp-url", rabbitmq_url, "--exchange", exchange_name, "--nats-url", nats_url,
            "--publish", "amqp,nats,zmq", "--pairs", PAIRS, "--interval", "0.2", "--count", "15", "--seed", "9",
        ]  # fmt: skip
        feed = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert feed.stdout is not None
        endpoint = ""
        for _ in range(20):  # the start-up lines name the PUB endpoint
            line = feed.stdout.readline()
            found = re.search(r"publishing to zmq (tcp://\S+)", line)
            if found:
                endpoint = found.group(1)
                break
        context = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.connect(endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        seen_zmq: list[list[bytes]] = []
        deadline = time.monotonic() + 30
        while feed.poll() is None and time.monotonic() < deadline:
            while sub.poll(0):
                seen_zmq.append(sub.recv_multipart())
            await asyncio.sleep(0.02)
        output = feed.communicate(timeout=30)[0]
        assert feed.returncode == 0, output
        sub.close(0)
        context.term()
        await asyncio.sleep(0.3)
        got: list[aio_pika.abc.AbstractIncomingMessage] = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            got.append(message)
        await nc.drain()
        await connection.close()
        return got, seen_nats, seen_zmq, output

    amqp_messages, nats_messages, zmq_frames, output = asyncio.run(scenario())
    assert "30 updates published" in output
    assert len(amqp_messages) == 15
    for message in amqp_messages:
        update = PriceUpdate.from_json(message.body)
        assert message.routing_key == "ETH-USD" == update.pair
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.message_id == f"ETH-USD-{update.seq}"
        assert isinstance(update.price, Decimal)
    seqs = [PriceUpdate.from_json(m.body).seq for m in amqp_messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == 15
    assert sorted({subject for subject, _ in nats_messages}) == ["prices.BTC-USD", "prices.ETH-USD"]
    assert len(nats_messages) == 30
    by_seq = {PriceUpdate.from_json(m.body).seq: PriceUpdate.from_json(m.body) for m in amqp_messages}
    for _, data in nats_messages:  # the same updates on both: same seq, same price
        update = PriceUpdate.from_json(data)
        if update.pair == "ETH-USD":
            assert by_seq[update.seq] == update
    assert zmq_frames, "no update reached the ZeroMQ subscriber"
    assert all(PriceUpdate.from_json(body).pair == topic.decode() for topic, body in zmq_frames)
