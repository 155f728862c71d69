"""``nats-auto``: the zero-configuration cluster node (find or start NATS, discover, elect, trade).

::

    nats-auto                                  # auto: find/start NATS, join the election, run traders
    nats-auto --mode server --lease-ttl 4      # replica + leader candidate only
    nats-auto --mode trader --traders 8 --rate 2000 --duration 60s
    nats-auto --peers 10.0.0.5:6222,10.0.0.6:6222   # also route to these nodes' cluster ports
    nats-auto --nats nats://10.0.0.5:4222 --mode all  # a client of an existing NATS, no server of its own

Modes: ``server`` = a node (hot replica of the order stream, candidate for the
lease, results writer while leader); ``trader`` = traders only; ``all`` and
``auto`` = both (every node can lead; the lease decides which one does).

Its own NATS (the default): every node starts its own nats-server (JetStream,
clustered; free client, cluster and monitoring ports on ``--bind``, default
127.0.0.1) and routes it to the servers of the nodes it finds
(``transports/nats/mesh.py``: a per-user directory of beacons, plus
``--peers``), so no node is a single point of failure. The server is this
node's child: stopped by PID when the node exits, and started through
``transports/nats/deathsig.py`` so the kernel stops it if the node is killed.
JetStream replicas follow the cluster: min(3, servers), raised as servers join.
A node alone waits for a second one (a JetStream cluster needs two servers to
elect its metadata leader).

Someone else's NATS: ``--nats URL`` (or ``$DEX_NATS_URL``) connects there; if
none answers, the bundled nats-server is started on 127.0.0.1:4222 (the
single-server set-up of before; ``--no-start-nats``: fail instead).

Lines users watch: ``Discovered node: NAME (ROLE) - HOST``,
``Server Stats: Orders=…, Trades=…`` (a node; Trades are engine trades),
``Orders: N | Rate: R/sec | Accepted: A`` (traders; Accepted are results
carrying OrderAccepted), and leadership changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import uvloop
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from engine import Instrument, NotConnected
from transports.codec.proto_codec import pb
from transports.core import legacy_flags
from transports.instruments import select_instruments
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.discovery import Discovery
from transports.nats.durable import DurableClient, DurableNode, publish_async
from transports.nats.lease import DEFAULT_LEASE_TTL_S, LeaderLease
from transports.nats.local import NatsServerProcess
from transports.nats.mesh import Beacon, Membership, generation, meta_group, parse_peers, retire, routed_servers, server_name
from transports.nats.settings import DEFAULT_PREFIX, DEFAULT_URL, LEASE_BUCKET, ORDERS_STREAM, RESULTS_STREAM, URL_ENV, Subjects, free_port
from transports.nats.streams import ensure_streams, lease_bucket

log = logging.getLogger("nats-auto")

ACK_TIMEOUT_S = 10.0
SHUTDOWN_STEP_S = 5.0  # the most any one step of stopping may take


@dataclass(frozen=True, slots=True)
class AutoSettings:
    mode: str = "auto"
    nats: str | None = None
    traders: int = 2
    rate: float = 200.0  # commands per second over this node's traders; 0 = as fast as acks allow
    batch: int = 1  # commands per order message
    duration: float = 0.0  # seconds; 0 = until SIGINT/SIGTERM
    name: str = ""
    lease_ttl: float = DEFAULT_LEASE_TTL_S
    replicas: int = 0  # 0: min(3, servers in the cluster) with a server of our own, 1 on someone else's NATS
    symbols: str = ""
    prefix: str = DEFAULT_PREFIX
    stats_interval: float = 5.0
    heartbeat: float = 1.0
    data_dir: str = "data/nats-auto"
    start_nats: bool = True
    seed: int = 1
    peers: str = ""  # host:clusterport,... routed to besides the discovered nodes
    bind: str = "127.0.0.1"
    beacon_dir: str = ""  # "" = mesh.default_beacon_dir()
    cluster: str = "dex"


def say(line: str) -> None:
    print(line, flush=True)


def parse_duration(text: str) -> float:
    text = text.strip().lower()
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale[suffix]
    return float(text)


# ------------------------------------------------------------- find or start
async def find_or_start(settings: AutoSettings, errors: ConnectionErrors, name: str) -> tuple[Client, NatsServerProcess | None]:
    """Connect to the first NATS that answers (given URL, then localhost:4222), else start the bundled one."""
    candidates = list(dict.fromkeys(u for u in (settings.nats, os.environ.get(URL_ENV), DEFAULT_URL) if u))
    for url in candidates:
        try:
            nc = await connect(url, name, errors, timeout=1.0)
        except NotConnected:
            say(f"No NATS at {url}")
            continue
        say(f"Found NATS at {url}")
        return nc, None
    if not settings.start_nats:
        raise NotConnected(f"no NATS server answers at {', '.join(candidates)}")
    process = NatsServerProcess(Path(settings.data_dir) / "nats-server", port=4222, server_name=f"dex-nats-{socket.gethostname()}")
    await asyncio.get_running_loop().run_in_executor(None, process.start)
    say(f"Started NATS (JetStream) at {process.url} (pid {process.pid}, data {process.store_dir})")
    try:
        nc = await connect(process.url, name, errors)
    except BaseException:
        process.stop()
        raise
    return nc, process


def uses_own_server(settings: AutoSettings) -> bool:
    """Whether this node runs its own clustered nats-server (no ``--nats``, no ``$DEX_NATS_URL``, starting allowed)."""
    return settings.start_nats and not settings.nats and not os.environ.get(URL_ENV)


def start_own_server(settings: AutoSettings, membership: Membership) -> tuple[NatsServerProcess, list[Beacon]]:
    """Claim a slot, start our nats-server routed to every live node (and ``--peers``), publish our beacon.

    Runs on the main thread: the server's death signal follows the thread that started it."""
    with membership.joining():
        slot = membership.claim_slot()
        peers = membership.peers()
        host = settings.bind
        cluster_port = free_port(host)
        routes = [b.cluster_url for b in peers] + parse_peers(settings.peers)
        slot_dir = Path(settings.data_dir) / f"n{slot}"
        process = NatsServerProcess(
            slot_dir,
            host=host,
            server_name=server_name(slot, generation(slot_dir)),
            system_password=secrets.token_hex(16),  # its own: only this node connects to its server as the system user
            cluster_port=cluster_port,
            cluster_name=settings.cluster,
            # Alone, a route to itself: nats-server refuses a clustered JetStream with no route at all.
            route_urls=routes or [f"nats-route://{host}:{cluster_port}"],
            monitor_port=free_port(host),
            die_with_parent=True,
        )
        process.start()
        membership.publish(
            Beacon(
                slot=slot,
                name=settings.name,
                pid=os.getpid(),
                server_name=process.server_name,
                server_pid=process.pid,
                client_url=process.url,
                cluster_url=process.cluster_url,
                monitor_url=process.monitor_url,
            )
        )
    return process, peers


async def leave_cluster(process: NatsServerProcess, errors: ConnectionErrors, peer_monitors: Sequence[str]) -> bool:
    """Before a clean exit: if the servers that stay would be short of a quorum of JetStream's metadata
    group, remove ours from it (its streams' replicas move to the others). Whether it was removed."""
    loop = asyncio.get_running_loop()
    try:
        size, _ = await loop.run_in_executor(None, meta_group, process.monitor_url)
        staying = len(await loop.run_in_executor(None, routed_servers, process.monitor_url))
    except OSError:
        return False
    if staying == 0 or staying > size // 2:
        return False  # alone (nothing to keep), or the others keep a quorum without us
    host, port = process.url.removeprefix("nats://").rsplit(":", 1)
    system = await connect(f"nats://sys:{process.system_password}@{host}:{port}", "nats-auto leave", errors)
    try:
        # When our server is the metadata leader it steps down while removing itself: the answer may never
        # come. So the group's size, as a staying server sees it, decides whether we left.
        with contextlib.suppress(Exception):
            await system.request("$JS.API.SERVER.REMOVE", json.dumps({"peer": process.server_name}).encode(), timeout=5)
    finally:
        with contextlib.suppress(Exception):
            await system.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for monitor in peer_monitors or [process.monitor_url]:
            with contextlib.suppress(OSError, ValueError):
                if (await loop.run_in_executor(None, meta_group, monitor))[0] <= staying:
                    await asyncio.sleep(1.0)  # the streams' replicas move off our server: a moment before it stops
                    say(f"Left the cluster: {process.server_name} removed from JetStream's metadata group ({staying} stay)")
                    return True
        await asyncio.sleep(0.2)
    say("Could not leave JetStream's metadata group: the others wait for this node to come back")
    return False


async def keep_replicas(js: JetStreamContext, monitor_url: str, stop: asyncio.Event, interval: float = 2.0) -> None:
    """Raise the streams' and the lease bucket's replicas to min(3, servers in the cluster) as servers join (never lowers them)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        with contextlib.suppress(Exception):  # a server joining or leaving: try again next round
            servers = 1 + len(await loop.run_in_executor(None, routed_servers, monitor_url))
            wanted = min(3, servers)
            for stream in (ORDERS_STREAM, RESULTS_STREAM, f"KV_{LEASE_BUCKET}"):
                config = (await js.stream_info(stream)).config
                if (config.num_replicas or 1) < wanted:
                    config.num_replicas = wanted
                    await js.update_stream(config)
                    say(f"Replicas: {stream} now has {wanted} ({servers} servers in the cluster)")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


# ------------------------------------------------------------------ traders
class TraderStats:
    def __init__(self) -> None:
        self.sent = 0  # commands published
        self.acked = 0  # commands the stream acknowledged (accepted for processing)
        self.accepted = 0  # OrderAccepted events in results
        self.results = 0
        self.errors = 0

    def on_result(self, seq: int, reply: pb.ReplyBatch) -> None:
        self.results += 1
        for r in reply.replies:
            for event in r.events:
                if event.WhichOneof("kind") == "accepted":
                    self.accepted += 1


async def run_trader(
    nc: Client, trader: str, instruments: list[Instrument], rate: float, batch: int, seed: int, stats: TraderStats
) -> None:
    from transports.core.workload import OrderFlow  # the harness's seeded workload: the same order mix as dex-trader

    by_symbol = {i.symbol: i for i in instruments}
    client = DurableClient(nc, trader, by_symbol.get, Subjects())
    client.on_result = stats.on_result
    await client.follow()
    flow = OrderFlow(seed, trader, instruments)
    interval = batch / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    inflight: set[asyncio.Future[object]] = set()
    try:
        while True:
            commands = flow.batch(batch)
            subject, data, headers = client.encode(commands)
            try:
                ack = await publish_async(client.js, subject, data, headers)
            except Exception:
                stats.errors += 1
                await asyncio.sleep(0.1)
                continue
            stats.sent += len(commands)
            inflight.add(ack)

            def done(f: asyncio.Future[object], n: int = len(commands)) -> None:
                inflight.discard(f)
                if f.cancelled() or f.exception() is not None:
                    stats.errors += 1
                else:
                    stats.acked += n

            ack.add_done_callback(done)
            # An acknowledgement lost with a dying NATS server would hold its in-flight slot forever.
            asyncio.get_running_loop().call_later(ACK_TIMEOUT_S, ack.cancel)
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -1.0:
                    next_at = time.monotonic()  # far behind: do not burst to catch up
            elif len(inflight) > 1000:
                await asyncio.sleep(0)
    finally:
        await client.close()


# --------------------------------------------------------------------- main
async def run(settings: AutoSettings) -> int:
    name = settings.name or f"{socket.gethostname()}-{os.getpid()}"
    errors = ConnectionErrors()
    membership: Membership | None = None
    process: NatsServerProcess | None
    own = uses_own_server(settings)
    try:
        if own:
            membership = Membership(Path(settings.beacon_dir) if settings.beacon_dir else None)
            try:
                process, peers = start_own_server(_named(settings, name), membership)
            except BaseException:
                membership.release()
                raise
            found = ", ".join(f"{b.name} ({b.server_name})" for b in peers) or "none yet"
            say(
                f"Started NATS (JetStream, cluster {settings.cluster}) as {process.server_name} at {process.url} "
                f"(pid {process.pid}, routes on {process.cluster_url}, data {process.store_dir}); nodes found: {found}"
            )
            urls = ",".join([process.url, *(b.client_url for b in peers)])
            try:
                nc = await connect(urls, f"nats-auto {name}", errors, dont_randomize=True)  # our own server first
            except BaseException:
                process.stop()
                membership.release()
                raise
        else:
            nc, process = await find_or_start(settings, errors, f"nats-auto {name}")
    except Exception as exc:
        print(f"nats-auto: {exc}", file=sys.stderr)
        return 2
    subjects = Subjects(settings.prefix)
    instruments = select_instruments(settings.symbols)
    node_mode = settings.mode in ("auto", "server", "all")
    trade_mode = settings.mode in ("auto", "trader", "all")
    node: DurableNode | None = None
    lease: LeaderLease | None = None
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clean_exit = False
    replicas = settings.replicas or (2 if own else 1)  # own server: two at first (JetStream runs from two servers on)
    trader_stats = TraderStats()

    def role() -> str:
        parts = []
        if node_mode:
            parts.append("leader" if lease is not None and lease.leader else "replica")
        if trade_mode:
            parts.append("trader")
        return "+".join(parts)

    discovery = Discovery(nc, name, role, subjects, interval=settings.heartbeat, say=say)
    try:
        js = nc.jetstream()
        waited = False
        give_up_at = loop.time() + settings.duration if settings.duration > 0 else None  # --duration bounds the wait too
        while True:
            try:
                await ensure_streams(js, subjects, replicas, timeout=5.0 if own else 30.0)
                kv = await lease_bucket(js, settings.lease_ttl, replicas, timeout=5.0 if own else 30.0)
                break
            except Exception as exc:
                if not own:
                    print(f"nats-auto: JetStream is not available on this NATS server: {exc}", file=sys.stderr)
                    return 2
                if not waited:
                    say("Waiting for JetStream: its cluster elects a leader once a second node has joined (start another nats-auto)")
                    waited = True
                if stop.is_set():
                    return 0
                if give_up_at is not None and loop.time() >= give_up_at:
                    print(f"nats-auto: no second node joined within --duration {settings.duration:g}s: nothing was traded", file=sys.stderr)
                    return 1
        if own and process is not None and settings.replicas == 0:
            tasks.append(loop.create_task(keep_replicas(js, process.monitor_url, stop)))
        if node_mode:

            def changed(leader: bool) -> None:
                say(f"Leader: {name} is {'the leader' if leader else 'no longer the leader'}")
                if node is not None:
                    node.leadership_changed(leader)

            lease = LeaderLease(kv, name, settings.lease_ttl, on_change=changed)
            node = DurableNode(nc, js, name, instruments, lease, subjects)
            await node.start()
            await lease.start()
        await discovery.start()
        say(f"nats-auto {name}: mode {settings.mode}, role {role()}, lease TTL {settings.lease_ttl:g}s")
        if trade_mode and settings.traders > 0:
            per_trader = settings.rate / settings.traders if settings.rate > 0 else 0.0
            for i in range(settings.traders):
                trader = f"{name}-t{i + 1}"
                tasks.append(
                    loop.create_task(run_trader(nc, trader, instruments, per_trader, settings.batch, settings.seed + i, trader_stats))
                )
        tasks.append(loop.create_task(_print_stats(settings, node, trader_stats if trade_mode else None, errors)))
        if settings.duration > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.duration)
        else:
            await stop.wait()
        _print_once(node, trader_stats if trade_mode else None, 0.0, errors)
        clean_exit = True
        return 0
    finally:
        for task in tasks:
            task.cancel()
        # Every step of the way out is bounded: a cluster losing its quorum can leave a JetStream call or an
        # unsubscribe unanswered, and this node must still get to stopping its nats-server.
        if tasks:  # asyncio.wait, not wait_for(gather): a gather cut off by the timeout logs "exception never retrieved"
            with contextlib.suppress(asyncio.CancelledError):
                done, _ = await asyncio.wait(tasks, timeout=SHUTDOWN_STEP_S)
                for task in done:
                    if not task.cancelled():
                        task.exception()  # retrieved: a task that failed while stopping is not logged again
        for step in (discovery.stop(), *((lease.stop(),) if lease is not None else ()), *((node.stop(),) if node is not None else ())):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(step, SHUTDOWN_STEP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), SHUTDOWN_STEP_S)
        removed = False
        if own and process is not None and clean_exit:  # Ctrl-C, SIGTERM or the duration's end (not a failure)
            with contextlib.suppress(Exception):
                monitors = [b.monitor_url for b in membership.peers()] if membership is not None else []
                removed = await asyncio.wait_for(leave_cluster(process, errors, monitors), 15)
        if process is not None:
            process.stop()
        if removed and process is not None:
            retire(process.workdir, process.store_dir)
        if membership is not None:
            membership.release()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print_once(node: DurableNode | None, traders: TraderStats | None, rate: float, errors: ConnectionErrors) -> None:
    if node is not None:
        r = node.replica
        detail = f"applied seq {r.applied_seq}, results {node.results_last}, leader {node.lease.leader}"
        say(f"Server Stats: Orders={r.orders}, Trades={r.trades} ({detail})")
    if traders is not None:
        detail = f"acked {traders.acked}, results {traders.results}"
        say(f"Orders: {traders.sent} | Rate: {rate:.0f}/sec | Accepted: {traders.accepted} ({detail})")
    if errors.slow_consumers:
        say(f"NATS slow-consumer events: {errors.slow_consumers}")


async def _print_stats(settings: AutoSettings, node: DurableNode | None, traders: TraderStats | None, errors: ConnectionErrors) -> None:
    last_sent, last_at = 0, time.monotonic()
    while True:
        await asyncio.sleep(settings.stats_interval)
        now = time.monotonic()
        sent = traders.sent if traders is not None else 0
        _print_once(node, traders, (sent - last_sent) / max(now - last_at, 1e-9), errors)
        last_sent, last_at = sent, now


def parse_args(argv: Sequence[str] | None = None) -> AutoSettings:
    p = argparse.ArgumentParser(prog="nats-auto", description="Zero-configuration exchange node over NATS JetStream (docs/nats.md).")
    p.add_argument("--mode", choices=("auto", "server", "trader", "all"), default="auto")
    p.add_argument("--nats", default=None, help=f"NATS URL to try first (default ${URL_ENV}, then {DEFAULT_URL})")
    p.add_argument("--traders", type=int, default=2, help="traders on this node (default 2)")
    p.add_argument("--rate", type=float, default=200.0, help="commands/s over this node's traders (default 200; 0 = unthrottled)")
    p.add_argument("--batch", type=int, default=1, help="commands per order message (default 1)")
    p.add_argument("--duration", default="0", help="run time, e.g. 30s, 5m (default: until Ctrl-C)")
    p.add_argument("--name", default="", help="node name (default host-pid)")
    p.add_argument(
        "--lease-ttl", type=float, default=DEFAULT_LEASE_TTL_S, help=f"leader lease TTL in seconds (default {DEFAULT_LEASE_TTL_S:g})"
    )
    p.add_argument(
        "--replicas", type=int, default=0, help="JetStream replicas of the streams (default: min(3, servers) with its own server, else 1)"
    )
    p.add_argument("--symbols", default="", help="comma list of default instruments (default: all); the same on every node")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help=argparse.SUPPRESS)
    p.add_argument("--stats-interval", type=float, default=5.0, help="seconds between stats lines (default 5)")
    p.add_argument("--heartbeat", type=float, default=1.0, help="seconds between heartbeats; peers expire after 3 (default 1)")
    p.add_argument("--data-dir", default="data/nats-auto", help="where this node's nats-server keeps its data (<dir>/n<slot>)")
    p.add_argument("--no-start-nats", action="store_true", help="run no nats-server: connect to --nats (or localhost:4222) or fail")
    p.add_argument("--peers", default="", help="host:clusterport,... of other nodes' servers to route to (besides those discovered)")
    p.add_argument("--bind", default="127.0.0.1", help="address this node's nats-server listens on (default 127.0.0.1)")
    p.add_argument("--beacon-dir", default="", help="directory of node beacons (default per user; nodes sharing it find each other)")
    p.add_argument("--cluster", default="dex", help="NATS cluster name (default dex)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="warning")
    a = legacy_flags.parse_args(p, argv)
    if a.traders < 0 or a.rate < 0 or a.batch < 1 or a.lease_ttl <= 0 or a.replicas < 0:
        p.error("--traders/--rate/--replicas must be >= 0, --batch >= 1, --lease-ttl > 0")
    try:
        parse_peers(a.peers)
        select_instruments(a.symbols)
        duration = parse_duration(a.duration)
    except ValueError as exc:
        p.error(str(exc))
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return AutoSettings(
        mode=a.mode,
        nats=a.nats,
        traders=a.traders,
        rate=a.rate,
        batch=a.batch,
        duration=duration,
        name=a.name,
        lease_ttl=a.lease_ttl,
        replicas=a.replicas,
        symbols=a.symbols,
        prefix=a.prefix,
        stats_interval=a.stats_interval,
        heartbeat=a.heartbeat,
        data_dir=a.data_dir,
        start_nats=not a.no_start_nats,
        seed=a.seed,
        peers=a.peers,
        bind=a.bind,
        beacon_dir=a.beacon_dir,
        cluster=a.cluster,
    )


def _named(settings: AutoSettings, name: str) -> AutoSettings:
    return replace(settings, name=name)


def main(argv: Sequence[str] | None = None) -> int:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
