"""RabbitMQ restarts under load: client and server reconnect and resume, and no confirmed batch is lost or doubled.

A real broker of the test's own (``private_rabbitmq``) is restarted (clean
shutdown) or killed (SIGKILL) while a trader submits batches. Every batch the
broker confirmed (``submit`` returned, or raised ``NoReply``: confirmed, no
answer in time) must end up applied exactly once: the commands queue is
durable and the batches persistent, the server acknowledges a request only
after answering it, and a redelivered batch never doubles an order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from engine import Engine, Instrument, NotConnected, OrderAccepted, OrderRejected, PlaceOrder, RejectReason, Side
from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.client import AmqpClient, NoReply
from transports.amqp.server import AmqpServer, AmqpServerSettings
from transports.core.gateway import Gateway, GatewayConfig

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001")
PER_BATCH = 20
LANES = 3


@dataclass
class Outcome:
    confirmed: list[list[str]] = field(default_factory=list)  # coids of batches the broker confirmed
    unconfirmed: int = 0  # NotConnected before a confirm: may or may not be in the queue
    no_reply: int = 0  # confirmed, but no answer in time
    after_restart: int = 0  # batches answered after the broker came back


def _batch(name: str) -> list[PlaceOrder]:
    # Bids only, never crossing: every accepted order rests, so the book shows each exactly once.
    return [PlaceOrder("", f"b{name}-{j}", SYM, Side.BUY, 1000, 2_000_000 + (sum(map(ord, name)) + j) % 1000) for j in range(PER_BATCH)]


async def _trade_through(broker: LocalRabbitMQ, fault: Callable[[], object]) -> tuple[Gateway, Outcome]:
    gateway = Gateway(Engine(), GatewayConfig(journal=None))
    await gateway.start([INSTRUMENT])
    server = AmqpServer(gateway, AmqpServerSettings(url=broker.url, name="faults", journal=None))
    await server.start()
    client = AmqpClient("alice", server.url, timeout=20.0, connect_timeout=5.0)
    await client.connect()
    outcome = Outcome()
    loop = asyncio.get_running_loop()
    restarted = loop.run_in_executor(None, fault)
    started = time.monotonic()

    async def lane(k: int) -> None:
        """One of LANES submit loops sharing the client: batches are in flight (pipelined) when the broker goes."""
        i = 0
        # Bounded: at most 90 s, and stop once 20 batches went through after the fault.
        while time.monotonic() - started < 90 and outcome.after_restart < 20:
            batch = _batch(f"{k}.{i}")
            i += 1
            try:
                replies = await client.submit(batch)
            except NoReply:
                outcome.no_reply += 1
                outcome.confirmed.append([c.client_order_id for c in batch])
                continue
            except NotConnected:
                outcome.unconfirmed += 1
                await asyncio.sleep(0.2)
                continue
            outcome.confirmed.append([c.client_order_id for c in batch])
            for events in replies:
                assert any(isinstance(e, OrderAccepted) for e in events) or any(
                    isinstance(e, OrderRejected) and e.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID for e in events
                ), events
            if restarted.done():
                outcome.after_restart += 1
            else:
                await asyncio.sleep(0.02)

    try:
        await asyncio.gather(*(lane(k) for k in range(LANES)))
        await restarted
        assert outcome.after_restart >= 20, "the client and server did not resume after the broker came back"
        # Confirmed batches still in the queue are applied once the server has them again.
        wanted = [c for coids in outcome.confirmed for c in coids]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(gateway.engine.order_id_for("alice", c) for c in wanted):
            await asyncio.sleep(0.1)
        return gateway, outcome
    finally:
        await client.close()
        await server.stop()
        await gateway.stop()


def _assert_nothing_lost_or_doubled(gateway: Gateway, outcome: Outcome) -> None:
    print(f"confirmed {len(outcome.confirmed)} unconfirmed {outcome.unconfirmed} no-reply {outcome.no_reply} after {outcome.after_restart}")
    assert outcome.unconfirmed + outcome.no_reply > 0, "the trader never noticed the broker going away: no fault happened"
    wanted = [c for coids in outcome.confirmed for c in coids]
    assert len(outcome.confirmed) > 20
    missing = [c for c in wanted if not gateway.engine.order_id_for("alice", c)]
    assert missing == [], f"{len(missing)} orders of confirmed batches were lost: {missing[:10]}"
    resting = gateway.engine.open_orders("alice", SYM)
    coids = [o.client_order_id for o in resting]
    assert len(coids) == len(set(coids)), "an order was applied twice"
    assert set(wanted) <= set(coids)
    assert gateway.stats_dict()["accepted"] == len(coids)


def test_a_broker_restart_loses_no_confirmed_batch_and_trading_resumes(private_rabbitmq: LocalRabbitMQ) -> None:
    def restart() -> None:
        time.sleep(1.0)
        private_rabbitmq.restart()

    gateway, outcome = asyncio.run(_trade_through(private_rabbitmq, restart))
    _assert_nothing_lost_or_doubled(gateway, outcome)


@pytest.mark.slow
def test_a_killed_broker_loses_no_confirmed_batch(private_rabbitmq: LocalRabbitMQ) -> None:
    def crash() -> None:
        time.sleep(1.0)
        private_rabbitmq.kill()  # SIGKILL: confirmed persistent messages were on disk before the confirm
        private_rabbitmq.start()

    gateway, outcome = asyncio.run(_trade_through(private_rabbitmq, crash))
    _assert_nothing_lost_or_doubled(gateway, outcome)
