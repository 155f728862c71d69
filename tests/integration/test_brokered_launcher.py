"""``turbo-dex --transports http,zmq,nats,amqp``: the brokered wires share the one gateway too.

One real ``turbo-dex`` process serves HTTP, ZeroMQ, NATS (on a real
nats-server) and RabbitMQ (on a real broker) from one gateway: an order over
NATS rests, one over RabbitMQ trades against it, and the book seen over HTTP
and ZeroMQ is the same one. The broker URLs are passed by the options the
descriptors name (``--nats-url``, ``--amqp-url``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from engine import OrderAccepted, PlaceOrder, Side, TradeExecuted
from tests.support.launcher import launched
from transports.amqp.broker import LocalRabbitMQ
from transports.launcher import served
from transports.nats.local import NatsServerProcess
from transports.registry import TRANSPORTS, make_client

SYM = "BTC-USD"
PX = 3_000_000  # 30000.00
WIRES = ("http", "zmq", "nats", "amqp")


@pytest.fixture
def urls(nats_server: NatsServerProcess, rabbitmq_broker: LocalRabbitMQ) -> Iterator[dict[str, str]]:
    args = [
        "--transports",
        ",".join(WIRES),
        "--no-journal",
        "--log-level",
        "warning",
        "--port",
        "0",
        "--zmq-port",
        "0",
        "--zmq-pub-port",
        "0",
    ]
    with launched(args, nats_server.url, rabbitmq_broker.url, f"dex-launch-{os.getpid()}") as (line, urls):
        assert set(urls) == {"http", "zmq", "nats", "amqp"}, line
        assert nats_server.url in line and "amqp://" in line, line
        assert "guest:guest" not in line  # the broker's password is not printed
        yield urls


def test_turbo_dex_serves_every_mounted_transport_and_knows_each_brokers_option() -> None:
    from transports.launcher import _parser

    options = _parser().format_help()
    assert set(WIRES) <= set(served())
    assert "dht" not in served() and "inproc" not in served()  # a DHT node is its own process kind
    for name in served():
        broker = TRANSPORTS[name].broker
        if broker is not None:
            assert broker.option in options


def test_a_dht_node_is_not_served_from_the_gateway_and_turbo_dex_names_its_own_process(capsys: pytest.CaptureFixture[str]) -> None:
    from transports.launcher import main

    assert main(["--transports", "http,dht"]) == 2
    assert "dht: dex-node" in capsys.readouterr().err


def test_orders_over_nats_and_rabbitmq_trade_on_one_book(urls: dict[str, str]) -> None:
    async def scenario() -> None:
        clients = {wire: make_client(wire, f"{wire}-trader", urls[wire]) for wire in WIRES}
        for client in clients.values():
            await client.connect()
        try:
            resting = (await clients["nats"].submit([PlaceOrder("", "n1", SYM, Side.SELL, 10_000, PX)]))[0]
            assert [e.trader for e in resting if isinstance(e, OrderAccepted)] == ["nats-trader"]
            taking = (await clients["amqp"].submit([PlaceOrder("", "a1", SYM, Side.BUY, 4_000, PX)]))[0]
            trades = [e for e in taking if isinstance(e, TradeExecuted)]
            assert [(t.maker_trader, t.taker_trader, t.price, t.qty) for t in trades] == [("nats-trader", "amqp-trader", PX, 4_000)]
            for wire in ("http", "zmq"):  # the same book, whatever wire reads it
                book = await clients[wire].book(SYM)
                assert [(lvl.price, lvl.qty) for lvl in book.asks] == [(PX, 6_000)], wire
        finally:
            for client in clients.values():
                await client.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))
