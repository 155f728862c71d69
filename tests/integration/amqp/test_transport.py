"""The AMQP transport beyond the contract suite: its errors, its wire rules, its server process and dex-trader over it."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
import pytest

from engine import Engine, Instrument, MalformedMessage, NotConnected, OrderAccepted, PlaceOrder, RejectReason, Side
from traders.harness.server import free_port
from transports.amqp import protocol as proto
from transports.amqp.client import AmqpClient
from transports.amqp.local import LocalAmqpServer
from transports.amqp.server import AmqpServer, AmqpServerSettings
from transports.codec.proto_codec import decode_error, decode_market_data
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.marketdata import MarketUpdate

ROOT = Path(__file__).resolve().parents[3]
SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001")


def test_no_broker_is_a_clear_not_connected_error_not_a_hang() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"

    async def scenario() -> None:
        client = AmqpClient("alice", url, connect_timeout=2.0)
        started = time.monotonic()
        with pytest.raises(NotConnected) as info:
            await client.connect()
        assert time.monotonic() - started < 5
        assert f"not connected to RabbitMQ at amqp://guest@127.0.0.1:{url.rsplit(':', 1)[1].rstrip('/')}" in str(info.value)
        assert "guest:guest" not in str(info.value)  # no password in messages
        assert info.value.reason is RejectReason.UNAVAILABLE

    asyncio.run(scenario())


def test_a_broker_without_an_exchange_server_answers_not_connected_within_the_timeout(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    async def scenario() -> None:
        client = AmqpClient("alice", f"{rabbitmq_url}#{rabbitmq_prefix}nobody", timeout=1.0)
        with pytest.raises(NotConnected) as info:
            await client.connect()  # fetches the instruments: nobody answers
        assert "is dex-amqp running?" in str(info.value)
        assert client._connection is None  # nothing left open (no reconnect loop behind a failed connect)

    asyncio.run(scenario())


async def _served(url: str, name: str) -> tuple[Gateway, AmqpServer]:
    gateway = Gateway(Engine(), GatewayConfig(journal=None))
    await gateway.start([INSTRUMENT])
    server = AmqpServer(gateway, AmqpServerSettings(url=url, name=name, journal=None))
    await server.start()
    return gateway, server


def test_bodies_that_are_not_our_protobuf_are_refused_with_a_reason_pickle_included(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    name = f"{rabbitmq_prefix}wire"

    async def scenario() -> None:
        gateway, server = await _served(rabbitmq_url, name)
        connection = await aio_pika.connect_robust(rabbitmq_url)
        try:
            channel = await connection.channel()
            replies = await channel.declare_queue("", exclusive=True)
            pickled = pickle.dumps({"symbol": SYM, "side": "buy", "qty": 1})  # what aio-pika's RPC helper would send
            cases: list[tuple[str, bytes, dict[str, aio_pika.abc.FieldValue], RejectReason]] = [
                (proto.BATCH, pickled, {"trader": "alice"}, RejectReason.MALFORMED_MESSAGE),
                ("launch-missiles", b"", {"trader": "alice"}, RejectReason.MALFORMED_MESSAGE),
                (proto.BATCH, b"", {}, RejectReason.UNAUTHORIZED),  # no trader header: nobody to act for
                (proto.BOOK, b"\xff\xff", {"trader": "alice"}, RejectReason.MALFORMED_MESSAGE),
            ]
            for i, (kind, body, headers, _) in enumerate(cases):
                message = aio_pika.Message(body, type=kind, reply_to=replies.name, correlation_id=str(i), headers=dict(headers))
                await channel.default_exchange.publish(message, routing_key=f"{name}.commands")
            answers: dict[str, RejectReason] = {}
            async with replies.iterator(timeout=10) as messages:
                async for reply in messages:
                    await reply.ack()
                    assert reply.type == proto.ERROR
                    answers[reply.correlation_id or ""] = decode_error(reply.body).reason
                    if len(answers) == len(cases):
                        break
            assert answers == {str(i): reason for i, (*_, reason) in enumerate(cases)}
            assert gateway.stats_dict()["orders"] == 0
            async with AmqpClient("alice", server.url) as alice:  # still serving
                replies_ = await alice.submit([PlaceOrder("", "a1", SYM, Side.BUY, 1000, 3_000_000)])
                assert isinstance(replies_[0][0], OrderAccepted) and replies_[0][0].trader == "alice"
        finally:
            await connection.close()
            await server.stop()
            await gateway.stop()

    asyncio.run(scenario())


def test_market_data_routing_keys_name_the_kind_and_the_symbol(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    name = f"{rabbitmq_prefix}md"

    async def scenario() -> None:
        gateway, server = await _served(rabbitmq_url, name)
        connection = await aio_pika.connect_robust(rabbitmq_url)
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(f"{name}.md", aio_pika.ExchangeType.TOPIC, durable=True)
            trades = await channel.declare_queue("", exclusive=True)
            await trades.bind(exchange, routing_key="trade.BTC-USD")
            alice = AmqpClient("alice", server.url)
            async with alice, AmqpClient("bob", server.url) as bob:
                await alice.snapshots([SYM])  # a subscriber's first step: the server publishes BTC-USD from now on
                await alice.submit([PlaceOrder("", "a1", SYM, Side.SELL, 1000, 3_000_000)])
                await bob.submit([PlaceOrder("", "b1", SYM, Side.BUY, 1000, 3_000_000)])
            message = await _get(trades)
            update = decode_market_data(message.body, gateway.instrument)
            assert isinstance(update, MarketUpdate) and update.symbol == SYM and update.md_seq >= 1
            await asyncio.sleep(0.5)
            assert await trades.get(fail=False) is None  # one trade; its book deltas went to book.BTC-USD, not here
        finally:
            await connection.close()
            await server.stop()
            await gateway.stop()

    asyncio.run(scenario())


async def _get(queue: aio_pika.abc.AbstractQueue, timeout: float = 5.0) -> aio_pika.abc.AbstractIncomingMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await queue.get(fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing arrived on {queue.name} within {timeout:g}s")


def test_unknown_symbol_on_subscribe_is_refused(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    async def scenario() -> None:
        gateway, server = await _served(rabbitmq_url, f"{rabbitmq_prefix}unknown")
        try:
            async with AmqpClient("alice", server.url) as alice:
                with pytest.raises(MalformedMessage) as info:
                    await anext(alice.market_data(["NOPE-USD"]))
                assert info.value.reason is RejectReason.UNKNOWN_SYMBOL
        finally:
            await server.stop()
            await gateway.stop()

    asyncio.run(scenario())


def test_dex_amqp_process_serves_dex_trader_and_reconciles(rabbitmq_url: str, tmp_path: Path) -> None:
    with LocalAmqpServer(tmp_path / "server", broker_url=rabbitmq_url) as server:
        out = tmp_path / "harness.json"
        done = subprocess.run(
            [
                *(sys.executable, "-m", "traders.harness", "--transport", "amqp", "--server", server.url, "--duration", "1s"),
                *("--warmup", "0s", "--batch", "200", "--workers", "2", "--quiet", "--json", str(out), "--strict-reconcile"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(out.read_text())
        assert report["errors"] == 0 and report["reconciliation"]["ok"] and report["throughput_per_s"] > 0
        pid = server.pid
    assert server.process is not None and server.process.returncode == 0  # SIGTERM: a clean shutdown
    assert pid
