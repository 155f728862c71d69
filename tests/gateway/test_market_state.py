"""The gateway's candles and timed trades across restarts: from the journal's clock records, from a snapshot's market
frame plus the tail, and what a damaged market frame costs (the candles before it, never the book)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine import Instrument
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import CLOCK, SNAPSHOT_MAGIC, read_records, snapshot_path
from transports.core.workload import OrderFlow

INSTRUMENT = Instrument.create("BTC-USD", "0.01", "0.001")


async def started(path: Path) -> Gateway:
    gateway = Gateway(config=GatewayConfig(journal=str(path), snapshot_every=0, snapshot_interval_s=0))
    await gateway.start([INSTRUMENT])
    return gateway


async def trade(gateway: Gateway, seed: int, rounds: int = 5) -> None:
    flows = [OrderFlow(seed, f"t{i}", [INSTRUMENT]) for i in range(3)]
    for _ in range(rounds):
        for flow in flows:
            await gateway.submit(flow.batch(50))
        await asyncio.sleep(0.002)  # the next groups at a later time


def test_each_group_that_traded_is_timed_once_and_a_restart_rebuilds_the_same_candles(tmp_path: Path) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> None:
        gateway = await started(path)
        await trade(gateway, 3)
        assert gateway.stats.trades > 0
        before = gateway.market_stats.encode()
        await gateway.stop()
        clocks = [r for r in read_records(path).records if r[0] == CLOCK]
        assert 0 < len(clocks) <= gateway.stats.batches  # at most one clock read per group, only for groups that traded

        again = await started(path)
        assert again.market_stats.encode() == before
        await again.stop()

    asyncio.run(scenario())


def test_a_snapshot_carries_the_candles_and_a_damaged_market_frame_loses_only_them(tmp_path: Path) -> None:
    path = tmp_path / "dex.journal"

    async def scenario() -> tuple[bytes, str]:
        gateway = await started(path)
        await trade(gateway, 5)
        gateway.write_snapshot()  # the journal now starts after it: the trades so far live only in the snapshot
        await trade(gateway, 6, rounds=2)
        state = gateway.market_stats.encode(), gateway.engine.state_hash()
        await gateway.stop()
        again = await started(path)
        assert (again.market_stats.encode(), again.engine.state_hash()) == state
        await again.stop()
        return state

    before, state_hash = asyncio.run(scenario())
    snap = snapshot_path(path)
    data = bytearray(snap.read_bytes())
    assert data.startswith(SNAPSHOT_MAGIC)
    data[-5] ^= 0xFF  # inside the market frame, the last one
    snap.write_bytes(bytes(data))

    async def damaged() -> None:
        gateway = await started(path)
        assert gateway.engine.state_hash() == state_hash  # the book is whole
        market = gateway.market_stats.market(INSTRUMENT.symbol)
        assert market is not None and market.traded > 0  # the tail's trades, replayed with their times
        assert gateway.market_stats.encode() != before  # what only the snapshot held is gone
        await gateway.stop()

    asyncio.run(damaged())
