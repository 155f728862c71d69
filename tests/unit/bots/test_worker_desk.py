"""A worker opens ONE desk per partition, even when the lanes of several pairs ask for it at once.

Each pair of a partition has its own lane; their first updates arrive together.
Before, every lane opened its own exchange client and loaded its own copy of the
positions (three desks for a three-pair partition, and "now runs partition"
logged three times); the copies then overwrote each other's saves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.unit.bots.helpers import bot
from traders.bots import worker as worker_module
from traders.bots.store import BotStore
from traders.bots.worker import BotWorker, WorkerSettings


class SlowClient:
    """Connecting takes a while, as over a real wire: the lanes' requests overlap."""

    opened = 0

    def __init__(self, trader: str) -> None:
        self.trader = trader

    async def connect(self) -> None:
        SlowClient.opened += 1
        await asyncio.sleep(0.05)

    async def close(self) -> None:
        return None


def test_lanes_racing_for_a_partition_share_one_desk_and_one_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "bots.db"
    store = BotStore(db, partitions=1)
    store.add([bot(bot_id="a", pair="BTC-USD"), bot(bot_id="b", pair="ETH-USD"), bot(bot_id="c", pair="SOL-USD")])
    store.close()
    monkeypatch.setattr(worker_module, "make_client", lambda transport, trader, url: SlowClient(trader))
    SlowClient.opened = 0

    async def scenario() -> None:
        worker = BotWorker(WorkerSettings(db=str(db), amqp_url="amqp://unused", transport="test", server=None))
        try:
            desks = await asyncio.gather(*(worker._desk(0) for _ in range(3)))
            assert desks[0] is desks[1] is desks[2]
            assert SlowClient.opened == 1 and len(worker.clients) == 1
            assert worker.stats.partitions == {0}
        finally:
            worker.store.close()

    asyncio.run(scenario())
