"""Observability a user relies on: Prometheus metrics from every server process, structured JSON logs.

A real ``dex-zmq`` and a real ``dex-grpc`` run as processes with
``--metrics-port 0 --log-format json``; orders go in over their own wires;
the metrics endpoint named in the start-up line is scraped, and the log file
is read line by line as JSON.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.grpc_bench import LocalGrpcServer
from engine import OrderRejected, PlaceOrder, Side
from transports.core.gateway import Gateway
from transports.core.logs import configure_logging
from transports.core.metrics import serve_metrics
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import make_client
from transports.zmq.local import LocalZmqServer

BTC = DEFAULT_INSTRUMENTS[0]
_METRICS_URL = re.compile(r"metrics (http://\S+/metrics)")


def _order(trader: str, coid: str, side: Side, price: str, qty: str = "1") -> PlaceOrder:
    return PlaceOrder(trader, coid, BTC.symbol, side, BTC.parse_qty(qty), BTC.parse_price(price))


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return str(response.read().decode())


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample (labels in any order); KeyError if absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if metric == name and found == labels:
            return float(value)
    raise KeyError(f"{name}{labels} not in the exposition")


def _json_lines(log: str) -> list[dict[str, object]]:
    records = []
    for line in log.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


async def _trade(transport: str, url: str) -> None:
    async with make_client(transport, "alice", url) as alice, make_client(transport, "bob", url) as bob:
        await alice.submit([_order("alice", "a1", Side.SELL, "30000.00")])
        await bob.submit([_order("bob", "b1", Side.BUY, "30000.00")])
        (replies,) = await bob.submit([_order("bob", "b2", Side.BUY, "1.00")])  # far outside the band
        assert any(isinstance(e, OrderRejected) for e in replies)


@pytest.mark.parametrize("server_class", [LocalZmqServer, LocalGrpcServer], ids=["zmq", "grpc"])
def test_server_process_serves_metrics_by_transport_and_logs_json(tmp_path: Path, server_class: type) -> None:
    args = ("--metrics-port", "0", "--log-format", "json", "--log-level", "debug")
    with server_class(tmp_path, args) as server:
        transport = "zmq" if server_class is LocalZmqServer else "grpc"
        match = _METRICS_URL.search(server.log_tail(50))
        assert match, server.log_tail(50)
        metrics_url = match.group(1)
        assert metrics_url.startswith("http://127.0.0.1:")  # bound to loopback like the server itself
        asyncio.run(_trade(transport, server.url))
        text = _scrape(metrics_url)
        assert _metric(text, "dex_commands_total", transport=transport) == 3
        assert _metric(text, "dex_trades_total") == 1
        assert _metric(text, "dex_rejects_total", transport=transport, reason="PRICE_OUT_OF_BAND") == 1
        assert _metric(text, "dex_command_latency_seconds_count", transport=transport) == 3
        assert _metric(text, "dex_journal_fsync_seconds_count") >= 1  # fsync per batch by default
        assert _metric(text, "dex_gateway_queue_depth") == 0
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(metrics_url.replace("/metrics", "/nothing"), timeout=5)
        assert missing.value.code == 404
        log = server.log_tail(400)
    records = _json_lines(log)
    assert records, log
    assert all({"event", "level", "timestamp", "logger"} <= set(r) for r in records)
    (rejected,) = [r for r in records if r["event"] == "order_rejected"]
    assert rejected["transport"] == transport
    assert rejected["trader"] == "bob"
    assert rejected["client_order_id"] == "b2"
    assert rejected["reason"] == "PRICE_OUT_OF_BAND"


def test_console_and_json_formats_render_library_fields() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    try:
        logging.getLogger("dex.gateway").warning("gateway_overloaded", extra={"transport": "nats", "queued": 7})
        logging.getLogger("dex.gateway").debug("order_rejected", extra={"trader": "x"})  # below the level: not written
        (line,) = out.getvalue().splitlines()
        record = json.loads(line)
        assert record["event"] == "gateway_overloaded" and record["transport"] == "nats" and record["queued"] == 7
        assert record["level"] == "warning" and record["logger"] == "dex.gateway"
        out.seek(0)
        out.truncate()
        configure_logging("info", "console", stream=out)
        logging.getLogger("dex.gateway").warning("gateway_overloaded", extra={"transport": "amqp"})
        (text,) = out.getvalue().splitlines()
        assert "gateway_overloaded" in text and "transport=amqp" in text
        with pytest.raises(ValueError, match="unknown log format"):
            configure_logging("info", "xml")  # type: ignore[arg-type]
    finally:
        configure_logging("warning", "console")


def test_metrics_endpoint_answers_garbage_without_dying() -> None:
    async def scenario() -> None:
        gateway = Gateway()
        await gateway.start(DEFAULT_INSTRUMENTS)
        try:
            async with serve_metrics(gateway) as url:
                host, port = url.removeprefix("http://").removesuffix("/metrics").rsplit(":", 1)
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"\x00\xff garbage\r\n\r\n")
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), timeout=5)
                assert answer.startswith(b"HTTP/1.1 404")
                writer.close()
                text = await asyncio.to_thread(_scrape, url)
                assert _metric(text, "dex_commands_total", transport="config") == len(DEFAULT_INSTRUMENTS)
        finally:
            await gateway.stop()

    asyncio.run(scenario())
