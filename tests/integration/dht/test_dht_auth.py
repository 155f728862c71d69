"""Signed client requests on the DHT (docs/security.md, "DHT"): what the generic suite (tests/auth) cannot see.

* A three-node replica group sharing one keyring directory (``--keys``): a
  client connected to a node that does not own the books acts as its key's
  trader on the owner and on every member (the entry forwarded through Raft
  keeps the principal, not the node's identity); an unsigned request or one
  naming its trader in ``X-Trader`` only enters no log; a key revoked in the
  shared directory is refused by every node within one reload.
* A one-member group in this process: the same signed bytes sent twice are
  refused the second time (``replayed_request``), a request signed outside
  its window is ``stale_request``, a signature over other bytes is
  ``bad_signature``; nothing of a refused request reaches the engine.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine import Engine, ExchangeError, OrderAccepted, PlaceOrder, RejectReason, Side
from transports.codec.proto_codec import decode_error, encode_commands, pb
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.http_wire import HttpEndpoint
from transports.core.keys import RELOAD_CHECK_S, Keyring, create_key, revoke_key
from transports.core.signing import payload, sign
from transports.dht.client import DhtClient, endpoints
from transports.dht.local import LocalCluster
from transports.dht.node import serve_dht
from transports.dht.signed import signed_headers
from transports.instruments import select_instruments

SYM = "BTC-USD"
PX = 3_000_000


def _order(coid: str, trader: str = "", price: int = PX - 100) -> PlaceOrder:
    return PlaceOrder(trader, coid, SYM, Side.BUY, 1000, price)


def test_a_request_forwarded_to_the_owner_keeps_its_principal(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    alice, bob = create_key(keys, "alice"), create_key(keys, "bob")
    extra = ("--auth", "keys", "--keys", str(keys), "--symbols", SYM)
    with LocalCluster(tmp_path, 3, dht=False, extra=extra) as cluster:
        cluster.start_all()
        owner = cluster.owner()
        follower = next(n for n in cluster.live() if n is not owner)
        before = cluster.converged()["engine_seq"]

        async def main() -> None:
            client = DhtClient("alice", follower.url, credential=alice)
            anonymous = DhtClient("alice", follower.url)  # X-Trader only
            try:
                await client.connect()
                events = (await client.submit([_order("a1", trader="bob")]))[0]
                accepted = next(e for e in events if isinstance(e, OrderAccepted))
                assert accepted.trader == "alice"  # the key's trader, whatever the command named
                for refused in (anonymous.submit([_order("x1")]), anonymous.order(accepted.order_id)):
                    try:
                        await refused
                        raise AssertionError("an unsigned request was served")
                    except ExchangeError as exc:
                        assert exc.reason is RejectReason.UNAUTHENTICATED, exc
                # On the owner, the order is alice's: her key reads it there, bob's does not find it.
                on_owner = DhtClient("alice", owner.url, credential=alice)
                bob_on_owner = DhtClient("bob", owner.url, credential=bob)
                view = await on_owner.order(accepted.order_id)
                assert view is not None and view.client_order_id == "a1"
                assert await _missing(bob_on_owner, accepted.order_id)
                await on_owner.close()
                await bob_on_owner.close()
            finally:
                await client.close()
                await anonymous.close()

        asyncio.run(main())
        after = cluster.converged()
        assert after["engine_seq"] > before  # alice's order went through the log, the refusals did not
        seq_after_order = after["engine_seq"]
        revoke_key(keys, alice.key_id)
        time.sleep(RELOAD_CHECK_S * 2 + 0.2)

        async def revoked() -> None:
            for node in cluster.live():
                client = DhtClient("alice", node.url, credential=alice)
                try:
                    await client.submit([_order(f"r-{node.pid}")])
                    raise AssertionError(f"a revoked key was served by {node.url}")
                except ExchangeError as exc:
                    assert exc.reason is RejectReason.UNAUTHENTICATED and "unknown_key" in exc.message, exc
                finally:
                    await client.close()

        asyncio.run(revoked())
        assert cluster.converged()["engine_seq"] == seq_after_order


async def _missing(client: DhtClient, order_id: int) -> bool:
    try:
        return await client.order(order_id) is None
    except ExchangeError as exc:
        return exc.reason is RejectReason.UNKNOWN_ORDER


def test_a_replayed_stale_or_altered_signed_request_is_refused(tmp_path: Path) -> None:
    alice = create_key(tmp_path / "keys", "alice")

    async def main() -> None:
        gateway = Gateway(Engine(), GatewayConfig(journal=None))
        await gateway.start(select_instruments(SYM))
        try:
            async with serve_dht(gateway, auth=Authenticator(Keyring(tmp_path / "keys"))) as url:
                host, port = endpoints(url)[0]
                node = HttpEndpoint(host, port)
                lookup = gateway.instrument
                body = encode_commands([_order("a1")], lookup, 1).SerializeToString()
                headers = {"Content-Type": "application/x-protobuf", **signed_headers(alice, "POST", "/v1/batch", "", body)}
                status, _ = await node.request("POST", "/v1/batch", headers=headers, body=body)
                assert status == 200 and [o.client_order_id for o in gateway.open_orders("alice")] == ["a1"]
                status, reply = await node.request("POST", "/v1/batch", headers=headers, body=body)  # the same bytes again
                assert status == 401 and _cause(reply) == "replayed_request"
                # Signed 10 s ago with a 5 s window.
                stamp = time.time_ns() // 1_000_000 - 10_000
                stale = {**headers, "DEX-TIMESTAMP": str(stamp)}
                stale["DEX-SIGNATURE"] = sign(alice, payload(stamp, 5_000, "POST", "/v1/batch", "", body))
                status, reply = await node.request("POST", "/v1/batch", headers=stale, body=body)
                assert status == 401 and _cause(reply) == "stale_request"
                # A valid signature of one batch on another batch's bytes.
                other = encode_commands([_order("a2", price=PX - 500)], lookup, 2).SerializeToString()
                fresh = {"Content-Type": "application/x-protobuf", **signed_headers(alice, "POST", "/v1/batch", "", body)}
                status, reply = await node.request("POST", "/v1/batch", headers=fresh, body=other)
                assert status == 401 and _cause(reply) == "bad_signature"
                node.close()
                assert [o.client_order_id for o in gateway.open_orders("alice")] == ["a1"]
                refused = gateway.stats_dict()["refused_by_reason"].get("UNAUTHENTICATED", 0)
                assert refused >= 3
        finally:
            await gateway.stop()

    asyncio.run(main())


def _cause(reply: bytes) -> str:
    """The stable cause of an ``UNAUTHENTICATED`` refusal in a ``ReplyBatch``."""
    batch = pb.ReplyBatch.FromString(reply)
    assert batch.HasField("error"), reply
    error = decode_error(batch.error)
    assert error.reason is RejectReason.UNAUTHENTICATED, error
    return error.message.partition(":")[0]
