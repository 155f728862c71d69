"""A node that joins late catches up from the owner's log and ends with the same books; discovery finds it.

Real dex-node processes on loopback: two of a three-member group take
orders and trade; the third starts afterwards (bootstrapping its Kademlia
node from the first), converges to the same engine seq and state hash, then
takes orders itself, which every node applies.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from engine import OrderAccepted, PlaceOrder, Side, TradeExecuted
from transports.dht.client import DhtClient
from transports.dht.local import LocalCluster

SYM = "BTC-USD"
PX = 3_000_000


async def _trade(url: str, trader: str, tag: str, count: int) -> int:
    trades = 0
    async with DhtClient(trader, url) as client:
        for i in range(count):
            batch = [
                PlaceOrder("", f"{tag}-s{i}", SYM, Side.SELL, 3, PX + i % 7),
                PlaceOrder("", f"{tag}-b{i}", SYM, Side.BUY, 2, PX + (i + 3) % 7),
            ]
            for events in await client.submit(batch):
                assert any(isinstance(e, OrderAccepted) for e in events), events
                trades += sum(1 for e in events if isinstance(e, TradeExecuted))
    return trades


def test_a_late_node_converges_to_the_same_books_and_is_discovered(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3, SYM) as cluster:
        first, second = cluster.start(0), cluster.start(1)
        cluster.owner(among=[first, second])
        traded = asyncio.run(_trade(first.url, "alice", "a", 40)) + asyncio.run(_trade(second.url, "bob", "b", 40))
        assert traded > 0
        before = cluster.converged(20)

        late = cluster.start(2)
        view = cluster.converged(30)
        assert (view["engine_seq"], view["state_hash"]) == (before["engine_seq"], before["state_hash"])
        assert late.cluster()["state_hash"] == before["state_hash"]

        asyncio.run(_trade(late.url, "carol", "c", 20))  # the late node takes orders; everyone applies them
        after = cluster.converged(20)
        assert after["engine_seq"] > before["engine_seq"]
        books = set()
        for node in cluster.live():
            depth = httpx.get(node.api + "/v1/book", params={"symbol": SYM, "depth": 50}, timeout=5).content
            books.add(depth)
        assert len(books) == 1

        # The embedded Kademlia DHT: every node's API is found by a lookup on any node.
        expected = {n.url.removeprefix("dht://") for n in cluster.live()}
        deadline = time.monotonic() + 30
        found: set[str] = set()
        while time.monotonic() < deadline and found != expected:
            found = set(httpx.get(late.api + "/v1/peers", timeout=5).json())
            time.sleep(0.5)
        assert found == expected
