"""Bots benchmark: price update published -> each triggered bot's order acknowledged by the exchange.

Run ``python -m bench.bots_bench --out reports/bench-bots.json`` (that is
``make bench-bots``); ``--quick`` is a smoke run of a few seconds with 1,000 bots.

Everything is a real process on this machine: a ``dex-zmq`` exchange
(journal in a temporary directory, default fsync policy), a RabbitMQ node
(``transports.amqp.broker.LocalRabbitMQ``), ``--workers`` ``dex-bots worker``
processes sharing ``--bots`` generated bots (16 partition queues, the three
strategies over BTC-USD, ETH-USD and SOL-USD), and ``dex-pricefeed`` (seeded
random walk) publishing every ``--interval`` seconds for ``--duration`` seconds.

Latency is measured by the workers, per order: from the update's
``published_ns`` (set by the feed just before it publishes; wall clock, same
machine) to the exchange's reply to the batch holding that order. The report
gives p50/p99/max over all orders of all workers, the counts (updates,
evaluations, orders, rejections by risk stage), a breakdown of each order
batch's time (delivery, evaluation, exchange round trip), the exchange's own
gateway latency and fsync times, and the machine's load average before and
after: the machine is shared, so the figures are what it did then. It runs
once per exchange fsync policy in ``--fsync`` (default ``batch,interval``: every
reply waits for its fsync, or fsyncs on a timer); the first is the summary,
all are under ``runs``.
Target: p99 <= 100 ms with 10,000 bots on 4 workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.engine_bench import machine
from traders.bots.store import BotStore, generate_bots
from transports.amqp.broker import LocalRabbitMQ
from transports.core.local_server import terminate
from transports.registry import make_client
from transports.zmq.local import LocalZmqServer

ROOT = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 100
PAIRS = ["BTC-USD", "ETH-USD", "SOL-USD"]


def percentile(values: list[int], fraction: float) -> int:
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else 0


def _stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    terminate(process, timeout)


async def _exchange_stats(url: str) -> dict[str, Any]:
    """The exchange's own view (its gateway latency and fsync times), to tell its share of the latency."""
    async with make_client("zmq", "bench", url) as client:
        stats = await client.stats()
    return {k: stats[k] for k in ("latency_us", "fsync_us", "commands", "batches") if k in stats}


def run(args: argparse.Namespace, fsync: str) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dex-bench-bots-") as tmp:
        work = Path(tmp)
        store = BotStore(work / "bots.db", args.partitions)
        store.add(generate_bots(args.bots, PAIRS, seed=args.seed))
        store.close()
        broker = LocalRabbitMQ(work / "rabbitmq").start()
        server = LocalZmqServer(work / "exchange", ("--log-level", "warning", "--fsync", fsync)).start()
        workers: list[subprocess.Popen[bytes]] = []
        feed: subprocess.Popen[bytes] | None = None
        try:
            for index in range(args.workers):
                log = (work / f"worker{index}.log").open("ab")
                command = [
                    sys.executable, "-m", "traders.bots.cli", "worker", "--db", str(work / "bots.db"),
                    "--worker", str(index), "--workers", str(args.workers), "--amqp-url", broker.url,
                    "--transport", "zmq", "--server", server.url, "--stats-out", str(work / f"worker{index}.json"),
                ]  # fmt: skip
                workers.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 60
            while not all(" ready:" in (work / f"worker{i}.log").read_text(errors="replace") for i in range(args.workers)):
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise RuntimeError("workers did not start:\n" + (work / "worker0.log").read_text(errors="replace")[-2000:])
                time.sleep(0.2)
            time.sleep(1.0)  # the standbys subscribe (in rank order) just after the owners
            rounds = max(1, int(args.duration / args.interval))
            feed_command = [
                sys.executable, "-m", "pricefeed.cli", "--amqp-url", broker.url, "--pairs", ",".join(PAIRS),
                "--interval", str(args.interval), "--count", str(rounds), "--seed", str(args.seed), "--quiet",
            ]  # fmt: skip
            feed = subprocess.Popen(feed_command, cwd=ROOT, stdout=(work / "feed.log").open("ab"), stderr=subprocess.STDOUT)
            feed.wait(args.duration * 3 + 60)
            time.sleep(3.0)  # let the workers drain their queues
            exchange_stats = asyncio.run(_exchange_stats(server.url))
        finally:
            if feed is not None:
                _stop(feed)
            for worker in workers:
                _stop(worker)
            server.stop()
            broker.stop()
        stats = [json.loads((work / f"worker{i}.json").read_text()) for i in range(args.workers)]
        for s in stats:
            s["breakdown"] = {"p50_us": s.pop("breakdown_p50_us"), "p99_us": s.pop("breakdown_p99_us")}
        if args.keep:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for kept in work.glob("*.log"):
                (keep / kept.name).write_bytes(kept.read_bytes())
        feed_log = (work / "feed.log").read_text(errors="replace").strip().splitlines()[-1:]
    latencies = sorted(v for s in stats for v in s.pop("latencies_us"))
    rejected: dict[str, int] = {}
    for s in stats:
        for stage, count in s["rejected"].items():
            rejected[stage] = rejected.get(stage, 0) + count
    p99_ms = percentile(latencies, 0.99) / 1000
    summary = {
        "orders_measured": len(latencies),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5) / 1000, 2),
            "p99": round(p99_ms, 2),
            "max": round((latencies[-1] if latencies else 0) / 1000, 2),
        },
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": bool(latencies) and p99_ms <= TARGET_P99_MS,
        "updates_published": rounds * len(PAIRS),
        "updates_received": sum(s["updates"] for s in stats),
        "bots_evaluated": sum(s["evaluated"] for s in stats),
        "orders": sum(s["orders"] for s in stats),
        "acked": sum(s["acked"] for s in stats),
        "exchange_rejects": sum(s["exchange_rejects"] for s in stats),
        "duplicates": sum(s["duplicates"] for s in stats),
        "rejected_by_stage": rejected,
        "partitions_per_worker": [len(s["partitions"]) for s in stats],
    }
    return {
        "benchmark": "bots",
        "description": __doc__.split("\n\n")[0] if __doc__ else "",
        "config": {
            "bots": args.bots,
            "workers": args.workers,
            "partitions": args.partitions,
            "pairs": PAIRS,
            "interval_s": args.interval,
            "duration_s": args.duration,
            "seed": args.seed,
            "transport": "zmq",
            "exchange_fsync": fsync,
        },
        "summary": summary,
        "exchange_stats": exchange_stats,
        "workers": stats,
        "feed": feed_log,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bots_bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between price rounds (one update per pair)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of publishing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fsync",
        default="batch,interval",
        help="the exchange's journal fsync policies to run, in order (default batch,interval); the first is the summary",
    )
    parser.add_argument("--keep", default="", help="copy the worker and feed logs into this directory")
    parser.add_argument("--quick", action="store_true", help="1,000 bots, 2 workers, 6 s: a smoke run")
    parser.add_argument("--out", default="reports/bench-bots.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.bots, args.workers, args.duration = 1000, 2, 6.0
    policies = [p.strip() for p in args.fsync.split(",") if p.strip()]
    unknown = [p for p in policies if p not in ("batch", "interval", "off")]
    if not policies or unknown:
        parser.error(f"--fsync: choose from batch, interval, off (got {args.fsync!r})")
    runs = {policy: run(args, policy) for policy in policies}
    report = dict(runs[policies[0]])
    kept = ("summary", "exchange_stats", "load_average_before", "load_average_after")
    report["runs"] = {policy: {key: r[key] for key in kept} for policy, r in runs.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for policy, r in runs.items():
        s = r["summary"]
        print(
            f"bots bench (exchange fsync {policy}): {args.bots} bots on {args.workers} workers, {s['orders_measured']} orders measured: "
            f"p50 {s['latency_ms']['p50']} ms, p99 {s['latency_ms']['p99']} ms, max {s['latency_ms']['max']} ms "
            f"(target p99 <= {TARGET_P99_MS} ms: {'met' if s['meets_target'] else 'NOT met'}); load {r['load_average_after']}"
        )
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
