"""``kill -9`` of the books' owner under load: a replica takes over, and nothing acknowledged is lost or doubled.

Three real dex-node processes; four traders keep sending small batches
spread over every node. The owner (Raft leader) is killed with SIGKILL mid
load. Then: a survivor owns the books in a later epoch, every acknowledged
order is on the books of every survivor exactly once, orders whose outcome
was unknown (the request died with the node) are resubmitted and turn out
either applied once (DUPLICATE_CLIENT_ORDER_ID) or not at all (accepted now),
and the killed node, restarted on its Raft journal, catches up to the same
state hash and, being the rendezvous-preferred member, gets ownership back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine import ExchangeError, OrderAccepted, OrderRejected, OrderStatus, PlaceOrder, RejectReason, Side
from transports.dht.client import DhtClient
from transports.dht.local import LocalCluster

SYM = "BTC-USD"
PX = 3_000_000


def _order(worker: int, n: int) -> PlaceOrder:
    # Non-crossing (buys below, sells above): every accepted order rests, so the book counts them.
    if worker % 2:
        return PlaceOrder("", f"w{worker}-{n}", SYM, Side.BUY, 1, PX - 100 - n % 50)
    return PlaceOrder("", f"w{worker}-{n}", SYM, Side.SELL, 1, PX + 100 + n % 50)


async def _load(url: str, kill: asyncio.Event, seconds_after_kill: float) -> tuple[dict[str, tuple[str, int]], list[PlaceOrder]]:
    acked: dict[str, tuple[str, int]] = {}  # client order id -> (trader, order id)
    unknown: list[PlaceOrder] = []
    stop_at: list[float] = []

    async def worker(w: int) -> None:
        async with DhtClient(f"t{w}", url, timeout=10) as client:
            n = 0
            for _ in range(100_000):
                if stop_at and time.monotonic() > stop_at[0]:
                    return
                batch = [_order(w, n + k) for k in range(5)]
                n += 5
                try:
                    replies = await client.submit(batch)
                except ExchangeError:
                    unknown.extend(batch)
                    await asyncio.sleep(0.05)
                    continue
                for command, events in zip(batch, replies, strict=True):
                    accepted = [e for e in events if isinstance(e, OrderAccepted)]
                    assert accepted, events
                    acked[command.client_order_id] = (f"t{w}", accepted[0].order_id)

    async def timer() -> None:
        await asyncio.sleep(1.5)
        kill.set()
        await asyncio.sleep(seconds_after_kill)
        stop_at.append(time.monotonic())

    await asyncio.gather(timer(), *(worker(w) for w in range(4)))
    return acked, unknown


def test_kill_9_of_the_owner_loses_and_doubles_nothing_acknowledged(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3, SYM, dht=False) as cluster:
        cluster.start_all()
        owner = cluster.settled()
        old_epoch = owner.cluster()["epoch"]
        url = cluster.url

        async def scenario() -> tuple[dict[str, tuple[str, int]], list[PlaceOrder]]:
            kill = asyncio.Event()

            async def killer() -> None:
                await kill.wait()
                await asyncio.get_running_loop().run_in_executor(None, owner.kill)

            results = await asyncio.gather(_load(url, kill, 5.0), killer())
            return results[0]

        acked, unknown = asyncio.run(asyncio.wait_for(scenario(), 50))
        survivors = cluster.live()
        assert len(survivors) == 2 and owner not in survivors
        new_owner = cluster.owner(among=survivors)
        new_epoch = new_owner.cluster()["epoch"]
        assert new_epoch > old_epoch
        assert len(acked) > 100, "the load ran on both sides of the kill"

        async def check() -> int:
            applied_unknown = 0
            for command in unknown:  # outcome unknown: resubmit; the engine says whether it was applied
                trader = "t" + command.client_order_id[1:].split("-")[0]
                async with DhtClient(trader, cluster.url) as client:
                    events = (await client.submit([command]))[0]
                rejected = [e for e in events if isinstance(e, OrderRejected)]
                if rejected:
                    assert rejected[0].reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID
                    applied_unknown += 1
            for node in survivors:
                clients = {f"t{w}": DhtClient(f"t{w}", node.url) for w in range(4)}
                try:
                    for coid, (trader, order_id) in acked.items():
                        view = await clients[trader].order(order_id)
                        assert view is not None and view.client_order_id == coid and view.status is OrderStatus.NEW
                finally:
                    for client in clients.values():
                        await client.close()
                async with DhtClient("auditor", node.url) as client:
                    book = await client.book(SYM, 1000)
                resting = sum(level.qty for level in [*book.bids, *book.asks])
                assert resting == len(acked) + len(unknown), "each acknowledged (and each resubmitted) order rests exactly once"
            return applied_unknown

        asyncio.run(asyncio.wait_for(check(), 50))
        view = cluster.converged(20)
        restarted = cluster.start(cluster.nodes.index(owner))  # same member address, empty log: catches up
        assert cluster.converged(30)["state_hash"] == restarted.cluster()["state_hash"]
        assert view["engine_seq"] <= restarted.cluster()["engine_seq"]
        # The restarted member is the rendezvous-preferred one: Raft hands ownership back to it, in a later epoch.
        back = cluster.settled(30)
        assert back.url == restarted.url and back.cluster()["epoch"] > new_epoch
