"""Every replica applies the same sequence of entries, across a frozen owner under load: compared entry by entry, not by the books.

Three real dex-node processes; six traders send crossing orders (so the order
of application decides the trades) spread over every node. The owner (Raft
leader) is frozen with SIGSTOP mid-load, the two others elect a new owner and
go on, the old owner is resumed (it catches up and, being the preferred
member, takes ownership back: a second change of owner under load).

Each node exposes ``GET /v1/applied``: how many entries it gave its engine
and a chained digest of them in order, plus the digest after any earlier
count. Throughout the run, for every pair of reachable nodes, the one behind
must have applied a prefix of what the other applied; at the end every node
applied the same sequence. A replica that skipped, added or reordered even
an empty entry fails this, although its books could still hash the same
(the test reads ``/v1/stats`` as it goes: each read commits such an entry).
No node may log pysyncobj's "truncating already-applied log entries".
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from engine import ExchangeError, PlaceOrder, Side
from transports.dht.client import DhtClient
from transports.dht.local import DexNodeProcess, LocalCluster

SYM = "BTC-USD"
PX = 3_000_000
WORKERS = 6


async def _applied(http: httpx.AsyncClient, node: DexNodeProcess, at: int | None = None) -> dict[str, Any]:
    query = "" if at is None else f"?at={at}"
    response = await http.get(f"{node.api}/v1/applied{query}", timeout=1.0)
    data: dict[str, Any] = response.json()
    return data


async def _check_prefix(http: httpx.AsyncClient, a: DexNodeProcess, b: DexNodeProcess) -> bool:
    """Whether the node behind applied a prefix of the other's sequence (raises if not); False if unknown."""
    first = await _applied(http, a)
    second = await _applied(http, b, first["count"])
    if second["digest_at"] is not None:  # b has applied at least as many: its digest after a's count is a's digest
        assert second["digest_at"] == first["digest"], f"{b.url} and {a.url} applied different entries before #{first['count']}"
        return True
    again = await _applied(http, a, second["count"])  # b is behind a
    if again["digest_at"] is None:
        return False
    assert again["digest_at"] == second["digest"], f"{a.url} and {b.url} applied different entries before #{second['count']}"
    return True


async def _load(url: str, stop: asyncio.Event) -> int:
    acked = 0

    async def worker(w: int) -> None:
        nonlocal acked
        async with DhtClient(f"seq{w}", url, timeout=15) as client:
            n = 0
            while not stop.is_set():
                side = Side.BUY if (w + n) % 2 else Side.SELL
                # prices straddle PX: about half of the orders trade against the other side
                batch = [PlaceOrder("", f"s{w}-{n + k}", SYM, side, 1 + k % 3, PX - 20 + (n * 7 + k * 13) % 41) for k in range(4)]
                n += 4
                try:
                    await client.submit(batch)
                    acked += len(batch)
                except ExchangeError:
                    await asyncio.sleep(0.05)  # outcome unknown (the owner changed): not needed for this check

    await asyncio.gather(*(worker(w) for w in range(WORKERS)))
    return acked


def test_every_replica_applies_the_same_sequence_across_a_frozen_owner(tmp_path: Path) -> None:
    started = time.monotonic()
    with LocalCluster(tmp_path, 3, SYM, dht=False) as cluster:
        cluster.start_all()
        old = cluster.settled()
        old_epoch = old.cluster()["epoch"]
        others = [n for n in cluster.live() if n is not old]
        paused: set[str] = set()
        checks = 0

        async def scenario() -> int:
            nonlocal checks
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            load = loop.create_task(_load(cluster.url, stop))
            async with httpx.AsyncClient() as http:

                async def sample(seconds: float) -> None:
                    nonlocal checks
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        reachable = [n for n in cluster.live() if n.url not in paused]
                        for i, a in enumerate(reachable):
                            for b in reachable[i + 1 :]:
                                checks += await _check_prefix(http, a, b)
                        # a read through the log: an empty entry (a barrier) that changes no book, only the sequence
                        await http.get(f"{reachable[checks % len(reachable)].api}/v1/stats", timeout=5.0)
                        await asyncio.sleep(0.1)

                await sample(1.5)
                paused.add(old.url)
                old.pause()
                new = await loop.run_in_executor(None, lambda: cluster.owner(20, among=others))
                assert new is not old and new.cluster()["epoch"] > old_epoch
                await sample(1.5)  # the new owner sequences under load
                old.resume()
                paused.discard(old.url)
                await sample(3.0)  # the old owner catches up, then gets ownership back (hand-back)
                stop.set()
                acked = await load
                return acked

        acked = asyncio.run(asyncio.wait_for(scenario(), 40))
        assert acked > 0 and checks > 10, (acked, checks)

        async def final() -> list[dict[str, Any]]:
            # Wait until every node has applied everything committed (same count, stable), then compare.
            async with httpx.AsyncClient() as http:
                views: list[dict[str, Any]] = []
                for _ in range(200):
                    before = [await _applied(http, n) for n in cluster.live()]
                    await asyncio.sleep(0.2)
                    views = [await _applied(http, n) for n in cluster.live()]
                    if before == views and len({v["count"] for v in views}) == 1:
                        return views
                return views

        views = asyncio.run(asyncio.wait_for(final(), 45))
        sequences = {(v["count"], v["digest"]) for v in views}
        assert len(sequences) == 1, f"the replicas applied different sequences (count, digest): {views}"
        view = cluster.converged(10)
        assert view["epoch"] > old_epoch
        assert all(n.cluster()["state_hash"] == view["state_hash"] for n in cluster.live())
    for log in tmp_path.glob("*.log"):
        text = log.read_text(errors="replace")
        assert "truncating already-applied" not in text, f"{log.name}: pysyncobj dropped entries it had applied"
    assert time.monotonic() - started < 60
