"""Every wire turbo-dex serves, through one sharded front: ``turbo-dex --shards 2 --transports <all>``.

One real front serves HTTP, gRPC, ZeroMQ, NATS (a real nats-server), RabbitMQ
(a real broker) and FIX over two real shard processes. Through each wire a
trader's orders on two symbols land on their two shards (the order ids say
which), and orders sent over different wires to one shard trade with each other.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import OrderAccepted, PlaceOrder, Side, TradeExecuted
from tests.support.launcher import launched
from transports.amqp.broker import LocalRabbitMQ
from transports.launcher import served
from transports.nats.local import NatsServerProcess
from transports.registry import make_client
from transports.sharding.shard_map import shard_of_id

BTC, ETH = "BTC-USD", "ETH-USD"  # pinned to shards 0 and 1
PX = {BTC: 3_000_000, ETH: 200_000}
QTY = {BTC: 10, ETH: 10}


@pytest.fixture
def urls(tmp_path: Path, nats_server: NatsServerProcess, rabbitmq_broker: LocalRabbitMQ) -> Iterator[dict[str, str]]:
    args = ["--shards", "2", "--pin", f"{BTC}=0", "--pin", f"{ETH}=1", "--transports", ",".join(served()), "--no-journal"]
    args += ["--log-level", "warning", "--state-dir", str(tmp_path)]
    args += ["--port", "0", "--zmq-port", "0", "--zmq-pub-port", "0", "--grpc-port", "0", "--fix-port", "0"]
    with launched(args, nats_server.url, rabbitmq_broker.url, f"dex-shards-{os.getpid()}") as (line, urls):
        assert "a front of 2 shards" in line, line
        assert set(urls) == set(served()), line
        yield urls


def test_every_served_wire_reaches_both_shards_and_wires_trade_with_each_other(urls: dict[str, str]) -> None:
    assert set(urls) == set(served())

    async def scenario() -> None:
        clients = {wire: make_client(wire, f"{wire}-trader", url) for wire, url in urls.items()}
        for client in clients.values():
            await client.connect()
        try:
            for step, (wire, client) in enumerate(clients.items()):
                batch = [PlaceOrder("", f"{wire}-{s}", s, Side.BUY, QTY[s], PX[s] - 100 - step) for s in (BTC, ETH)]
                answered = await client.submit(batch)
                accepted = [next(e for e in events if isinstance(e, OrderAccepted)) for events in answered]
                assert [(a.symbol, shard_of_id(a.order_id)) for a in accepted] == [(BTC, 0), (ETH, 1)], wire
            # A sell over RabbitMQ takes the best bid, which came over the first wire; a sell over NATS the next one (each
            # bid is 10 lots, each sell 10 lots, priced under every bid). FIX reports name no counterparty: not a seller.
            wires = list(clients)
            for seller, expected_maker in (("amqp", wires[0]), ("nats", wires[1])):
                events = (await clients[seller].submit([PlaceOrder("", f"{seller}-x", ETH, Side.SELL, QTY[ETH], PX[ETH] - 150)]))[0]
                trade = next(e for e in events if isinstance(e, TradeExecuted))
                assert (trade.maker_trader, trade.taker_trader) == (f"{expected_maker}-trader", f"{seller}-trader")
        finally:
            for client in clients.values():
                await client.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))
