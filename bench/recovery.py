"""Recovery per deployment: from a crash to the next accepted order, with lost and doubled orders counted.

Run ``python -m bench.recovery --out reports/bench-recovery.json``; ``run_recovery`` is what the
comparison report calls.

Deployments (each row is min/median/max over ``kills`` crashes):

* ``single``: one ``turbo-dex`` (HTTP) with its journal (default durability: every reply waits for its
  fsync). A steady stream of passive orders runs; the server is ``kill -9``-ed at a moment that varies
  with each kill and restarted at once on the same journal and port; recovery = kill to the first
  order the restarted server accepts (process start, journal replay and the client's reconnect
  included).
* ``nats-auto``: three ``nats-auto`` nodes on one nats-server (JetStream) under a steady order load;
  the leader is ``kill -9``-ed at a seeded moment of its lease cycle and restarted as a follower;
  recovery = kill to the first result the next leader writes (the result stream advances; the dead
  leader can write none). The lease TTL bounds it and is reported.
* ``dht``: three ``dex-node`` processes (one Raft group); the owner is ``kill -9``-ed while the stream
  sends to a survivor; recovery = kill to the first order a survivor acknowledges (new owner, majority
  stored). The killed node is restarted and caught up before the next kill.
* ``journal_1gb``: a single server whose journal history is ``journal_bytes`` long (see
  ``bench/journal_history.py``; snapshots every ``snapshot_every`` commands truncate it): ``kill -9``
  then restart, ``restarts`` times; restart = kill to the first accepted order (target 2 s). Once at
  the state where the history reached ``journal_bytes`` (its tail since the last snapshot is
  wherever that fell), and once more (``worst_tail``) on the same history traded on to just before
  its next snapshot: the longest tail a restart of that server ever replays.

Lost and doubled (``single`` and ``dht``): every order is a passive 1-lot buy at one price level of
one symbol, under a client order id, and an order whose outcome the crash hid is sent again under the
same id until its outcome is known (a retry the engine already applied is refused
``DUPLICATE_CLIENT_ORDER_ID``: applied once, so counted as applied). At the end, through the
restarted deployment: ``lost`` = acknowledged orders that ``order(order_id)`` no longer finds resting;
``doubled`` = the level's quantity minus the orders applied (each one lot, nothing trades). For
``nats-auto`` both come from the stream audit (``transports.nats.audit``): lost = acknowledged inputs
without a result, doubled = the audit's problems (an input applied twice is one).

Every process is started here and stopped by its PID. Times are this machine's (``load_average``
says how busy it was); nothing is extrapolated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.journal_history import SNAPSHOT_EVERY
from engine import OrderAccepted, OrderRejected, PlaceOrder, RejectReason, Side
from traders.harness.clients import remote_client
from traders.harness.server import LocalServer, free_port
from transports.core.client import TraderClient

Log = Callable[[str], None]
SYMBOL = "BTC-USD"
PRICE = 2_900_000  # ticks (BTC-USD 29,000.00, inside its band): a bid level nothing trades at, so its quantity counts our orders
STREAM_INTERVAL_S = 0.005  # the steady stream: one order every 5 ms (about 200/s) while the deployment answers
RETRY_S = 0.005  # how soon an order whose outcome is unknown is sent again (same client order id)
RECOVERY_TIMEOUT_S = 60.0
DEPLOYMENTS = ("single", "nats-auto", "dht")
TARGET_1GB_S = 2.0


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """min/median/max, rounded to the millisecond (None when there is nothing to summarize)."""
    if not values:
        return None
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


# ------------------------------------------------------------------ the steady stream
@dataclass
class PassiveStream:
    """Passive 1-lot buys at ``PRICE``, one at a time, each retried under its own id until its outcome is known.

    ``url`` may change (a new survivor); a failed send drops the client and the next attempt makes a
    fresh one, so a restarted server is reached as soon as it listens.
    """

    transport: str
    url: str
    trader: str
    acked: dict[str, int] = field(default_factory=dict)  # client order id -> order id
    already_applied: set[str] = field(default_factory=set)  # retried ids the engine held: applied once, before
    accepted: list[tuple[float, float]] = field(default_factory=list)  # (send, reply) monotonic times of each acceptance
    paused: bool = False  # while set, nothing new is sent (the order in flight still finishes)
    failures: int = 0
    _next: int = 0
    _pending: str = ""
    _client: TraderClient | None = None
    _stop: bool = False
    _task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run())
        return self._task

    async def run(self) -> None:
        """Send until ``stop``; then finish the order in flight (its outcome must be known)."""
        while not self._stop or self._pending:
            if self.paused and not self._pending:
                await asyncio.sleep(0.01)
                continue
            if not self._pending:
                self._next += 1
                self._pending = f"{self.trader}-{self._next}"
            if await self._send(self._pending):
                self._pending = ""
                await asyncio.sleep(STREAM_INTERVAL_S)
            else:
                await asyncio.sleep(RETRY_S)

    def stop(self) -> None:
        self._stop = True

    async def _send(self, coid: str) -> bool:
        sent = time.monotonic()
        try:
            if self._client is None:
                self._client = remote_client(self.transport, self.trader, self.url)
                await self._client.connect()
            replies = await self._client.submit([PlaceOrder("", coid, SYMBOL, Side.BUY, 1, PRICE)])
        except Exception:  # the deployment is down or failing over: the outcome is unknown, so retry
            self.failures += 1
            await self.drop_client()
            return False
        for event in replies[0]:
            if isinstance(event, OrderAccepted):
                self.acked[coid] = event.order_id
                self.accepted.append((sent, time.monotonic()))
                return True
            if isinstance(event, OrderRejected) and event.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
                self.already_applied.add(coid)
                return True
            if isinstance(event, OrderRejected):
                raise RuntimeError(f"order {coid} rejected: {event.reason.name} {event.message}")
        raise RuntimeError(f"order {coid}: no acceptance or rejection in {replies[0]!r}")

    async def drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await client.close()

    async def first_accept_after(self, instant: float, dead_at: float, timeout: float = RECOVERY_TIMEOUT_S) -> float:
        """Seconds from ``instant`` (the kill) to the first acceptance of an order sent after ``dead_at``.

        A reply the dead process sent before it died may be read after the kill: it does not count.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._task is not None and self._task.done():
                self._task.result()  # raises what ended the stream
                raise RuntimeError("the order stream ended")
            after = [reply for sent, reply in self.accepted[-50:] if sent > dead_at]
            if after:
                return after[0] - instant
            await asyncio.sleep(0.002)
        raise TimeoutError(f"no order accepted within {timeout:g} s of the crash")

    async def audit(self) -> dict[str, int]:
        """Lost and doubled, through the deployment as it is now (see the module docstring)."""
        client = remote_client(self.transport, self.trader, self.url)  # order queries answer the owner only
        await client.connect()
        try:
            lost = 0
            for order_id in self.acked.values():
                view = await client.order(order_id)
                lost += view is None or view.remaining != 1
            book = await client.book(SYMBOL, 50)
        finally:
            await client.close()
        resting = sum(level.qty for level in book.bids if level.price == PRICE)
        applied = len(self.acked) + len(self.already_applied)
        return {
            "acknowledged": len(self.acked),
            "retried_already_applied": len(self.already_applied),
            "lost": lost,
            "doubled": max(0, resting - (applied - lost)),
            "resting_lots": resting,
        }


# ------------------------------------------------------------------ single server
class SamePortServer(LocalServer):
    """``turbo-dex`` that keeps its port across restarts, as a supervisor restarting it in place would."""

    def command(self) -> list[str]:
        port = self.port or free_port(self.host)
        command = super().command()
        self.port, self.url = port, f"http://{self.host}:{port}"
        return [*command[: command.index("--port") + 1], str(port), *command[command.index("--port") + 2 :]]


async def _kill_and_time(server: SamePortServer, stream: PassiveStream, steady_s: float) -> float:
    """Let the stream run ``steady_s``, kill -9 the server, restart it; seconds to the first accepted order."""
    await asyncio.sleep(steady_s)
    assert server.process is not None
    killed_at = time.monotonic()
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()  # blocks the loop: no order is sent before the process is gone
    restarting = asyncio.get_running_loop().run_in_executor(None, server.start)
    took = await stream.first_accept_after(killed_at, time.monotonic())
    await restarting
    return took


async def _single(kills: int, workdir: Path, log: Log, server_args: tuple[str, ...] = ()) -> dict[str, Any]:
    phases = random.Random(2026)
    times: list[float] = []
    server = SamePortServer(workdir, server_args)
    server.start()
    stream = PassiveStream("http", server.url, "recovery-single")
    task = stream.start()
    try:
        for i in range(kills):
            times.append(await _kill_and_time(server, stream, 0.5 + phases.uniform(0, 0.5)))
            log(f"  single: kill {i + 1}/{kills}: first order accepted {times[-1]:.3f} s after kill -9")
        await asyncio.sleep(0.2)
        stream.stop()
        await asyncio.wait_for(task, RECOVERY_TIMEOUT_S)
        await stream.drop_client()
        audit = await stream.audit()
    finally:
        if not task.done():
            task.cancel()
        server.stop()
    samples = [round(t, 3) for t in times]
    return {"recovery_s": spread(times), "samples_s": samples, **audit, "transport": "http (turbo-dex)", "fsync": "batch"}


# ------------------------------------------------------------------ nats-auto
async def _nats_auto(kills: int, workdir: Path, log: Log, lease_ttl: float) -> dict[str, Any]:
    from transports.instruments import select_instruments
    from transports.nats.audit import audit
    from transports.nats.connection import ConnectionErrors, connect
    from transports.nats.load import OrderLoad
    from transports.nats.local import NatsServerProcess
    from transports.nats.nodes import NodeProcess, node_state
    from transports.nats.settings import RESULTS_STREAM

    instruments = select_instruments("")
    times: list[float] = []
    names = ["rc1", "rc2", "rc3"]
    with NatsServerProcess(workdir / "nats") as nats:
        nodes = {n: NodeProcess(n, nats.url, workdir, lease_ttl=lease_ttl).start() for n in names}
        try:
            nc = await connect(nats.url, "recovery", ConnectionErrors())
            js = nc.jetstream()
            try:

                async def leader(exclude: str = "") -> str:
                    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
                    while time.monotonic() < deadline:
                        for n in names:
                            state = await node_state(nc, n, 0.3) if n != exclude else None
                            if state is not None and state["leader"]:
                                return n
                        await asyncio.sleep(0.05)
                    raise TimeoutError("no nats-auto leader")

                current = await leader()
                load = OrderLoad(nc, instruments, traders=2, batch=1, rate=200.0)
                load.start()
                phases = random.Random(2026)
                for i in range(kills):
                    await asyncio.sleep(1.0 + phases.uniform(0, lease_ttl / 3))
                    nodes[current].signal(signal.SIGKILL)
                    killed_at = time.monotonic()
                    process = nodes[current].process
                    assert process is not None
                    process.wait()
                    # Only a live leader writes results: the first one after the kill is the next leader's.
                    base = (await js.stream_info(RESULTS_STREAM)).state.last_seq
                    while (await js.stream_info(RESULTS_STREAM)).state.last_seq <= base:
                        if time.monotonic() - killed_at > RECOVERY_TIMEOUT_S:
                            raise TimeoutError("no result written within the timeout of the leader's kill")
                        await asyncio.sleep(0.01)
                    times.append(time.monotonic() - killed_at)
                    successor = await leader(exclude=current)
                    log(f"  nats-auto: kill {i + 1}/{kills}: {current} killed, {successor} wrote a result after {times[-1]:.3f} s")
                    nodes[current].stop()
                    nodes[current] = NodeProcess(current, nats.url, workdir, lease_ttl=lease_ttl).start()
                    current = successor
                await load.stop()
                from bench.nats_bench import _caught_up

                await _caught_up(nc, 120)
                report, _, _ = await audit(js, instruments)
                lost = sum(1 for seq in load.acked if seq > report.results)
            finally:
                await nc.close()
        finally:
            for node in nodes.values():
                node.stop()
    return {
        "recovery_s": spread(times),
        "samples_s": [round(t, 3) for t in times],
        "lost": lost,
        "doubled": len(report.problems),
        "audit_problems": report.problems[:5],
        "acknowledged": len(load.acked),
        "lease_ttl_s": lease_ttl,
    }


# ------------------------------------------------------------------ DHT
async def _dht(kills: int, workdir: Path, log: Log) -> dict[str, Any]:
    from transports.dht.local import LocalCluster

    loop = asyncio.get_running_loop()
    times: list[float] = []
    phases = random.Random(2026)
    with LocalCluster(workdir, 3, SYMBOL) as cluster:
        await loop.run_in_executor(None, cluster.start_all)
        owner = await loop.run_in_executor(None, cluster.settled)
        stream = PassiveStream("dht", next(n for n in cluster.live() if n is not owner).url, "recovery-dht")
        task = stream.start()
        try:
            for i in range(kills):
                owner = await loop.run_in_executor(None, cluster.settled)
                survivor = next(n for n in cluster.live() if n is not owner)
                if survivor.url != stream.url:
                    stream.url = survivor.url
                    await stream.drop_client()
                await asyncio.sleep(0.5 + phases.uniform(0, 0.5))
                index = cluster.nodes.index(owner)
                killed_at = time.monotonic()
                await loop.run_in_executor(None, owner.kill)  # SIGKILL, then waits for the process to be gone
                times.append(await stream.first_accept_after(killed_at, time.monotonic()))
                log(f"  dht: kill {i + 1}/{kills}: a survivor accepted an order {times[-1]:.3f} s after the owner's kill -9")
                stream.paused = True  # the group converges (every member at the same applied entry) only at rest
                await loop.run_in_executor(None, cluster.start, index)  # rejoins, catches up from the log
                await asyncio.sleep(0.1)
                await loop.run_in_executor(None, cluster.converged, 30)
                stream.paused = False
            stream.stop()
            await asyncio.wait_for(task, RECOVERY_TIMEOUT_S)
            await stream.drop_client()
            audit = await stream.audit()
        finally:
            if not task.done():
                task.cancel()
    return {"recovery_s": spread(times), "samples_s": [round(t, 3) for t in times], **audit}


# ------------------------------------------------------------------ 1 GB journal
async def _restart_on_history(state: Path, restarts: int, workdir: Path, log: Log, snapshot_every: int) -> dict[str, Any]:
    """``restarts`` times: kill -9 a turbo-dex serving ``state`` and time the restart to its first accepted order."""
    workdir.mkdir(parents=True)
    server = SamePortServer(workdir, ("--snapshot-every", str(snapshot_every)))
    shutil.copyfile(state / "journal.log", server.journal_path)
    if (state / "journal.log.snapshot").exists():
        shutil.copyfile(state / "journal.log.snapshot", workdir / "journal.log.snapshot")
    first_start = time.monotonic()
    server.start(timeout=120)
    first_start_s = time.monotonic() - first_start
    stream = PassiveStream("http", server.url, "recovery-1gb")
    task = stream.start()
    times: list[float] = []
    try:
        for i in range(restarts):
            times.append(await _kill_and_time(server, stream, 0.3))
            log(f"  journal history: restart {i + 1}/{restarts}: first order accepted {times[-1]:.3f} s after kill -9")
        stream.stop()
        await asyncio.wait_for(task, RECOVERY_TIMEOUT_S)
        await stream.drop_client()
        audit = await stream.audit()
    finally:
        if not task.done():
            task.cancel()
        server.stop()
    return {"restart_s": spread(times), "samples_s": [round(t, 3) for t in times], "first_start_s": round(first_start_s, 3), **audit}


def _journal_1gb(journal_bytes: int, snapshot_every: int, restarts: int, workdir: Path, log: Log) -> dict[str, Any]:
    from bench.journal_history import history

    state = history(journal_bytes, snapshot_every=snapshot_every, log=log)
    at_target = asyncio.run(_restart_on_history(Path(state["path"]) / "at-target", restarts, workdir / "at-target", log, snapshot_every))
    result = {**{k: v for k, v in state.items() if k not in ("path", "worst_tail")}, **at_target}
    met = _met(at_target)
    if "worst_tail" in state:
        log(f"  journal history: the longest tail ({state['worst_tail']['tail_commands']:,} commands)")
        worst = asyncio.run(_restart_on_history(Path(state["path"]) / "worst-tail", restarts, workdir / "worst-tail", log, snapshot_every))
        result["worst_tail"] = {**state["worst_tail"], **worst, "target_met": _met(worst)}
    return {**result, "target_s": TARGET_1GB_S, "target_met": met}


def _met(restart: Mapping[str, Any]) -> bool:
    spread_s = restart["restart_s"]
    return spread_s is not None and spread_s["median"] <= TARGET_1GB_S and restart["lost"] == 0 and restart["doubled"] == 0


# ------------------------------------------------------------------ entry points
def _deployment(name: str, kills: int, workdir: Path, log: Log, lease_ttl: float) -> dict[str, Any]:
    if name == "single":
        return asyncio.run(_single(kills, workdir, log))
    if name == "nats-auto":
        return asyncio.run(_nats_auto(kills, workdir, log, lease_ttl))
    if name == "dht":
        return asyncio.run(_dht(kills, workdir, log))
    raise ValueError(f"unknown deployment {name!r}; known: {', '.join(DEPLOYMENTS)}")


def run_recovery(
    deployments: Sequence[str] = DEPLOYMENTS,
    *,
    kills: int = 5,
    journal_bytes: int = 1 << 30,
    restarts: int = 3,
    snapshot_every: int = SNAPSHOT_EVERY,
    lease_ttl: float = 5.0,
    log: Log = print,
) -> dict[str, Any]:
    """Every deployment's recovery row and the long-journal restart (``journal_bytes`` 0: skipped)."""
    result: dict[str, Any] = {"deployments": {}, "kills": kills}
    started = time.monotonic()
    for name in deployments:
        log(f"recovery: {name}, {kills} kill(s)")
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"dex-recovery-{name}-") as tmp:
            try:
                row = _deployment(name, kills, Path(tmp), log, lease_ttl)
                row["failure"] = None
            except Exception as exc:  # a deployment that cannot recover is a result to report
                row = {"recovery_s": None, "lost": None, "doubled": None, "failure": f"{type(exc).__name__}: {exc}"[:1000]}
                log(f"  {name} FAILED: {row['failure']}")
        row["kills"] = kills
        row["wall_s"] = round(time.monotonic() - began, 1)
        result["deployments"][name] = row
    if journal_bytes:
        log(f"recovery: a single server with {journal_bytes / 2**20:,.0f} MiB of journal history, {restarts} restart(s)")
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="dex-recovery-history-") as tmp:
            try:
                long_run = _journal_1gb(journal_bytes, snapshot_every, restarts, Path(tmp), log)
                long_run["failure"] = None
            except Exception as exc:
                long_run = {
                    "restart_s": None,
                    "target_s": TARGET_1GB_S,
                    "target_met": False,
                    "failure": f"{type(exc).__name__}: {exc}"[:1000],
                }
                log(f"  journal history FAILED: {long_run['failure']}")
        long_run["wall_s"] = round(time.monotonic() - began, 1)
        result["journal_1gb"] = long_run
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return result


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    lines = []
    for name, row in result["deployments"].items():
        if row.get("failure"):
            lines.append(f"{name:<10} FAILED: {row['failure'][:200]}")
            continue
        r = row["recovery_s"]
        lines.append(
            f"{name:<10} recovery min/median/max {r['min']}/{r['median']}/{r['max']} s  lost {row['lost']}  doubled {row['doubled']}"
        )
    long_run = result.get("journal_1gb")
    if long_run and not long_run.get("failure"):
        r = long_run["restart_s"]
        lines.append(
            f"history    {long_run['history_bytes'] / 2**20:,.0f} MiB written, snapshot {long_run['snapshot_bytes'] / 2**20:.1f} MiB, "
            f"tail {long_run['tail_commands']:,} commands: restart min/median/max {r['min']}/{r['median']}/{r['max']} s "
            f"(target <= {long_run['target_s']} s: {'met' if long_run['target_met'] else 'NOT met'})"
        )
        worst = long_run.get("worst_tail")
        if worst and worst["restart_s"]:
            w = worst["restart_s"]
            lines.append(
                f"history    the longest tail, {worst['tail_commands']:,} commands: "
                f"restart min/median/max {w['min']}/{w['median']}/{w['max']} s "
                f"(target: {'met' if worst['target_met'] else 'NOT met'})"
            )
    elif long_run:
        lines.append(f"history    FAILED: {long_run['failure'][:200]}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-recovery.json"))
    parser.add_argument("--deployments", default=",".join(DEPLOYMENTS))
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--journal-mib", type=float, default=1024.0, help="journal history for the restart figure, MiB (0 = skip)")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument(
        "--snapshot-every", type=int, default=SNAPSHOT_EVERY, help=f"commands between snapshots of the history (default {SNAPSHOT_EVERY:,})"
    )
    parser.add_argument("--lease-ttl", type=float, default=5.0, help="nats-auto lease TTL, seconds (default 5)")
    parser.add_argument("--quick", action="store_true", help="one kill each, an 8 MiB history, one restart")
    args = parser.parse_args(argv)
    if args.quick:
        args.kills, args.journal_mib, args.restarts = 1, min(args.journal_mib, 8.0), 1
        args.snapshot_every = min(args.snapshot_every, 50_000)
    deployments = [d.strip() for d in args.deployments.split(",") if d.strip()]
    result = run_recovery(
        deployments,
        kills=args.kills,
        journal_bytes=int(args.journal_mib * 2**20),
        restarts=args.restarts,
        snapshot_every=args.snapshot_every,
        lease_ttl=args.lease_ttl,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("\n".join(summary_lines(result)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
