"""dex-nats on a real nats-server (the session ``nats_url``): subjects, replies, market data, stats, slow consumers."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from nats.aio.msg import Msg

from engine import OrderAccepted, PlaceOrder, RejectReason, Side
from transports.codec.proto_codec import decode_error, decode_market_data, decode_replies, decode_stats, encode_commands, pb
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.marketdata import MarketUpdate
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.nats.client import NatsClient
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.server import NatsServerSettings, serve_nats
from transports.nats.settings import TRADER_HEADER, Subjects

_prefixes = itertools.count(1)
LOOKUP = {i.symbol: i for i in DEFAULT_INSTRUMENTS}.get
PX = 3_000_000


@asynccontextmanager
async def exchange(nats_url: str) -> AsyncIterator[tuple[Gateway, Subjects]]:
    prefix = f"t{next(_prefixes)}"  # tests share the session server: each has its own subjects
    gateway = Gateway(config=GatewayConfig(journal=None))
    await gateway.start(DEFAULT_INSTRUMENTS)
    try:
        async with serve_nats(gateway, NatsServerSettings(url=nats_url, prefix=prefix)):
            yield gateway, Subjects(prefix)
    finally:
        await gateway.stop()


def test_a_batch_on_its_symbols_subject_gets_its_events_and_a_request_without_trader_is_refused(nats_url: str) -> None:
    async def scenario() -> None:
        async with exchange(nats_url) as (_gateway, subjects):
            nc = await connect(nats_url, "test", ConnectionErrors())
            batch = encode_commands([PlaceOrder("", "a1", "BTC-USD", Side.BUY, 10, PX - 100)], LOOKUP, 7).SerializeToString()
            msg = await nc.request(subjects.command("BTC-USD"), batch, timeout=5, headers={TRADER_HEADER: "alice"})
            reply = pb.ReplyBatch.FromString(msg.data)
            assert reply.batch_id == 7
            accepted = [e for e in decode_replies(reply, LOOKUP)[0] if isinstance(e, OrderAccepted)]
            assert [(a.trader, a.client_order_id) for a in accepted] == [("alice", "a1")]
            anonymous = pb.ReplyBatch.FromString((await nc.request(subjects.command("BTC-USD"), batch, timeout=5)).data)
            assert decode_error(anonymous.error).reason is RejectReason.UNAUTHORIZED
            await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_market_data_goes_to_per_symbol_subjects_with_consecutive_sequence_numbers(nats_url: str) -> None:
    async def scenario() -> None:
        async with exchange(nats_url) as (_gateway, subjects):
            nc = await connect(nats_url, "test", ConnectionErrors())
            seen: list[MarketUpdate] = []
            other: list[Msg] = []

            async def on_btc(msg: Msg) -> None:
                item = decode_market_data(msg.data, LOOKUP)
                assert isinstance(item, MarketUpdate)
                seen.append(item)

            async def on_eth(msg: Msg) -> None:
                other.append(msg)

            await nc.subscribe(subjects.market_data("BTC-USD"), cb=on_btc)
            await nc.subscribe(subjects.market_data("ETH-USD"), cb=on_eth)
            await nc.flush()
            async with (
                NatsClient("bob", nats_url, prefix=subjects.prefix) as bob,
                NatsClient("carol", nats_url, prefix=subjects.prefix) as carol,
            ):
                await bob.submit([PlaceOrder("", "early", "BTC-USD", Side.SELL, 10, PX + 50)])  # nobody asked yet: not published
                (snapshot,) = await bob.snapshots(["BTC-USD"])  # a snapshot request starts publishing the symbol
                assert snapshot.md_seq == 1
                await bob.submit([PlaceOrder("", f"b{i}", "BTC-USD", Side.SELL, 10, PX + i) for i in range(5)])
                await carol.submit([PlaceOrder("", "take", "BTC-USD", Side.BUY, 20, PX + 4)])
            for _ in range(100):
                if len(seen) >= 8:
                    break
                await asyncio.sleep(0.05)
            assert [u.md_seq for u in seen] == list(range(2, len(seen) + 2)) and len(seen) >= 8
            assert all(u.symbol == "BTC-USD" for u in seen) and not other
            await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_stats_subject_carries_the_counters(nats_url: str) -> None:
    async def scenario() -> None:
        async with exchange(nats_url) as (_gateway, subjects):
            nc = await connect(nats_url, "test", ConnectionErrors())
            sub = await nc.subscribe(subjects.stats)
            async with NatsClient("carol", nats_url, prefix=subjects.prefix) as carol:
                await carol.submit([PlaceOrder("", "c1", "ETH-USD", Side.BUY, 5, 199_000)])
                stats = decode_stats((await sub.next_msg(timeout=5)).data)
                assert stats["orders"] == 1 and stats["accepted"] == 1
                assert (await carol.stats())["nats_slow_consumers"] == 0
            await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_slow_consumer_is_counted_not_silent(nats_url: str) -> None:
    async def scenario() -> None:
        errors = ConnectionErrors()
        nc = await connect(nats_url, "slow", errors)
        release = asyncio.Event()

        async def stuck(msg: Msg) -> None:
            await release.wait()

        await nc.subscribe("slow.test", cb=stuck, pending_msgs_limit=10, pending_bytes_limit=1024 * 1024)
        publisher = await connect(nats_url, "fast", ConnectionErrors())
        for i in range(200):
            await publisher.publish("slow.test", str(i).encode())
        await publisher.flush()
        for _ in range(100):
            if errors.slow_consumers:
                break
            await asyncio.sleep(0.05)
        assert errors.slow_consumers > 0
        release.set()
        await publisher.close()
        await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_dex_nats_process_serves_dex_trader(nats_url: str, tmp_path: Path) -> None:
    prefix_free_url = nats_url  # dex-nats uses the default prefix; nothing else in this session does
    server = subprocess.Popen(
        [sys.executable, "-m", "transports.nats.server", "--nats", prefix_free_url, "--no-journal", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if line.startswith("authentication is off"):  # --auth off says so at start-up (loopback only), first
            line = server.stdout.readline()
        assert line.startswith("dex-nats listening on nats://"), line
        out = tmp_path / "harness.json"
        harness = [sys.executable, "-m", "traders.harness", "--transport", "nats", "--server", nats_url]
        done = subprocess.run(
            [*harness, "--duration", "2s", "--warmup", "0.5s", "--workers", "2", "--batch", "50", "--quiet", "--json", str(out)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(out.read_text())
        assert report["reconciliation"]["ok"] and report["errors"] == 0 and report["throughput_per_s"] > 0
    finally:
        server.terminate()
        server.wait(20)
