"""Our own RabbitMQ: started without systemd, on free loopback ports, stopped by PID, reachable over AMQP."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import aio_pika

from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.settings import URL_ENV
from transports.core.pids import pid_alive

ROOT = Path(__file__).resolve().parents[3]


def test_the_session_broker_speaks_amqp_on_loopback_and_is_advertised_to_subprocesses(
    rabbitmq_broker: LocalRabbitMQ, rabbitmq_url: str
) -> None:
    assert rabbitmq_url.startswith("amqp://guest:guest@127.0.0.1:") and os.environ[URL_ENV] == rabbitmq_url
    assert rabbitmq_broker.status()
    listeners = rabbitmq_broker.ctl("status").stdout
    assert "127.0.0.1" in listeners and str(rabbitmq_broker.state.port) in listeners

    async def round_trip() -> bytes:
        connection = await aio_pika.connect_robust(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("", exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"hello"), routing_key=queue.name)
            message = await queue.get(timeout=5, fail=True)
            assert message is not None
            await message.ack()
            return message.body

    assert asyncio.run(round_trip()) == b"hello"


def test_the_script_starts_reports_and_stops_a_node_by_its_pids(tmp_path: Path) -> None:
    script = [str(ROOT / "scripts" / "rabbitmq.sh")]
    where = ["--dir", str(tmp_path / "rmq")]
    started = subprocess.run([*script, "start", "--port", "0", *where], capture_output=True, text=True, timeout=120, check=False)
    assert started.returncode == 0, started.stderr
    assert "RabbitMQ listening on amqp://guest:guest@127.0.0.1:" in started.stdout
    broker = LocalRabbitMQ.load(tmp_path / "rmq")
    try:
        status = subprocess.run([*script, "status", *where], capture_output=True, text=True, timeout=60, check=False)
        assert status.returncode == 0 and "running" in status.stdout
        assert broker.running()
    finally:
        stopped = subprocess.run([*script, "stop", *where], capture_output=True, text=True, timeout=60, check=False)
    assert stopped.returncode == 0
    assert not pid_alive(broker.state.server_pid) and not pid_alive(broker.state.epmd_pid)
    status = subprocess.run([*script, "status", *where], capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 3 and "not running" in status.stdout
