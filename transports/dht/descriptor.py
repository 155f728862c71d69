"""The peer-to-peer (DHT + Raft) transport's descriptor (``transports.core.descriptor``): ``dex-node``. Imports lazily.

It has no ``mount``: a DHT node is a process kind of its own (a replica of a
Raft group), never one more wire on ``turbo-dex``'s gateway.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path

from engine import RejectReason
from transports.core.auth import Authenticator
from transports.core.client import TraderClient
from transports.core.descriptor import Authentication, BenchDefaults, LocalProcess, TransportDescriptor
from transports.core.gateway import Gateway
from transports.core.keys import Credential


def _client(trader: str, url: str | None) -> TraderClient:
    from transports.dht.client import DhtClient

    return DhtClient(trader, url)


def _serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.dht.node import serve_dht

    return serve_dht(gateway)


def _serve_authenticated(gateway: Gateway, auth: Authenticator) -> AbstractAsyncContextManager[str]:
    from transports.dht.node import serve_dht

    return serve_dht(gateway, auth=auth)


def _signed_client(credential: Credential, url: str) -> TraderClient:
    from transports.dht.client import DhtClient

    return DhtClient(credential.trader, url, credential=credential)


async def _malformed(url: str) -> RejectReason:
    from transports.dht.probe import send_malformed

    return await send_malformed(url)


def _local(workdir: Path, args: tuple[str, ...]) -> AbstractContextManager[LocalProcess]:
    from transports.dht.local import ClusterServer

    return ClusterServer(workdir, args)


DESCRIPTOR = TransportDescriptor(
    name="dht",
    title="DHT (3 Raft peers)",
    summary=(
        "`dex-node`: a peer-to-peer exchange; Kademlia or Grenache Grape discovery, one Raft log per replica group "
        "(pysyncobj), the leader sequences the books, answers after a majority commit; Grenache-compatible RPC."
    ),
    client=_client,
    serve=_serve,
    send_malformed=_malformed,
    extra="dht",
    docs="docs/dht.md",
    console_script="dex-node",
    server_module="transports.dht.node",
    local_server=_local,
    bench=BenchDefaults(
        target_batch_per_s=20_000,
        target_single_p99_us=50_000,
        notes=(
            "Three dex-node processes (one Raft replica group) on this machine; traders spread over all nodes by trader hash.",
            "An acknowledgement means the batch is committed on a majority (2 of 3) and applied by the node that answers.",
            "server_pid is the owner's (Raft leader's) PID at the start of the run.",
        ),
        market_data="DHT stream",
    ),
    acknowledged_after="a Raft majority of the book's replica group",
    zero_configuration="yes: nodes find each other (Kademlia) and elect each book's owner",
    operational_parts="three or more nodes, no broker",
    no_fsync_to_turn_off="its acknowledgement waits for a Raft majority, not a journal fsync: nothing to turn off",
    echo_wire="http",  # its clients speak HTTP to a node
    auth=Authentication(
        mechanism="signed requests (DEX-KEY, DEX-TIMESTAMP, DEX-WINDOW, DEX-SIGNATURE), verified by the receiving node before the Raft log",
        serve=_serve_authenticated,
        client=_signed_client,
        signed_requests=True,
    ),
)
