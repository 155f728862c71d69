"""NATS benchmark: core request/reply through ``dex-trader``, the durable JetStream path, and failover.

Run ``python -m bench.nats_bench --out reports/bench-nats.json`` (that is
``make bench-nats``); ``--quick`` is a smoke run of about a minute.

1. Core request/reply (``bench.e2e``, the harness format of every transport):
   a fresh nats-server (JetStream, temp dir) and ``dex-nats`` per run, driven
   by ``dex-trader --transport nats``: ``batch`` (1000 commands per request,
   closed loop) and ``single`` (one command per request, open loop).
2. Durable path: one ``nats-auto --mode server`` node; traders publish to
   DEX_ORDERS (``Nats-Msg-Id``, pipelined acks) for ``--durable-seconds``;
   throughput = commands whose result is in DEX_RESULTS / seconds from the
   first publish to the last result. Batched (100 commands per message) and
   single (1 per message).
3. Failover: three nodes with the default 15 s lease under load; ``kill -9``
   of the leader ``--kills`` times (restarting it as a follower each time);
   the time until another node leads (each kill at a seeded random moment of
   the leader's renewal cycle); then an audit of both streams: lost
   (acknowledged without a result) and doubled orders must both be zero.

Everything shares this machine's cores with other work; the load average is
recorded. Every process is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.e2e import benchmark_of, main
from transports.instruments import select_instruments
from transports.nats.audit import audit
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.load import OrderLoad
from transports.nats.local import NatsServerProcess
from transports.nats.nodes import NodeProcess, node_state
from transports.nats.settings import ORDERS_STREAM, RESULTS_STREAM

TARGET_DURABLE_PER_S = 30_000
TARGET_FAILOVER_MEDIAN_S = 15.0
BENCHMARK = benchmark_of("nats")  # server (a nats-server and dex-nats), targets, notes: transports/nats/descriptor.py


# ------------------------------------------------------------------ durable
async def _caught_up(nc: Any, timeout: float) -> float:
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = (await js.stream_info(ORDERS_STREAM)).state.last_seq
        if (await js.stream_info(RESULTS_STREAM)).state.last_seq >= last:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise TimeoutError("results did not catch up with the inputs")


async def durable_run(batch: int, seconds: float, traders: int) -> dict[str, Any]:
    instruments = select_instruments("")
    with tempfile.TemporaryDirectory(prefix="dex-bench-nats-durable-") as tmp, NatsServerProcess(Path(tmp) / "nats") as nats:
        node = NodeProcess("bench-node", nats.url, Path(tmp), lease_ttl=15.0).start()
        try:
            nc = await connect(nats.url, "bench", ConnectionErrors())
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    state = await node_state(nc, "bench-node", 0.5)
                    if state is not None and state["leader"]:
                        break
                    await asyncio.sleep(0.1)
                load_before = [round(x, 2) for x in os.getloadavg()]
                load = OrderLoad(nc, instruments, traders=traders, batch=batch, rate=0)
                started = time.monotonic()
                load.start()
                await asyncio.sleep(seconds)
                await load.stop()
                acked_at = load.last_ack_at
                done_at = await _caught_up(nc, 120)
                report, _, _ = await audit(nc.jetstream(), instruments)
            finally:
                await nc.close()
        finally:
            node.stop()
    elapsed = done_at - started
    return {
        "batch": batch,
        "traders": traders,
        "commands_acked": load.acked_commands,
        "acked_per_s": round(load.acked_commands / max(acked_at - started, 1e-9), 1),
        "processed_per_s": round(load.acked_commands / max(elapsed, 1e-9), 1),
        "seconds_to_last_result": round(elapsed, 3),
        "inputs": report.inputs,
        "results": report.results,
        "engine_trades": report.trades,
        "audit_problems": report.problems,
        "load_average_before": load_before,
    }


# ----------------------------------------------------------------- failover
async def failover_run(kills: int, lease_ttl: float, rate: float) -> dict[str, Any]:
    instruments = select_instruments("")
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dex-bench-nats-failover-") as tmp, NatsServerProcess(Path(tmp) / "nats") as nats:
        names = ["fo1", "fo2", "fo3"]
        nodes = {n: NodeProcess(n, nats.url, Path(tmp), lease_ttl=lease_ttl).start() for n in names}
        try:
            nc = await connect(nats.url, "bench", ConnectionErrors())
            try:

                async def leader(exclude: str = "", timeout: float = 120.0) -> tuple[str, float]:
                    start = time.monotonic()
                    while time.monotonic() - start < timeout:
                        for n in names:
                            if n == exclude:
                                continue
                            state = await node_state(nc, n, 0.3)
                            if state is not None and state["leader"]:
                                return n, time.monotonic() - start
                        await asyncio.sleep(0.05)
                    raise TimeoutError("no leader")

                current, _ = await leader()
                load = OrderLoad(nc, instruments, traders=2, batch=1, rate=rate)
                load.start()
                phases = random.Random(2026)
                for i in range(kills):
                    # At a random moment of the leader's renewal cycle (seeded): the lease's remaining
                    # life at the kill is what a failover waits for, so a fixed moment would bias it.
                    await asyncio.sleep(1.0 + phases.uniform(0, lease_ttl / 3))
                    nodes[current].signal(signal.SIGKILL)
                    killed_at = time.monotonic()
                    successor, _ = await leader(exclude=current)
                    took = time.monotonic() - killed_at
                    times.append(round(took, 3))
                    print(f"failover {i + 1}/{kills}: {current} killed, {successor} leads after {took:.2f}s", flush=True)
                    nodes[current].stop()
                    nodes[current] = NodeProcess(current, nats.url, Path(tmp), lease_ttl=lease_ttl).start()  # back as a follower
                    current = successor
                await load.stop()
                await _caught_up(nc, 120)
                report, _, _ = await audit(nc.jetstream(), instruments)
                lost = sum(1 for seq in load.acked if seq > report.results)
            finally:
                await nc.close()
        finally:
            for node in nodes.values():
                node.stop()
    return {
        "kills": kills,
        "lease_ttl_s": lease_ttl,
        "failover_s": times,
        "min_s": min(times) if times else None,
        "median_s": statistics.median(times) if times else None,
        "max_s": max(times) if times else None,
        "acknowledged_messages": len(load.acked),
        "lost": lost,
        "doubled_problems": report.problems,
        "target_median_s": TARGET_FAILOVER_MEDIAN_S,
        "target_met": bool(times) and statistics.median(times) < TARGET_FAILOVER_MEDIAN_S and lost == 0 and report.ok,
    }


def run(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=BENCHMARK.default_out)
    p.add_argument("--kills", type=int, default=None, help="leader kills in the failover run (default 10; --quick 3)")
    p.add_argument("--durable-seconds", type=float, default=None, help="load seconds per durable run (default 10; --quick 3)")
    p.add_argument("--lease-ttl", type=float, default=15.0, help="lease TTL of the failover run (default 15)")
    p.add_argument("--skip-core", action="store_true", help="keep the core results already in --out")
    p.add_argument("--skip-durable", action="store_true", help="keep the durable results already in --out")
    own, rest = p.parse_known_args(argv)
    kills = own.kills if own.kills is not None else (3 if own.quick else 10)
    seconds = own.durable_seconds if own.durable_seconds is not None else (3.0 if own.quick else 10.0)
    core_args = [*rest, "--out", str(own.out), *(["--quick"] if own.quick else [])]
    if not own.skip_core:
        code = main(BENCHMARK, core_args, __doc__.split("\n\n")[0] if __doc__ else None)
        if code != 0:
            return code
    report: dict[str, Any] = json.loads(own.out.read_text(encoding="utf-8")) if own.out.exists() else {"benchmark": "nats", "summary": {}}
    if own.skip_durable and "durable" in report.get("summary", {}):
        durable: dict[str, Any] = report["summary"]["durable"]
    else:
        durable = {
            "batched": asyncio.run(durable_run(100, seconds, 4)),
            "single": asyncio.run(durable_run(1, seconds, 4)),
        }
        best = durable["batched"]["processed_per_s"]
        durable["target_batched_per_s"] = TARGET_DURABLE_PER_S
        durable["target_met"] = best >= TARGET_DURABLE_PER_S and not durable["batched"]["audit_problems"]
        single = durable["single"]["processed_per_s"]
        print(f"durable batched: {best:,.0f} commands/s processed (target >= {TARGET_DURABLE_PER_S:,}); single: {single:,.0f}/s")
    failover = asyncio.run(failover_run(kills, own.lease_ttl, 300.0))
    spread = f"{failover['min_s']}/{failover['median_s']}/{failover['max_s']}"
    print(f"failover over {kills} kills: min/median/max {spread} s, lost {failover['lost']}")
    report.setdefault("summary", {})["durable"] = durable
    report["summary"]["failover"] = failover
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    own.out.parent.mkdir(parents=True, exist_ok=True)
    own.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {own.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
