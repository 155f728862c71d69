"""The node API and its pure parts: bad input gets a clear reason and the node keeps serving; entries round-trip.

A one-member dex-node group in this process (``serve_dht``), spoken to over
real loopback sockets: raw bytes that are not HTTP, Grenache requests that
are not ``[rid, key, payload]``, a wrong service key, an unknown route; then
a valid order still goes through. Plus the log-entry codec and rendezvous
hashing, which every node must compute identically.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from engine import AddInstrument, CancelOrder, Engine, Instrument, MalformedMessage, OrderAccepted, PlaceOrder, Side
from transports.core.gateway import Gateway
from transports.core.hrw import preferred_owner, ranking
from transports.dht.client import DhtClient
from transports.dht.entries import decode_entry, encode_entry
from transports.dht.node import serve_dht
from transports.instruments import select_instruments

SYM = "BTC-USD"


def test_a_log_entry_round_trips_and_garbage_is_refused() -> None:
    a = [PlaceOrder("alice", "a1", SYM, Side.BUY, 5, 2_999_000), PlaceOrder("alice", "a2", SYM, Side.SELL, 1, 3_001_000)]
    b = [PlaceOrder("bob", "b1", SYM, Side.SELL, 2, 3_000_000)]
    origin, requests, commands = decode_entry(encode_entry(b"node0001", [(7, a), (8, b)]))
    assert origin == b"node0001" and requests == [(7, 2), (8, 1)] and commands == [*a, *b]
    # a request of no commands is a read barrier, alone or beside others
    assert decode_entry(encode_entry(b"node0002", [(9, [])])) == (b"node0002", [(9, 0)], [])
    assert decode_entry(encode_entry(b"node0002", [(9, []), (10, b)])) == (b"node0002", [(9, 0), (10, 1)], b)
    for bad in (b"", b"DX2", b"pickle\x80\x04", encode_entry(b"node0001", [(1, b)])[:-3] + b"]]]"):
        with pytest.raises(MalformedMessage):
            decode_entry(bad)


def test_orders_travel_as_one_lean_batch_and_an_instrument_listing_as_compact_records() -> None:
    orders = [PlaceOrder("alice", "a1", SYM, Side.BUY, 5, 2_999_000), CancelOrder("bob", 3)]
    lean_entry = encode_entry(b"node0001", [(1, orders)])
    assert lean_entry.startswith(b"DX3") and decode_entry(lean_entry)[2] == orders
    listing = [AddInstrument(Instrument.create("ETH-USD", "0.01", "0.001")), *orders]
    compact_entry = encode_entry(b"node0001", [(2, listing)])
    assert compact_entry.startswith(b"DX2") and decode_entry(compact_entry)[2] == listing


def test_rendezvous_hashing_is_the_same_everywhere_and_moves_only_the_dead_members_shards() -> None:
    members = [f"10.0.0.{i}:7900" for i in range(5)]
    assert ranking("books:BTC-USD", members) == ranking("books:BTC-USD", list(reversed(members)))
    shards = [f"books:S{i}" for i in range(200)]
    owners = {s: preferred_owner(s, members) for s in shards}
    assert len(set(owners.values())) == 5  # spread over every member
    gone = members[2]
    after = {s: preferred_owner(s, [m for m in members if m != gone]) for s in shards}
    assert all(after[s] == owners[s] for s in shards if owners[s] != gone)


def test_bad_input_gets_a_clear_reason_and_the_node_keeps_serving() -> None:
    async def scenario() -> None:
        gateway = Gateway(Engine())
        await gateway.start(select_instruments(SYM))
        try:
            async with serve_dht(gateway) as url:
                host, port = url.removeprefix("dht://").split(":")
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(), 5)
                assert answer.startswith(b"HTTP/1.1 400")
                writer.close()
                base = f"http://{host}:{port}"
                async with httpx.AsyncClient(timeout=10) as http:
                    for body in (b"{not json", b'{"a": 1}', b'[1, "dex:exchange"]', b'[1, "dex:exchange", {"action": "fly"}]'):
                        rid, error, result = (await http.post(base + "/", content=body)).json()
                        assert error.startswith("ERR_MALFORMED_MESSAGE") and result is None
                    rid, error, _ = (await http.post(base + "/", content=b'["r1", "other:service", {}]')).json()
                    assert rid == "r1" and error.startswith("ERR_MALFORMED_MESSAGE")
                    submit = {"action": "submit", "trader": "", "commands": []}
                    _, error, _ = (await http.post(base + "/", content=orjson.dumps(["r2", "dex:exchange", submit]))).json()
                    assert error.startswith("ERR_UNAUTHORIZED")
                    assert (await http.get(base + "/v1/nowhere")).status_code == 404
                    assert (await http.get(base + "/v1/book", params={"symbol": "NOPE"})).status_code == 404
                    assert (await http.get(base + "/v1/order", params={"id": "x"}, headers={"X-Trader": "a"})).status_code == 400
                    huge = {"X-Big": "x" * 70_000}
                    assert (await http.get(base + "/v1/stats", headers=huge)).status_code == 431
                async with DhtClient("alice", url) as alice:
                    events = (await alice.submit([PlaceOrder("", "ok", SYM, Side.BUY, 1, 3_000_000)]))[0]
                    assert any(isinstance(e, OrderAccepted) for e in events)
                assert gateway.stats_dict()["orders"] == 1
        finally:
            await gateway.stop()

    asyncio.run(scenario())


def test_a_reproposed_entry_committed_twice_is_applied_once_on_every_member() -> None:
    from transports.dht.replica import Replica, ReplicaSettings

    first = encode_entry(b"proposer", [(1, [PlaceOrder("alice", "a1", SYM, Side.BUY, 1, 2_999_000)])])
    second = encode_entry(b"proposer", [(2, [PlaceOrder("alice", "a2", SYM, Side.BUY, 1, 2_998_000)])])
    log = [first, second, first, second, first]  # the owner changed twice: copies of both entries committed

    async def member() -> tuple[int, str]:
        gateway = Gateway(Engine())
        await gateway.start(select_instruments(SYM))
        replica = Replica(gateway, ReplicaSettings("127.0.0.1:1", ("127.0.0.1:1",), "s"))
        replica._loop = asyncio.get_running_loop()
        applier = asyncio.ensure_future(replica._apply_committed())
        try:
            for entry in log:
                replica._on_committed(entry)
            for _ in range(200):
                if replica.duplicate_entries == 3:
                    break
                await asyncio.sleep(0.01)
            assert replica.duplicate_entries == 3 and replica.applied_entries == 2
            assert gateway.stats_dict()["orders"] == 2
            return gateway.engine.seq, gateway.engine.state_hash()
        finally:
            applier.cancel()
            await gateway.stop()

    assert asyncio.run(member()) == asyncio.run(member())


def test_a_node_serves_prometheus_metrics_of_its_replica() -> None:
    async def scenario() -> None:
        gateway = Gateway(Engine())
        await gateway.start(select_instruments(SYM))
        try:
            async with serve_dht(gateway) as url:
                async with DhtClient("alice", url) as alice:
                    await alice.submit([PlaceOrder("", "m1", SYM, Side.BUY, 1, 3_000_000), PlaceOrder("", "m2", SYM, Side.BUY, 1, 1)])
                async with httpx.AsyncClient(timeout=10) as http:
                    response = await http.get("http://" + url.removeprefix("dht://") + "/metrics")
        finally:
            await gateway.stop()
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        lines = response.text.splitlines()
        assert "dex_orders_total 2.0" in lines
        rejects = [line for line in lines if line.startswith("dex_rejects_total{")]
        assert len(rejects) == 1 and rejects[0].endswith(" 1.0")  # the order priced at one tick, far outside the band

    asyncio.run(scenario())
