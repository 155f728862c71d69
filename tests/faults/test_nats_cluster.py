"""Fault test on a 3-server NATS cluster (loopback, explicit routes, sync_interval always, streams with replicas 3).

``kill -9`` of one NATS server under load: no acknowledged order is lost, none
is doubled, every input gets exactly one result, replicas equal a fresh
replay. The lease keeps its 15 s default here: NATS's own failover takes ~5 s.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from transports.instruments import select_instruments
from transports.nats.audit import audit
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.load import OrderLoad
from transports.nats.local import NatsServerProcess, cluster, start_cluster
from transports.nats.nodes import NodeProcess, node_state
from transports.nats.settings import ORDERS_STREAM, RESULTS_STREAM

INSTRUMENTS = select_instruments("")


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[NatsServerProcess]]:
    members = cluster(tmp_path / "nats")
    start_cluster(members)
    try:
        yield members
    finally:
        for member in members:
            member.stop()


def test_kill_9_of_one_nats_server_under_load_loses_no_acknowledged_order(nats_cluster: list[NatsServerProcess], tmp_path: Path) -> None:
    url = ",".join(m.url for m in nats_cluster)
    names = ["c1", "c2", "c3"]

    async def scenario() -> None:
        nodes = [NodeProcess(n, url, tmp_path, lease_ttl=15.0, extra=("--replicas", "3")).start() for n in names]
        nc = await connect(url, "cluster fault test", ConnectionErrors())
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # streams created with 3 replicas and a leader elected
                found = [await node_state(nc, n, 0.5) for n in names]
                if any(s is not None and s["leader"] for s in found):
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("no leader:\n" + nodes[0].log()[-2000:])
            info = await js.stream_info(ORDERS_STREAM)
            assert info.config.num_replicas == 3
            load = OrderLoad(nc, INSTRUMENTS, traders=2, batch=1, rate=300)
            load.start()
            await asyncio.sleep(3)
            stream_leader = (await js.stream_info(ORDERS_STREAM)).cluster
            victim_name = stream_leader.leader if stream_leader is not None else None
            victim = next((m for m in nats_cluster if m.server_name == victim_name), nats_cluster[0])
            victim.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            await asyncio.sleep(8)  # load continues through NATS's failover
            await load.stop()
            acked_before = len(load.acked)
            assert acked_before > 0
            deadline = time.monotonic() + 60
            while True:
                try:
                    last = (await js.stream_info(ORDERS_STREAM)).state.last_seq
                    results = (await js.stream_info(RESULTS_STREAM)).state.last_seq
                    states = [await node_state(nc, n, 0.5) for n in names]
                    if results == last and all(s is not None and s["applied_seq"] == last for s in states):
                        break
                except Exception:  # a stream info request during the failover
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("results did not catch up:\n" + "\n".join(n.log()[-1500:] for n in nodes))
                await asyncio.sleep(0.5)
            report, _, _ = await audit(js, INSTRUMENTS)
            assert report.ok, report.problems
            lost = [seq for seq in load.acked if seq > report.inputs]
            assert not lost, f"acknowledged orders lost: {lost[:5]}"
            assert report.results == report.inputs
            for state in states:
                assert state is not None and state["state_hash"] == report.replay_hash
        finally:
            await nc.close()
            for node in nodes:
                node.stop()

    asyncio.run(asyncio.wait_for(scenario(), 170))
