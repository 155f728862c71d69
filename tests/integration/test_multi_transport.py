"""``turbo-dex --transports http,grpc,zmq``: one process, one gateway, one book.

An order placed over gRPC trades against one placed over ZeroMQ and one over
HTTP; each submitter gets its own events; the market-data streams of all
three wires carry the same sequenced updates.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import OrderAccepted, PlaceOrder, Side, TradeExecuted
from transports.core.marketdata import BookSnapshot, MarketUpdate
from transports.registry import make_client

ROOT = Path(__file__).resolve().parents[2]
SYM = "BTC-USD"
PX = 3_000_000  # 30000.00


@pytest.fixture
def urls() -> Iterator[dict[str, str]]:
    command = [sys.executable, "-m", "transports.launcher", "--transports", "http,grpc,zmq", "--no-journal"]
    command += ["--port", "0", "--grpc-port", "0", "--zmq-port", "0", "--zmq-pub-port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = dict(re.findall(r"(http|grpc|zmq)://([\d.]+:\d+)", line))
        assert set(found) == {"http", "grpc", "zmq"}, line
        yield {name: f"{name}://{address}" for name, address in found.items()}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert "turbo-dex stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_orders_from_three_wires_meet_in_one_book(urls: dict[str, str]) -> None:
    async def scenario() -> None:
        grpc_seller = make_client("grpc", "gina", urls["grpc"])
        zmq_seller = make_client("zmq", "zoe", urls["zmq"])
        http_buyer = make_client("http", "hank", urls["http"])
        for client in (grpc_seller, zmq_seller, http_buyer):
            await client.connect()
        streams = [client.market_data([SYM]) for client in (grpc_seller, zmq_seller, http_buyer)]
        snapshots = [await anext(s) for s in streams]
        assert all(isinstance(s, BookSnapshot) for s in snapshots)
        assert len({s.md_seq for s in snapshots if isinstance(s, BookSnapshot)}) == 1

        gina = (await grpc_seller.submit([PlaceOrder("", "g1", SYM, Side.SELL, 10_000, PX)]))[0]
        zoe = (await zmq_seller.submit([PlaceOrder("", "z1", SYM, Side.SELL, 10_000, PX + 1)]))[0]
        hank = (await http_buyer.submit([PlaceOrder("", "h1", SYM, Side.BUY, 15_000, PX + 1)]))[0]

        # Each submitter gets its own events, and only its own.
        assert [e.trader for e in gina if isinstance(e, OrderAccepted)] == ["gina"]
        assert [e.trader for e in zoe if isinstance(e, OrderAccepted)] == ["zoe"]
        assert not any(isinstance(e, TradeExecuted) for e in gina + zoe)
        trades = [e for e in hank if isinstance(e, TradeExecuted)]
        assert [(t.maker_trader, t.taker_trader, t.price, t.qty) for t in trades] == [
            ("gina", "hank", PX, 10_000),
            ("zoe", "hank", PX + 1, 5_000),
        ]

        # All three wires carry the same market-data updates, in the same order.
        seen: list[list[tuple[int, str]]] = []
        for stream in streams:
            updates: list[tuple[int, str]] = []
            while len(updates) < 5:  # a delta per sell, then the buy: 2 trades and its deltas
                item = await asyncio.wait_for(anext(stream), 10)
                assert isinstance(item, MarketUpdate)
                updates.append((item.md_seq, repr(item.event)))
            seen.append(updates)
        assert seen[0] == seen[1] == seen[2]

        book = await zmq_seller.book(SYM)
        assert [(lvl.price, lvl.qty) for lvl in book.asks] == [(PX + 1, 5_000)]
        for client in (grpc_seller, zmq_seller, http_buyer):
            await client.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
