"""Memory under a long steady order flow (``make soak``): does the server's RSS stay flat?

Run ``python -m bench.soak --out reports/soak.json`` (10 minutes by default;
``--duration 20`` for a quick look).

What is measured:

* **The server.** A real ``dex-zmq`` process (``transports.zmq.local``: its
  own journal with ``--fsync batch``; no snapshot by time, so that none falls
  on the last sample), started fresh in a temporary directory and stopped by
  its PID at the end.
* **The flow.** ``--traders`` clients send lean batches of ``--batch``
  commands at a steady ``--rate`` commands a second in total (seeded): limit
  places with a fresh client order id each, a few of them crossing the spread
  (trades), and cancels of each trader's oldest resting orders, each with a
  request id (about one in fifty sent twice, a retry answered from the
  window), so that the resting orders hover around ``--resting``. Every id
  ever sent is new: before the de-duplication window the engine kept each
  client order id for ever (about 55 bytes each, docs/exactly-once.md).
* **Samples.** Every ``--sample`` seconds: the server's RSS (``/proc/<pid>/status``),
  the resting orders (the sum of every level's order count, from the book),
  the engine sequence and the commands sent.
* **The verdict.** After ``--warmup`` seconds (the window and the histories
  fill up in the first minute at the default rate), the RSS growth is
  compared with what the change in resting orders explains
  (``BYTES_PER_RESTING_ORDER``, the engine benchmark's RSS figure per
  resting order in README.md) plus an allowance for the allocator
  (``ALLOWANCE``): ``flat`` is true when the growth stays within it. The
  least-squares slope of RSS after warm-up, and what the old engine would
  have added in the same time (every client order id kept), are reported
  beside it. The server's counters are reconciled with what was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import CancelOrder, Command, Instrument, PlaceOrder, Side
from transports.codec import lean
from transports.zmq.client import ZmqClient
from transports.zmq.local import LocalZmqServer

BYTES_PER_RESTING_ORDER = 242  # README.md, "Engine": 1,000,000 resting orders, by RSS
OLD_BYTES_PER_CLIENT_ID = 55  # what the engine kept per client order id for ever before the window (issue 14)
ALLOWANCE = 8 * 1024 * 1024  # allocator and fragmentation noise a flat process may still show
SEED = 14
SPREAD_TICKS = 100  # places land within this many ticks of the reference price (all inside one book request)


@dataclass
class Trader:
    """One client's side of the flow: its own ids, and its resting orders oldest first."""

    name: str
    rng: random.Random
    resting: deque[int] = field(default_factory=deque)
    placed: int = 0
    request_ids: int = 0
    sent: int = 0
    retried: int = 0

    def batch(self, instrument: Instrument, size: int, resting_target: int) -> list[Command]:
        commands: list[Command] = []
        mid = instrument.reference_price or 1_000_000
        lot = max(1, instrument.min_qty)
        while len(commands) < size:
            if len(self.resting) > resting_target or (self.resting and self.rng.random() < 0.3):
                self.request_ids += 1
                cancel = CancelOrder(self.name, self.resting.popleft(), request_id=self.request_ids)
                commands.append(cancel)
                if self.rng.random() < 0.02 and len(commands) < size:
                    commands.append(cancel)  # a retry: answered from the window, applied once
                    self.retried += 1
                continue
            self.placed += 1
            side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
            away = self.rng.randint(-3, SPREAD_TICKS)  # a few cross the spread and trade
            price = mid - away if side is Side.BUY else mid + away
            qty = lot * self.rng.randint(1, 5)
            commands.append(PlaceOrder(self.name, f"{self.name}-{self.placed}", instrument.symbol, side, qty, price))
        self.sent += len(commands)
        return commands

    def learn(self, commands: list[Command], outcomes: lean.Outcomes) -> None:
        """Remember the orders that rest (accepted with quantity left), to cancel them later."""
        for i, command in enumerate(commands):
            if isinstance(command, PlaceOrder) and outcomes.outcome[i] == lean.ACCEPTED and outcomes.leaves[i] > 0:
                self.resting.append(outcomes.order_id[i])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def resting_orders(client: ZmqClient, symbol: str) -> int:
    depth = await client.book(symbol, 1000)
    return sum(level.order_count for level in (*depth.bids, *depth.asks))


async def trade(
    client: ZmqClient, trader: Trader, instrument: Instrument, args: argparse.Namespace, deadline: float, errors: list[str]
) -> None:
    interval = args.batch * args.traders / args.rate  # this trader's share of the steady rate
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        commands = trader.batch(instrument, args.batch, args.resting // args.traders)
        try:
            outcomes = await client.submit_orders(lean.encode_orders(commands))
            trader.learn(commands, outcomes)
        except Exception as exc:  # counted and reported: a soak keeps going
            errors.append(f"{trader.name}: {exc!r}"[:200])
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # No snapshot by time: the default period (600 s) would fall on the last sample of a default run and measure the
    # snapshot's transient encoding, not the steady state (make bench-restart measures snapshots).
    server = LocalZmqServer(workdir, ("--fsync", "batch", "--snapshot-interval", "0", "--log-level", "warning")).start()
    try:
        names = [f"soak-{i}" for i in range(args.traders)]
        clients = [ZmqClient(name, server.url, timeout=30.0) for name in names]
        for client in clients:
            await client.connect()
        instrument = (await clients[0].instruments())[0]
        traders = [Trader(name, random.Random(SEED + i)) for i, name in enumerate(names)]
        errors: list[str] = []
        started = time.monotonic()
        deadline = started + args.duration
        tasks = [asyncio.create_task(trade(c, t, instrument, args, deadline, errors)) for c, t in zip(clients, traders, strict=True)]
        samples: list[dict[str, Any]] = []
        while True:
            stats = await clients[0].stats()
            samples.append(
                {
                    "t": round(time.monotonic() - started, 1),
                    "rss_bytes": rss_bytes(server.pid),
                    "resting_orders": await resting_orders(clients[0], instrument.symbol),
                    "engine_seq": stats["engine_seq"],
                    "commands_sent": sum(t.sent for t in traders),
                }
            )
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(args.sample, max(0.0, deadline - time.monotonic())))
        await asyncio.gather(*tasks)
        stats = await clients[0].stats()
        for client in clients:
            await client.close()
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    return summarize(args, samples, traders, stats, errors, elapsed)


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if not var else 60 * sum((x - mx) * (y - my) for x, y in points) / var


def summarize(
    args: argparse.Namespace, samples: list[dict[str, Any]], traders: list[Trader], stats: dict[str, Any], errors: list[str], elapsed: float
) -> dict[str, Any]:
    warm = [s for s in samples if s["t"] >= args.warmup] or samples[-1:]
    first, last = warm[0], warm[-1]
    growth = last["rss_bytes"] - first["rss_bytes"]
    explained = max(0, last["resting_orders"] - first["resting_orders"]) * BYTES_PER_RESTING_ORDER
    sent = sum(t.sent for t in traders)
    places_after_warmup = 0
    if last["commands_sent"] > first["commands_sent"]:
        share = sum(t.placed for t in traders) / max(1, sent)
        places_after_warmup = int((last["commands_sent"] - first["commands_sent"]) * share)
    commands = sum(n for kind, n in stats["commands"].items() if kind != "add_instrument")  # the server lists its instruments
    return {
        "benchmark": "soak",
        "transport": "zmq",
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "config": {
            "duration_s": args.duration,
            "rate_per_s": args.rate,
            "batch": args.batch,
            "traders": args.traders,
            "resting_target": args.resting,
            "warmup_s": args.warmup,
            "sample_s": args.sample,
            "seed": SEED,
        },
        "elapsed_s": round(elapsed, 1),
        "commands_sent": sent,
        "rate_achieved_per_s": round(sent / elapsed, 1) if elapsed else 0.0,
        "places": sum(t.placed for t in traders),
        "cancels_with_request_id": sum(t.request_ids for t in traders),
        "retries_sent": sum(t.retried for t in traders),
        "errors": len(errors),
        "error_examples": errors[:5],
        "server": {
            "commands": commands,
            "repeated_requests": stats.get("repeated_requests", 0),
            "trades": stats["trades"],
            "rejected_by_reason": stats["rejected_by_reason"],
            "reconciled": commands == sent and stats.get("repeated_requests", 0) == sum(t.retried for t in traders),
        },
        "after_warmup": {
            "from_t": first["t"],
            "to_t": last["t"],
            "rss_start_bytes": first["rss_bytes"],
            "rss_end_bytes": last["rss_bytes"],
            "rss_growth_bytes": growth,
            "rss_slope_bytes_per_min": round(slope_per_minute([(s["t"], s["rss_bytes"]) for s in warm])),
            "resting_start": first["resting_orders"],
            "resting_end": last["resting_orders"],
            "explained_by_resting_bytes": explained,
            "allowance_bytes": ALLOWANCE,
            "unexplained_growth_bytes": growth - explained,
            "flat": growth <= explained + ALLOWANCE,
            "old_engine_client_ids_bytes": places_after_warmup * OLD_BYTES_PER_CLIENT_ID,
        },
        "peak_rss_bytes": max(s["rss_bytes"] for s in samples),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="reports/soak.json")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of steady flow (default 600)")
    parser.add_argument("--rate", type=float, default=2000.0, help="commands a second, all traders together (default 2000)")
    parser.add_argument("--batch", type=int, default=50, help="commands per batch (default 50)")
    parser.add_argument("--traders", type=int, default=4)
    parser.add_argument("--resting", type=int, default=4000, help="resting orders the flow hovers around (default 4000)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before growth counts (default: a fifth of --duration)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = args.duration / 5
    with tempfile.TemporaryDirectory(prefix="dex-soak-") as tmp:
        result = asyncio.run(soak(args, Path(tmp)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    after = result["after_warmup"]
    print(
        f"soak: {result['commands_sent']:,} commands in {result['elapsed_s']} s ({result['rate_achieved_per_s']:,}/s); "
        f"RSS after warm-up {after['rss_start_bytes'] / 2**20:.1f} -> {after['rss_end_bytes'] / 2**20:.1f} MiB "
        f"(growth {after['rss_growth_bytes'] / 2**20:+.1f} MiB, "
        f"resting orders explain {after['explained_by_resting_bytes'] / 2**20:.1f} MiB, "
        f"flat={after['flat']}); reconciled={result['server']['reconciled']}; wrote {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
