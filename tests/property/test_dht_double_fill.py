"""Issue 8's anomaly, as a property: Carol's 1 lot resting on every node, buyers on different nodes at once.

In the Grenache design each node matched its own copy of the book, so two
buyers on two nodes both filled against Carol. Here, for any number of nodes
(3 to 5), any assignment of buyers to nodes and any delivery order/timing,
Carol's lot is filled exactly once, exactly one buyer gets it, and every node
ends with the same engine state hash. Real dex-node processes on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import OrderAccepted, OrderStatus, PlaceOrder, Side, TimeInForce, TradeExecuted
from transports.dht.client import DhtClient
from transports.dht.local import LocalCluster

SYM = "BTC-USD"
BASE_PX = 2_900_000  # 29000.00 in ticks; each round trades 10 ticks higher (inside the 10% band)
_rounds = itertools.count()


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, LocalCluster]]:
    started: dict[int, LocalCluster] = {}
    try:
        for size in (3, 4, 5):
            started[size] = LocalCluster(Path(tmp_path_factory.mktemp(f"race{size}")), size, SYM, dht=False).start_all()
            started[size].settled()
        yield started
    finally:
        for cluster in started.values():
            cluster.stop()


race = st.fixed_dictionaries(
    {
        "size": st.sampled_from([3, 4, 5]),
        "carol_node": st.integers(0, 4),
        # each buyer: (node index, delay before sending in ms); 2 to 5 buyers
        "buyers": st.lists(st.tuples(st.integers(0, 4), st.integers(0, 15)), min_size=2, max_size=5),
    }
)


async def _race(cluster: LocalCluster, carol_node: int, buyers: list[tuple[int, int]], round_no: int) -> None:
    nodes = cluster.live()
    price = BASE_PX + 10 * round_no
    carol = DhtClient("carol", nodes[carol_node % len(nodes)].url)
    clients = [DhtClient(f"buyer{i}", nodes[node % len(nodes)].url) for i, (node, _) in enumerate(buyers)]
    try:
        for client in [carol, *clients]:
            await client.connect()
        placed = (await carol.submit([PlaceOrder("", f"c{round_no}", SYM, Side.SELL, 1, price)]))[0]
        carol_id = next(e for e in placed if isinstance(e, OrderAccepted)).order_id

        async def buy(i: int, delay_ms: int) -> list[TradeExecuted]:
            await asyncio.sleep(delay_ms / 1000)
            order = PlaceOrder("", f"b{round_no}-{i}", SYM, Side.BUY, 1, price, tif=TimeInForce.IOC)
            return [e for e in (await clients[i].submit([order]))[0] if isinstance(e, TradeExecuted)]

        fills = await asyncio.gather(*(buy(i, delay) for i, (_, delay) in enumerate(buyers)))
        trades = [t for per_buyer in fills for t in per_buyer]
        assert sum(t.qty for t in trades if t.maker_order_id == carol_id) == 1, f"Carol's lot filled {trades}"
        assert sum(1 for per_buyer in fills if per_buyer) == 1, "exactly one buyer gets Carol's lot"
        view = cluster.converged(20)
        assert view["engine_seq"] > 0
        for node in nodes:  # every node tells Carol the same thing: filled once
            async with DhtClient("carol", node.url) as on_node:
                status = await on_node.order(carol_id)
                assert status is not None and status.status is OrderStatus.FILLED and status.filled == 1
    finally:
        for client in [carol, *clients]:
            await client.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=race)
def test_a_resting_lot_is_filled_once_whatever_the_delivery_order(clusters: dict[int, LocalCluster], plan: dict) -> None:  # type: ignore[type-arg]
    cluster = clusters[plan["size"]]
    asyncio.run(asyncio.wait_for(_race(cluster, plan["carol_node"], plan["buyers"], next(_rounds)), 50))
