"""Restart time against journal size, with snapshots off and on (``make bench-restart``).

Run ``python -m bench.restart_bench --out reports/bench-restart.json``.

What is measured:

* **Trading.** An in-process ``Gateway`` (journal, ``fsync="batch"``, as the
  servers run) takes lean batches (``transports.codec.lean``, one journal
  record per submission, as every wire sends them) from ``--traders`` seeded
  ``transports.core.workload.OrderFlow`` streams, submitted concurrently as fast as
  the gateway answers, for the largest of ``--marks`` seconds; once with
  snapshots off and once with the gateway's default snapshot period. At each
  mark the trading pauses (the pause is not counted as trading time) and the
  state files are copied, all of it durable at that moment: the state a
  ``kill -9`` would leave.
* **Restart.** For each copy, a fresh child process times
  ``Gateway.start()`` from construction to ready (journal locked, snapshot
  loaded, tail replayed) and checks that the engine seq equals the one the
  trading process had at the mark. Child processes keep the memory of one
  restart from slowing the next.
* **The snapshot pause.** A book of ``--book`` resting orders (non-crossing
  GTC limits, 1,000 traders) is snapshotted by ``Gateway.write_snapshot`` (the
  writer's pause) and restarted from that snapshot alone.

The slope (seconds of restart per second of trading, and per million
commands) is a least-squares fit over the marks. Everything is seeded; times
depend on the machine (``machine`` in the output says which).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import engine.engine as engine_module
from engine import AddInstrument, Engine, Instrument, PlaceOrder, Side
from transports.codec import lean
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.journal import snapshot_path
from transports.core.requests import RequestHandler
from transports.core.workload import OrderFlow

INSTRUMENTS = [Instrument.create("BTC-USD", "0.01", "0.001"), Instrument.create("ETH-USD", "0.01", "0.001")]
JOURNAL = "dex.journal"
SEED = 42


def _resting(engine: Engine) -> int:
    """Orders resting in every book (what a snapshot holds most of)."""
    return sum(
        len(level.live_orders()) for book in engine.books.values() for side in (book.bids, book.asks) for level in side.levels.values()
    )


def _copy_state(journal: Path, into: Path) -> int:
    """Copy the journal and its snapshot (if any) into ``into``; the bytes copied."""
    into.mkdir(parents=True)
    total = 0
    for source in (journal, snapshot_path(journal)):
        if source.exists():
            shutil.copyfile(source, into / source.name)
            total += source.stat().st_size
    return total


async def _trade(workdir: Path, marks: Sequence[float], config: GatewayConfig, traders: int, batch: int) -> list[dict[str, Any]]:
    """Trade until the last mark; at each mark copy the state files to ``workdir/<mark>s``."""
    journal = Path(config.journal or "")
    gateway = Gateway(config=config)
    await gateway.start(INSTRUMENTS)
    requests = RequestHandler(gateway, "inproc")
    flows = [OrderFlow(SEED, f"t{i}", INSTRUMENTS) for i in range(traders)]

    async def submit(flow: OrderFlow) -> None:
        await requests.orders(lean.encode_orders(flow.batch(batch)), flow.trader)

    results: list[dict[str, Any]] = []
    traded = 0.0  # seconds of trading, pauses at the marks excluded
    commands = 0
    for mark in marks:
        started = time.perf_counter()
        while traded + (time.perf_counter() - started) < mark:
            await asyncio.gather(*(submit(flow) for flow in flows))
            commands += traders * batch
        traded += time.perf_counter() - started
        copied = _copy_state(journal, workdir / f"{mark:g}s")
        results.append(
            {
                "trading_s": round(traded, 2),
                "commands": commands,
                "commands_per_s": int(commands / traded),
                "engine_seq": gateway.engine.seq,
                "resting_orders": _resting(gateway.engine),
                "journal_bytes": journal.stat().st_size,
                "snapshot_bytes": snapshot_path(journal).stat().st_size if snapshot_path(journal).exists() else 0,
                "state_bytes": copied,
                "snapshots_written": gateway.snapshots,
                "last_snapshot_pause_ms": round(gateway.snapshot_pause_ms, 1),
                "state": str(workdir / f"{mark:g}s"),
            }
        )
        print(f"  {mark:g}s: {commands:,} commands, journal {results[-1]['journal_bytes'] / 1e6:.1f} MB", file=sys.stderr, flush=True)
    await gateway.stop()
    return results


def _restart(state: Path) -> dict[str, Any]:
    """Time a gateway start on a copy of ``state`` in a child process (see ``_child``).

    A child that found the engine interpreted while this process has it
    compiled ran during a rebuild of the native modules: its time is not the
    engine's, so it is run again (a copy each time: a start may change the files).
    """
    for attempt in range(10):
        copy = state.with_name(f"{state.name}-try{attempt}")
        shutil.copytree(state, copy)
        cmd = [sys.executable, "-m", "bench.restart_bench", "--child", str(copy / JOURNAL)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parent.parent)
        shutil.rmtree(copy)
        if proc.returncode != 0:
            raise RuntimeError(f"restart child failed: {proc.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        if result["engine_compiled"] or not _compiled():
            return result
        print("  (the engine was being rebuilt: restart measured again)", file=sys.stderr, flush=True)
        time.sleep(15)
    raise RuntimeError("the native engine stayed unavailable: restart times would not be comparable")


async def _child(journal: str) -> dict[str, Any]:
    started = time.perf_counter()
    gateway = Gateway(config=GatewayConfig(journal=journal, snapshot_every=0, snapshot_interval_s=0))
    await gateway.start(INSTRUMENTS)
    seconds = time.perf_counter() - started
    # No stop(): its checkpoint (a state hash of the whole book) is shutdown work, not start-up work.
    compiled = _compiled()  # per child: a rebuild running meanwhile (``scripts/build_native.py``) would leave it interpreted
    return {
        "restart_s": round(seconds, 3),
        "recovered_commands": gateway.recovered_commands,
        "engine_seq": gateway.engine.seq,
        "engine_compiled": compiled,
    }


def _compiled() -> bool:
    return engine_module.__file__ is not None and engine_module.__file__.endswith(".so")


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def _series(workdir: Path, marks: Sequence[float], config: GatewayConfig, traders: int, batch: int) -> dict[str, Any]:
    points = asyncio.run(_trade(workdir, marks, config, traders, batch))
    for point in points:
        restart = _restart(Path(point.pop("state")))
        if restart["engine_seq"] != point["engine_seq"]:
            raise RuntimeError(f"restart rebuilt seq {restart['engine_seq']}, trading had {point['engine_seq']}")
        point.update(restart)
        print(f"  restart after {point['trading_s']}s of trading: {point['restart_s']}s", file=sys.stderr, flush=True)
    seconds = [p["restart_s"] for p in points]
    return {
        "snapshot_every": config.snapshot_every,
        "snapshot_interval_s": config.snapshot_interval_s,
        "points": points,
        "restart_s_per_trading_s": round(_slope([p["trading_s"] for p in points], seconds), 4),
        "restart_s_per_million_commands": round(_slope([p["commands"] / 1e6 for p in points], seconds), 4),
    }


def _big_book(orders: int) -> Engine:
    engine = Engine()
    engine.handle(AddInstrument(INSTRUMENTS[0]))
    reference = 1_000_000
    for i in range(orders):
        side = Side.BUY if i % 2 else Side.SELL
        price = reference - 1 - i % 500 if side is Side.BUY else reference + i % 500
        engine.handle(PlaceOrder(f"t{i % 1000}", f"c{i}", INSTRUMENTS[0].symbol, side, 1 + i % 7, price))
    return engine


def _snapshot_pause(workdir: Path, orders: int) -> dict[str, Any]:
    """The writer's pause to snapshot a book of ``orders`` resting orders, and a restart from that snapshot."""
    journal = workdir / "book" / JOURNAL
    journal.parent.mkdir()

    async def write() -> dict[str, Any]:
        gateway = Gateway(_big_book(orders), GatewayConfig(journal=str(journal), snapshot_every=0, snapshot_interval_s=0))
        await gateway.start(INSTRUMENTS)
        gateway.write_snapshot()
        pause = gateway.snapshot_pause_ms
        assert gateway.journal is not None
        gateway.journal.close()  # no stop(): its checkpoint hashes the book again, which is not what is measured
        return {"resting_orders": _resting(gateway.engine), "pause_ms": round(pause, 1)}

    result = asyncio.run(write())
    result["snapshot_bytes"] = snapshot_path(journal).stat().st_size
    result.update(_restart(journal.parent))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restart_bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="reports/bench-restart.json")
    parser.add_argument("--marks", default="10,20,40", help="seconds of trading at which a restart is measured (comma list)")
    parser.add_argument("--traders", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000, help="commands per lean batch")
    parser.add_argument("--book", type=int, default=1_000_000, help="resting orders for the snapshot-pause measurement (0 = skip)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child))))
        return 0
    marks = sorted(float(m) for m in args.marks.split(","))
    defaults = GatewayConfig()
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "engine_compiled": _compiled(),
        "workload": {"traders": args.traders, "batch": args.batch, "instruments": [i.symbol for i in INSTRUMENTS], "seed": SEED},
        "method": "in-process gateway, lean batches, fsync=batch; state copied at each mark (a kill -9 restart, no clean-stop snapshot); "
        "restart = Gateway construction to start() returning, in a fresh child process",
    }
    with tempfile.TemporaryDirectory(prefix="dex-restart-bench-") as tmp:
        work = Path(tmp)
        for name, every, interval in (("snapshots_off", 0, 0.0), ("snapshots_on", defaults.snapshot_every, defaults.snapshot_interval_s)):
            print(f"{name}: trading to {marks[-1]:g}s", file=sys.stderr, flush=True)
            config = GatewayConfig(journal=str(work / name / JOURNAL), snapshot_every=every, snapshot_interval_s=interval)
            result[name] = _series(work / name / "marks", marks, config, args.traders, args.batch)
        if args.book:
            print(f"snapshot pause: a book of {args.book:,} resting orders", file=sys.stderr, flush=True)
            result["snapshot_pause"] = _snapshot_pause(work, args.book)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
