"""Fault tests of the NATS durable path: real nats-server, real ``nats-auto`` processes, real signals.

Each test starts its own nats-server (JetStream, temp dir, free port) and
nodes, and stops all of them by PID. Short leases (3 s) keep each test
bounded; the cluster test (test_nats_cluster.py) uses the 15 s default.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from engine import PlaceOrder, Side
from transports.instruments import select_instruments
from transports.nats.audit import AuditReport, audit
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.durable import DurableClient
from transports.nats.load import OrderLoad
from transports.nats.local import NatsServerProcess
from transports.nats.nodes import NodeProcess, node_state
from transports.nats.settings import Subjects
from transports.nats.streams import ensure_streams

TTL = 3.0
INSTRUMENTS = select_instruments("")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServerProcess]:
    server = NatsServerProcess(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def nodes(url: str, workdir: Path, count: int, ttl: float = TTL) -> AsyncIterator[list[NodeProcess]]:
    started = [NodeProcess(f"node{i + 1}", url, workdir, lease_ttl=ttl) for i in range(count)]
    try:
        for node in started:  # back to back: the same instant, as far as a test can make it
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()


@contextlib.asynccontextmanager
async def client(url: str) -> AsyncIterator[Client]:
    nc = await connect(url, "fault test", ConnectionErrors())
    try:
        yield nc
    finally:
        await nc.close()


async def states(nc: Client, names: list[str]) -> dict[str, dict[str, object]]:
    found = await asyncio.gather(*(node_state(nc, n, 0.5) for n in names))
    return {n: s for n, s in zip(names, found, strict=True) if s is not None}


async def leaders(nc: Client, names: list[str]) -> list[str]:
    return [n for n, s in (await states(nc, names)).items() if s["leader"]]


async def await_leader(nc: Client, names: list[str], timeout: float, exclude: str = "") -> tuple[str, float]:
    """The first node (not ``exclude``) that reports leading, and how long it took (bounded)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        found = [n for n in await leaders(nc, names) if n != exclude]
        if found:
            return found[0], time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"no leader (other than {exclude!r}) within {timeout:g}s")


async def await_caught_up(nc: Client, names: list[str], timeout: float = 30.0) -> dict[str, dict[str, object]]:
    """Wait until every live node applied the whole input stream and every input has its result."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    while True:
        last = (await js.stream_info("DEX_ORDERS")).state.last_seq
        results = (await js.stream_info("DEX_RESULTS")).state.last_seq
        found = await states(nc, names)
        if results == last and found and all(s["applied_seq"] == last for s in found.values()):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not caught up: inputs {last}, results {results}, nodes {found}")
        await asyncio.sleep(0.2)


def assert_sound(report: AuditReport, load: OrderLoad, replicas: dict[str, dict[str, object]]) -> None:
    assert report.ok, report.problems
    assert report.results == report.inputs
    missing = [seq for seq in load.acked if seq > report.inputs]
    assert not missing, f"acknowledged inputs missing from the stream: {missing[:5]}"
    assert report.trades > 0  # real engine trades happened under the load
    for name, state in replicas.items():
        assert state["state_hash"] == report.replay_hash, f"{name}'s state differs from a fresh replay"


# ----------------------------------------------------------------------- 1
def test_three_nodes_started_at_the_same_instant_elect_exactly_one_leader(nats_server: NatsServerProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with client(nats_server.url) as nc, nodes(nats_server.url, tmp_path, 3) as started:
            names = [n.name for n in started]
            await await_leader(nc, names, 15)
            seen: set[str] = set()
            for _ in range(20):  # 4 s: more than a lease TTL, renewals included
                current = await leaders(nc, names)
                assert len(current) == 1, f"leaders at once: {current}"
                seen.update(current)
                await asyncio.sleep(0.2)
            assert len(seen) == 1  # a healthy leader keeps its lease
            await asyncio.sleep(1.0)
            for node in started:
                discovered = set(re.findall(r"Discovered node: (\S+) \(", node.log()))
                assert discovered == set(names) - {node.name}, node.log()

    asyncio.run(asyncio.wait_for(scenario(), 60))


# ----------------------------------------------------------------------- 2
def test_kill_9_of_the_leader_under_load_loses_and_doubles_nothing(nats_server: NatsServerProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with client(nats_server.url) as nc, nodes(nats_server.url, tmp_path, 3) as started:
            names = [n.name for n in started]
            leader, _ = await await_leader(nc, names, 15)
            load = OrderLoad(nc, INSTRUMENTS, traders=3, batch=1, rate=600)
            load.start()
            await asyncio.sleep(3)
            victim = next(n for n in started if n.name == leader)
            victim.signal(signal.SIGKILL)
            survivors = [n for n in names if n != leader]
            successor, took = await await_leader(nc, survivors, TTL + 10)
            assert took <= TTL + 5, f"{successor} took over after {took:.1f}s"
            await asyncio.sleep(3)  # load continues under the new leader
            await load.stop()
            replicas = await await_caught_up(nc, survivors)
            report, _, _ = await audit(nc.jetstream(), INSTRUMENTS)
            assert_sound(report, load, replicas)
            assert leader in report.leaders and successor in report.leaders

    asyncio.run(asyncio.wait_for(scenario(), 120))


# ----------------------------------------------------------------------- 3
def test_a_leader_paused_past_its_lease_is_fenced_and_steps_down(nats_server: NatsServerProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with client(nats_server.url) as nc, nodes(nats_server.url, tmp_path, 3) as started:
            names = [n.name for n in started]
            leader, _ = await await_leader(nc, names, 15)
            paused = next(n for n in started if n.name == leader)
            load = OrderLoad(nc, INSTRUMENTS, traders=2, batch=1, rate=400)
            load.start()
            await asyncio.sleep(2)
            paused.signal(signal.SIGSTOP)
            successor, _ = await await_leader(nc, [n for n in names if n != leader], TTL + 10)
            await asyncio.sleep(2)  # the successor appends results while the old leader sleeps
            paused.signal(signal.SIGCONT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                state = await node_state(nc, leader, 0.5)
                if state is not None and not state["leader"]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{leader} still leads after SIGCONT:\n{paused.log()[-2000:]}")
            assert f"{leader} gave up leadership" in paused.log()
            await asyncio.sleep(1)
            await load.stop()
            replicas = await await_caught_up(nc, names)
            report, _, _ = await audit(nc.jetstream(), INSTRUMENTS)
            assert_sound(report, load, replicas)
            # After the successor's first append, the old leader appended nothing: it was fenced.
            first = report.leaders.index(successor)
            assert leader not in report.leaders[first:], "a stale leader appended after the takeover"
            assert len(await leaders(nc, names)) == 1

    asyncio.run(asyncio.wait_for(scenario(), 120))


# ----------------------------------------------------------------------- 4
def test_client_resends_after_a_timeout_are_de_duplicated(nats_server: NatsServerProcess, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with client(nats_server.url) as nc, nodes(nats_server.url, tmp_path, 1) as started:
            await ensure_streams(nc.jetstream(), Subjects())
            await await_leader(nc, [started[0].name], 15)
            alice = DurableClient(nc, "alice", {i.symbol: i for i in INSTRUMENTS}.get, Subjects())
            await alice.follow()
            order = [PlaceOrder("alice", "a-1", "BTC-USD", Side.BUY, 10, 2_990_000)]
            # A first try whose acknowledgement the client gives up on (a timeout far too short to get it).
            with contextlib.suppress(Exception):
                await alice.publish(order, timeout=0.000001)
            seq, _ = await alice.publish(order)  # the resend
            again, duplicate_again = await alice.publish(order)  # and one more, for good measure
            assert seq == again and duplicate_again
            result = await alice.result(seq, timeout=15)
            assert [r.events[0].WhichOneof("kind") for r in result.replies] == ["accepted"]
            other, fresh = await alice.publish([PlaceOrder("alice", "a-2", "BTC-USD", Side.BUY, 10, 2_990_000)])
            assert other == seq + 1 and not fresh
            await await_caught_up(nc, [started[0].name])
            report, inputs, _ = await audit(nc.jetstream(), INSTRUMENTS)
            assert report.ok, report.problems
            assert len(inputs) == 2 and report.accepted == 2
            await alice.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
