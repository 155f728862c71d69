"""``dex-node``: one peer of the exchange with no central server.

Each node holds a full replica of the books (a ``Gateway`` around one pure
``engine.Engine``), is a member of the shard's Raft group (``replica.py``),
serves the HTTP API (``api.py``: our protobuf API and Grenache's ``POST /``
RPC) and announces itself on a DHT (``discovery.py``: embedded Kademlia, or
a ``grenache-grape`` network). Orders entered on any node are sequenced by
the owner (the Raft leader) and applied by every node in the same order.

Start-up line: ``dex-node listening on dht://HOST:API_PORT (...)``.
SIGTERM/SIGINT: stop the API, leave the group, stop the gateway, exit 0.

``serve_dht(gateway)`` runs a one-member group around a caller's gateway
(the registry and the contract suite).

Authentication (``--auth keys``, docs/security.md "DHT"): clients sign their
requests and the node that receives one verifies it against the cluster's
keyring (``--keys DIR``, the same keyring on every node) before it enters
the log; the Raft links between nodes stay authenticated by the shared
cluster secret (``--secret``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator

from engine import ExchangeError
from transports.core import legacy_flags
from transports.core.auth import Authenticator, add_auth_options, auth_from_options
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.logs import LOG_FORMATS, configure_logging
from transports.core.server_cli import LOG_LEVELS, freeze_startup_heap
from transports.core.state_dir import DEFAULT_STATE_DIR, STATE_DIR_ENV, state_dir
from transports.dht.api import NodeApi
from transports.dht.discovery import GrapeDiscovery, KademliaDiscovery, parse_endpoints
from transports.dht.httpd import HttpServer, guard_for
from transports.dht.replica import Replica, ReplicaSettings
from transports.instruments import select_instruments

NAME = "dex-node"
DEFAULT_API_PORT = 7700
DEFAULT_DHT_PORT = 7800
SECRET_ENV = "DEX_CLUSTER_SECRET"

log = logging.getLogger(NAME)


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_dht(gateway: Gateway, host: str = "127.0.0.1", auth: Authenticator | None = None) -> AsyncIterator[str]:
    """Serve ``gateway`` as a one-member replica group in this event loop; yields ``dht://host:port``.

    With ``auth``, client requests are signed and verified (only an admin key may add instruments)."""
    raft = f"{host}:{free_tcp_port(host)}"
    replica = Replica(gateway, ReplicaSettings(raft, (raft,), secrets.token_hex(16)))
    replica.start()
    server = HttpServer(NodeApi(gateway, replica, allow_admin=True, auth=auth).handle, guard_for(gateway.stats))
    try:
        await server.start(host, 0)
        await _wait_owner(replica, 15.0)
        yield f"dht://{host}:{server.port}"
    finally:
        await server.stop()
        await replica.stop()


async def _wait_owner(replica: Replica, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if replica.status().get("owner"):
            return
        await asyncio.sleep(0.02)
    raise ExchangeError(f"no owner elected within {timeout:g}s")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=NAME, description="A peer of the exchange: Raft-replicated books, HTTP API, DHT discovery.")
    p.add_argument("--host", default="127.0.0.1", help="interface for the API, Raft and DHT (default 127.0.0.1)")
    p.add_argument("--api-port", type=int, default=DEFAULT_API_PORT, help=f"HTTP API port (default {DEFAULT_API_PORT}; 0 = free)")
    p.add_argument("--dht-port", type=int, default=DEFAULT_DHT_PORT, help=f"Kademlia UDP port (default {DEFAULT_DHT_PORT}; 0 = free)")
    p.add_argument("--raft-port", type=int, default=None, help="Raft TCP port (default: the --dht-port number, over TCP)")
    p.add_argument("--peers", default="", help="comma list of the other members' Raft host:port (the replica group)")
    p.add_argument("--bootstrap", default="", help="comma list of Kademlia host:port to join (none: first node)")
    p.add_argument("--grape", default="", help="announce to a grenache-grape HTTP API instead of Kademlia (e.g. http://127.0.0.1:30001)")
    p.add_argument("--no-dht", action="store_true", help="no discovery (members from --peers only)")
    journal = p.add_mutually_exclusive_group()
    journal.add_argument(
        "--raft-journal", default=None, metavar="PATH", help="Raft log, term and vote (default STATE_DIR/dht/raft-HOST-PORT.journal)"
    )
    journal.add_argument(
        "--no-raft-journal", action="store_true", help="keep the Raft log in memory only (a restart must use a new member address)"
    )
    p.add_argument("--state-dir", default=None, metavar="DIR", help=f"state directory (default ${STATE_DIR_ENV}, else {DEFAULT_STATE_DIR})")
    p.add_argument("--secret", default=None, help=f"shared cluster secret (default ${SECRET_ENV}; required with --peers)")
    p.add_argument("--symbols", default="", help="comma list of default instruments (default: all); the same on every node")
    p.add_argument("--buffer", type=int, default=100_000, help="most commands waiting to be applied before OVERLOADED")
    p.add_argument("--allow-admin", action="store_true", help="accept add_instrument commands (--auth off; with keys: the admin role)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    p.add_argument("--log-format", choices=LOG_FORMATS, default="console", help="structured logs on stderr (default console)")
    add_auth_options(p)
    return p


async def _run(args: argparse.Namespace, secret: str, auth: Authenticator | None) -> int:
    raft_port = args.raft_port if args.raft_port is not None else args.dht_port
    if raft_port == 0:
        raft_port = free_tcp_port(args.host)
    me = f"{args.host}:{raft_port}"
    peers = [f"{h}:{p}" for h, p in parse_endpoints(args.peers)]
    members = tuple(dict.fromkeys([me, *peers]))
    gateway = Gateway(config=GatewayConfig(buffer=args.buffer, journal=None))
    await gateway.start(select_instruments(args.symbols))
    shard = "books:" + ",".join(sorted(i.symbol for i in gateway.instruments))
    journal = None
    if not args.no_raft_journal:
        journal = args.raft_journal or os.path.join(state_dir(args.state_dir), "dht", f"raft-{args.host}-{raft_port}.journal")
        os.makedirs(os.path.dirname(os.path.abspath(journal)), exist_ok=True)
    replica = Replica(gateway, ReplicaSettings(me, members, secret, shard=shard, journal=journal))
    api_handler = NodeApi(gateway, replica, allow_admin=args.allow_admin, auth=auth)
    server = HttpServer(api_handler.handle, guard_for(gateway.stats))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    discovery: KademliaDiscovery | GrapeDiscovery | None = None
    try:
        try:
            await server.start(args.host, args.api_port)
            replica.start()
        except OSError as exc:
            print(f"{NAME}: cannot listen: {exc}", file=sys.stderr)
            return 1
        api = f"{args.host}:{server.port}"
        where = "no discovery"
        if args.grape:
            discovery = GrapeDiscovery(args.grape, server.port)
            where = f"grape {args.grape}"
        elif not args.no_dht:
            discovery = KademliaDiscovery(args.host, args.dht_port, parse_endpoints(args.bootstrap), api, me)
        if discovery is not None:
            try:
                await discovery.start()
            except Exception as exc:  # discovery helps clients find us; the exchange works without it
                print(f"{NAME}: discovery not started: {exc}", file=sys.stderr)
                discovery = None
            if isinstance(discovery, KademliaDiscovery):
                where = f"kademlia udp {args.host}:{discovery.port}"
            if discovery is not None:
                api_handler.peers = discovery.peers
        freeze_startup_heap()
        print(f"{NAME} listening on dht://{api} (raft {me}, journal {journal or 'none'}, members {','.join(members)}, {where}; "
              f"symbols {','.join(i.symbol for i in gateway.instruments)})", flush=True)  # fmt: skip
        await stop.wait()
    finally:
        await server.stop()
        if discovery is not None:
            await discovery.stop()
        await replica.stop()
        await gateway.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print(f"{NAME} stopped (engine seq {gateway.engine.seq}, state hash {gateway.engine.state_hash()})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = legacy_flags.parse_args(parser, argv)
    if args.buffer < 1:
        parser.error("--buffer must be at least 1")
    try:
        select_instruments(args.symbols)
        parse_endpoints(args.peers)
        parse_endpoints(args.bootstrap)
    except ValueError as exc:
        parser.error(str(exc))
    secret = args.secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        if args.peers:
            parser.error(f"a replica group needs a shared secret: --secret or ${SECRET_ENV}")
        secret = secrets.token_hex(16)  # a one-member group: nobody else must join it
    # pysyncobj's tick thread and our event loop hand every entry to each other: with the default 5 ms GIL
    # switch interval each hand-over can wait that long; a short interval keeps commits in the sub-ms range.
    sys.setswitchinterval(0.0005)
    configure_logging(args.log_level, args.log_format)
    logging.getLogger("kademlia").setLevel(logging.ERROR)
    auth = auth_from_options(args, args.host)  # SystemExit: --auth off off loopback, or a public node without keys
    try:
        import uvloop

        return uvloop.run(_run(args, secret, auth))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
