"""The lease (real JetStream KV on the session nats-server) and the replica's determinism."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from pathlib import Path

from engine import PlaceOrder, RejectReason, Side
from transports.codec.proto_codec import decode_error, encode_commands
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.lease import LeaderLease
from transports.nats.local import NatsServerProcess
from transports.nats.replica import OrderReplica, replay
from transports.nats.settings import TRADER_HEADER

_buckets = itertools.count(1)
LOOKUP = {i.symbol: i for i in DEFAULT_INSTRUMENTS}.get


def test_one_of_two_candidates_wins_and_the_other_takes_over_when_renewals_stop(nats_url: str) -> None:
    async def scenario() -> None:
        nc = await connect(nats_url, "lease test", ConnectionErrors())
        kv = await nc.jetstream().create_key_value(bucket=f"lease_test_{next(_buckets)}", ttl=10, history=1)
        ttl = 1.5
        a, b = LeaderLease(kv, "a", ttl), LeaderLease(kv, "b", ttl)
        won = await asyncio.gather(a.try_acquire(), b.try_acquire())
        assert sorted(won) == [False, True]
        leader, follower = (a, b) if a.leader else (b, a)
        assert leader.holds() and await leader.renew()  # compare-and-set on its own revision
        # The leader stops renewing (frozen). The follower polls and takes over after a TTL.
        start = time.monotonic()
        while not follower.leader and time.monotonic() - start < 3 * ttl + 2:
            await follower.try_acquire()
            await asyncio.sleep(0.1)
        assert follower.leader, "the follower never took over"
        assert time.monotonic() - start >= ttl * 0.9  # not before the lease could have expired
        assert not leader.holds()  # its own clock says: do not append
        assert not await leader.renew() and not leader.leader  # its revision is gone: it stepped down
        await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_leader_rides_out_a_nats_server_that_stops_answering_for_less_than_its_lease(tmp_path: Path) -> None:
    """NATS electing a new stream leader answers nothing for a moment: the leader keeps its lease (no new term, no
    take-over), appends nothing while it cannot prove the lease, and renews when NATS answers again."""

    async def scenario(nats: NatsServerProcess) -> None:
        nc = await connect(nats.url, "lease test", ConnectionErrors())
        kv = await nc.jetstream().create_key_value(bucket="lease_pause", ttl=30, history=1)
        ttl = 3.0
        a, b = LeaderLease(kv, "a", ttl), LeaderLease(kv, "b", ttl)
        assert await a.try_acquire()
        await a.start()
        await b.start()
        try:
            await asyncio.sleep(ttl / 3 + 0.2)  # a renewal went through: a fresh lease
            assert a.holds()
            os.kill(nats.pid, signal.SIGSTOP)  # no answer to anything, longer than a renewal's own timeout (1 s)
            try:
                await asyncio.sleep(2.2)  # shorter than the lease (3 s), past any renewal sent in it
            finally:
                os.kill(nats.pid, signal.SIGCONT)
            deadline = time.monotonic() + ttl
            while not a.holds() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert a.leader and a.holds(), "the leader gave its lease up during a pause shorter than the lease"
            await asyncio.sleep(ttl)  # a whole lease more: the follower saw renewals and never took over
            assert a.leader and a.terms == 1 and not b.leader and b.terms == 0
        finally:
            await a.stop()
            await b.stop()
            await nc.close()

    with NatsServerProcess(tmp_path / "nats") as nats:
        asyncio.run(asyncio.wait_for(scenario(nats), 30))


def _input(trader: str, coid: str, side: Side, qty: int, price: int) -> tuple[bytes, dict[str, str]]:
    data = encode_commands([PlaceOrder(trader, coid, "BTC-USD", side, qty, price)], LOOKUP).SerializeToString()
    return data, {TRADER_HEADER: trader}


def test_the_replica_is_deterministic_and_answers_every_input() -> None:
    inputs = [
        (1, *_input("alice", "a1", Side.SELL, 10, 3_000_000)),
        (2, b"\xff not a batch", {TRADER_HEADER: "mallory"}),
        (3, *_input("bob", "b1", Side.BUY, 4, 3_000_100)),
        (4, _input("carol", "c1", Side.BUY, 1, 3_000_000)[0], {}),  # no trader header
    ]
    replica = OrderReplica(DEFAULT_INSTRUMENTS)
    results = [replica.apply(seq, data, headers) for seq, data, headers in inputs]
    assert decode_error(results[1].error).reason is RejectReason.MALFORMED_MESSAGE
    assert decode_error(results[3].error).reason is RejectReason.UNAUTHORIZED
    assert [e.WhichOneof("kind") for e in results[2].replies[0].events][:2] == ["accepted", "trade"]
    assert (replica.orders, replica.trades) == (2, 1)
    again = replay(DEFAULT_INSTRUMENTS, inputs)
    assert again.state_hash() == replica.state_hash() and again.applied_seq == 4
    try:
        replica.apply(3, *inputs[2][1:])
    except ValueError:
        pass
    else:
        raise AssertionError("an input applied twice")
