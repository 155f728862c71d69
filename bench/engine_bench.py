"""In-process benchmark of the matching engine, against peer libraries on the same streams.

Run ``python -m bench.engine_bench --out reports/bench-engine.json`` (that is
``make bench-engine``); ``--quick`` is a smoke test of a few seconds.

What is measured, per workload (see ``bench/engine_workloads.py``):

* ``ops_per_s``: one timed loop of ``engine.handle`` over the pre-built
  command list, no per-operation timing; median (and min/max) of ``--repeat``
  runs, each on a fresh engine pre-filled (untimed) with the workload's setup.
* ``p50_us`` / ``p99_us`` / ``p999_us``: a separate pass timing every
  ``handle()`` call with ``time.perf_counter_ns``.
* the peers' ``ops_per_s`` on the same operations (``bench/peers.py``),
  runs interleaved with ours so that machine noise hits everyone alike.

Memory: ``--memory-orders`` (default 1,000,000) non-crossing GTC limits rest
in a fresh engine, measured with ``tracemalloc`` in a child process (started
before the engine exists; the commands are made lazily and dropped after
``handle``, as are the events).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import engine
import engine.engine
from bench import peers as peer_lib
from bench.engine_workloads import GENERATORS, SYMBOL, BookState, Command, Workload, add_instrument, resting_orders
from engine import Engine, PlaceOrder, Side

TARGET_MIXED_OPS_PER_S = 500_000
TARGET_BYTES_PER_RESTING_ORDER = 300
DEFAULT_OPS = 300_000
DEFAULT_REPEAT = 5
DEFAULT_SEED = 20_240_601
DEFAULT_MEMORY_ORDERS = 1_000_000
QUICK_OPS = 20_000
QUICK_REPEAT = 2
QUICK_MEMORY_ORDERS = 50_000


# ------------------------------------------------------------------ machine
def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    mem = 0
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        load: list[float] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def engine_compiled() -> bool:
    """True when ``engine.engine`` is the mypyc extension module, not the ``.py`` source."""
    path = engine.engine.__file__ or ""
    return path.endswith((".so", ".pyd"))


# ---------------------------------------------------------------- our engine
def _fresh_engine(setup: Sequence[Command]) -> Engine:
    eng = Engine()
    eng.handle(add_instrument())
    handle = eng.handle
    for cmd in setup:
        handle(cmd)
    return eng


def engine_state(eng: Engine) -> BookState:
    depth = eng.depth(SYMBOL, 1 << 30)
    if depth is None:
        return BookState(0, 0, 0, 0)
    levels = depth.bids + depth.asks
    return BookState(
        sum(level.order_count for level in levels),
        sum(level.qty for level in levels),
        depth.bids[0].price if depth.bids else 0,
        depth.asks[0].price if depth.asks else 0,
    )


def time_engine(setup: Sequence[Command], commands: Sequence[Command]) -> tuple[float, float, int]:
    """Wall and CPU seconds for one loop of ``handle`` over ``commands`` on a fresh pre-filled engine, and the GC runs in it."""
    eng = _fresh_engine(setup)
    handle = eng.handle
    gc.collect()
    collections = sum(s["collections"] for s in gc.get_stats())
    c0 = time.process_time()
    t0 = time.perf_counter()
    for cmd in commands:
        handle(cmd)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    collections = sum(s["collections"] for s in gc.get_stats()) - collections
    del eng
    return elapsed, cpu, collections


def latencies_ns(setup: Sequence[Command], commands: Sequence[Command]) -> array[int]:
    """Every ``handle()`` timed on its own, in nanoseconds (timer overhead included)."""
    eng = _fresh_engine(setup)
    handle = eng.handle
    out = array("q", bytes(8 * len(commands)))
    clock = time.perf_counter_ns
    gc.collect()
    for i, cmd in enumerate(commands):
        t0 = clock()
        handle(cmd)
        out[i] = clock() - t0
    del eng
    return out


def timer_overhead_ns() -> int:
    clock = time.perf_counter_ns
    best = 1 << 62
    for _ in range(20_000):
        t0 = clock()
        t1 = clock()
        best = min(best, t1 - t0)
    return best


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    n = len(sorted_values)
    rank = max(1, min(n, math.ceil(q * n - 1e-9)))
    return sorted_values[rank - 1]


# ---------------------------------------------------------- one workload
def bench_workload(wl: Workload, repeat: int, peer_names: Sequence[str], notes: list[str]) -> dict[str, Any]:
    n = len(wl.commands)
    # Correctness first (untimed): our engine and every peer end on the same book as the generator's engine.
    ours = _fresh_engine(wl.setup)
    for cmd in wl.commands:
        ours.handle(cmd)
    ours_state = engine_state(ours)
    del ours
    if ours_state != wl.expected:
        raise AssertionError(f"{wl.name}: replay diverged from generation: {ours_state} != {wl.expected}")
    checks: dict[str, str] = {}
    timed_peers: list[str] = []
    for peer in peer_names:
        try:
            got = peer_lib.check(peer, wl.peer_setup, wl.peer_ops)
        except AssertionError as exc:  # a stream the peer cannot replay is not timed (limit_order_book would abort)
            checks[peer] = f"NOT TIMED: {exc}"
            notes.append(f"{wl.name}: {peer} could not replay the stream ({exc}); not timed")
            continue
        timed_peers.append(peer)
        checks[peer] = "same book as ours" if got == wl.expected else f"DIFFERENT: {got} vs ours {wl.expected}"
        if got != wl.expected:
            notes.append(f"{wl.name}: {peer} ended with a different book ({got} vs {wl.expected})")
    peer_names = timed_peers
    gc.collect()

    ours_s: list[float] = []
    ours_cpu: list[float] = []
    gc_runs: list[int] = []
    peer_s: dict[str, list[float]] = {p: [] for p in peer_names}
    peer_cpu: dict[str, list[float]] = {p: [] for p in peer_names}
    for _ in range(repeat):  # interleaved, so that noise on this shared machine hits every engine alike
        elapsed, cpu, collections = time_engine(wl.setup, wl.commands)
        ours_s.append(elapsed)
        ours_cpu.append(cpu)
        gc_runs.append(collections)
        for peer in peer_names:
            elapsed, cpu = peer_lib.timed_run(peer, wl.peer_setup, wl.peer_ops)
            peer_s[peer].append(elapsed)
            peer_cpu[peer].append(cpu)
            gc.collect()
    lat = sorted(latencies_ns(wl.setup, wl.commands))
    gc.collect()

    rates = sorted(n / s for s in ours_s)
    result: dict[str, Any] = {
        "description": wl.description,
        "ops": n,
        "setup_ops": len(wl.setup),
        "ops_per_s": round(statistics.median(rates)),
        "ops_per_s_min": round(rates[0]),
        "ops_per_s_max": round(rates[-1]),
        "runs_ops_per_s": [round(n / s) for s in ours_s],
        "ops_per_s_cpu": round(statistics.median(n / s for s in ours_cpu)),
        "p50_us": round(percentile(lat, 0.50) / 1000, 3),
        "p99_us": round(percentile(lat, 0.99) / 1000, 3),
        "p999_us": round(percentile(lat, 0.999) / 1000, 3),
        "max_us": round(lat[-1] / 1000, 3),
        "mean_us": round(sum(lat) / len(lat) / 1000, 3),
        "gc_collections_per_run": round(statistics.median(gc_runs)),
        "mix": wl.mix,
        "stats": wl.stats,
        "final_book": {
            "resting_orders": wl.expected.resting_orders,
            "resting_qty": wl.expected.resting_qty,
            "best_bid": wl.expected.best_bid,
            "best_ask": wl.expected.best_ask,
        },
        "peers": {},
    }
    peers_out: dict[str, Any] = {}
    for peer in peer_names:
        prates = sorted(n / s for s in peer_s[peer])
        median = statistics.median(prates)
        peers_out[peer] = {
            "ops_per_s": round(median),
            "ops_per_s_min": round(prates[0]),
            "ops_per_s_max": round(prates[-1]),
            "ops_per_s_cpu": round(statistics.median(n / s for s in peer_cpu[peer])),
            "ours_vs_peer": round(statistics.median(rates) / median, 2),
            "book_check": checks[peer],
        }
    result["peers"] = peers_out
    return result


# ------------------------------------------------------------------- memory
def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="utf-8") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _fill_engine(n: int, seed: int) -> Engine:
    eng = Engine()
    eng.handle(add_instrument())
    handle = eng.handle
    buy, sell = Side.BUY, Side.SELL
    for trader, coid, is_buy, price, qty in resting_orders(n, seed):
        handle(PlaceOrder(trader, coid, SYMBOL, buy if is_buy else sell, qty, price))
    return eng


def memory_child(target: str, method: str, n: int, seed: int) -> dict[str, Any]:
    """Run in a fresh process: fill one engine with ``n`` resting orders and measure it."""
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss_bytes()
    t0 = time.perf_counter()
    book: Any = _fill_engine(n, seed) if target == "ours" else peer_lib.fill(target, resting_orders(n, seed))
    seconds = time.perf_counter() - t0
    gc.collect()
    out: dict[str, Any] = {"target": target, "method": method, "resting_orders": n, "fill_seconds": round(seconds, 2)}
    if method == "tracemalloc":
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(traced_bytes=current - before, tracemalloc_peak_bytes=peak, bytes_per_resting_order=round((current - before) / n, 1))
    else:
        after = _rss_bytes()
        out.update(rss_delta_bytes=after - before, bytes_per_resting_order=round((after - before) / n, 1))
    state = engine_state(book) if target == "ours" else peer_lib.state(target, book)
    out["resting_orders_in_book"] = state.resting_orders
    return out


def _child(target: str, method: str, n: int, seed: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.engine_bench",
        "--memory-child",
        f"{target}:{method}",
        "--memory-orders",
        str(n),
        "--seed",
        str(seed),
    ]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {target}:{method} failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench_memory(n: int, seed: int, peer_names: Sequence[str]) -> dict[str, Any]:
    ours = _child("ours", "tracemalloc", n, seed)
    ours_rss = _child("ours", "rss", n, seed)
    out: dict[str, Any] = {
        "resting_orders": n,
        "bytes_per_resting_order": ours["bytes_per_resting_order"],
        "tracemalloc_peak_bytes": ours["tracemalloc_peak_bytes"],
        "traced_bytes": ours["traced_bytes"],
        "rss_bytes_per_resting_order": ours_rss["bytes_per_resting_order"],
        "fill_seconds_untraced": ours_rss["fill_seconds"],
        "method": "tracemalloc (current after - before, engine only: started before the engine was created), in a child process; "
        "rss_* = growth of the process's resident set in a separate child without tracemalloc",
        "orders": "non-crossing GTC limits, client order ids 'c-0000001'..., 4 traders, 2,000 price levels, qty U[1,100]",
    }
    peers_out: dict[str, Any] = {}
    for peer in peer_names:
        entry: dict[str, Any] = {}
        if peer == "lightmatchingengine":
            traced = _child(peer, "tracemalloc", n, seed)
            entry["bytes_per_resting_order"] = traced["bytes_per_resting_order"]
            entry["tracemalloc_peak_bytes"] = traced["tracemalloc_peak_bytes"]
        rss = _child(peer, "rss", n, seed)
        entry["rss_bytes_per_resting_order"] = rss["bytes_per_resting_order"]
        entry["fill_seconds_untraced"] = rss["fill_seconds"]
        if peer == "limit_order_book":
            entry["note"] = "C++ allocations are invisible to tracemalloc: resident-set growth only"
        entry["stores_client_order_ids"] = False
        peers_out[peer] = entry
    out["peers"] = peers_out
    return out


# ------------------------------------------------------------------ report
def _fmt_rate(value: object) -> str:
    return f"{float(str(value)) / 1000:,.0f}k" if isinstance(value, (int, float)) else "-"


def summary(report: dict[str, Any]) -> str:
    peer_names: list[str] = report["peers_measured"]
    lines = [
        f"engine benchmark: compiled={report['engine_compiled']} seed={report['seed']} repeat={report['repeat']} "
        f"cpu={report['machine']['cpu']} cores={report['machine']['cores']} python={report['machine']['python']}",
        "",
    ]
    header = f"{'workload':<14} {'ops':>8} {'ours ops/s (min-max)':>24} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9}"
    for peer in peer_names:
        header += f" {peer[:20]:>21}"
    lines.append(header)
    for name, w in report["workloads"].items():
        spread = f"{_fmt_rate(w['ops_per_s'])} ({_fmt_rate(w['ops_per_s_min'])}-{_fmt_rate(w['ops_per_s_max'])})"
        row = f"{name:<14} {w['ops']:>8} {spread:>24} {w['p50_us']:>8.2f} {w['p99_us']:>8.2f} {w['p999_us']:>9.2f}"
        for peer in peer_names:
            p = w["peers"].get(peer)
            cell = f"{_fmt_rate(p['ops_per_s'])} (x{p['ours_vs_peer']:.2f})" if p else "-"
            row += f" {cell:>21}"
        lines.append(row)
    lines.append("(peer cells: peer ops/s, and ours / peer)")
    mem = report.get("memory")
    if mem:
        lines.append("")
        lines.append(
            f"memory: {mem['resting_orders']:,} resting orders: {mem['bytes_per_resting_order']:.0f} B/order traced "
            f"(peak {mem['tracemalloc_peak_bytes'] / 1e6:,.0f} MB), {mem['rss_bytes_per_resting_order']:.0f} B/order RSS"
        )
        for peer, p in mem.get("peers", {}).items():
            traced = f"{p['bytes_per_resting_order']:.0f} B/order traced, " if "bytes_per_resting_order" in p else ""
            lines.append(f"        {peer}: {traced}{p['rss_bytes_per_resting_order']:.0f} B/order RSS (no client ids stored)")
    t = report["targets"]
    lines.append("")
    lines.append(
        f"targets: mixed >= {t['mixed_ops_per_s']:,} ops/s: {t['mixed_ops_per_s_met']}; "
        f"<= {t['bytes_per_resting_order']} B/resting order: {t['bytes_per_resting_order_met']}; "
        f"faster than every peer: {t['faster_than_every_peer']}"
    )
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.engine_bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--out", type=Path, default=Path("reports/bench-engine.json"), help="where to write the JSON report")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="timed runs per workload and engine (the median is reported)")
    p.add_argument("--ops", type=int, default=DEFAULT_OPS, help="timed commands per workload")
    p.add_argument("--memory-orders", type=int, default=DEFAULT_MEMORY_ORDERS, help="resting orders for the memory test")
    p.add_argument("--workloads", default=",".join(GENERATORS), help="comma-separated subset of: " + ", ".join(GENERATORS))
    p.add_argument(
        "--quick", action="store_true", help=f"smoke test: {QUICK_OPS:,} ops, {QUICK_REPEAT} runs, {QUICK_MEMORY_ORDERS:,} orders"
    )
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-peers", action="store_true")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.ops = min(args.ops, QUICK_OPS)
        args.repeat = min(args.repeat, QUICK_REPEAT)
        args.memory_orders = min(args.memory_orders, QUICK_MEMORY_ORDERS)
    if args.ops < 1 or args.repeat < 1 or args.memory_orders < 1:
        p.error("--ops, --repeat and --memory-orders must be positive")
    unknown = set(args.workloads.split(",")) - set(GENERATORS)
    if unknown:
        p.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.memory_child:
        target, method = args.memory_child.split(":")
        print(json.dumps(memory_child(target, method, args.memory_orders, args.seed)))
        return 0

    started = time.perf_counter()
    host = machine()  # before any work, so that the load average is the one the run started under
    available = {} if args.skip_peers else peer_lib.available()
    peer_names = [p for p in peer_lib.PEERS if p in available]
    notes: list[str] = []
    if not args.skip_peers:
        notes.extend(f"peer {p} not installed: not measured" for p in peer_lib.PEERS if p not in available)

    # Every command is built before anything is timed; then the heap is frozen so that the
    # pre-built lists are not scanned by the garbage collector during the timed loops.
    names = args.workloads.split(",")
    print(f"generating {len(names)} workloads of {args.ops:,} commands (seed {args.seed})...", file=sys.stderr)
    workloads = [GENERATORS[name](args.ops, args.seed + i) for i, name in enumerate(names)]
    gc.collect()
    gc.freeze()

    results: dict[str, dict[str, Any]] = {}
    for wl in workloads:
        print(f"benchmarking {wl.name}...", file=sys.stderr)
        results[wl.name] = bench_workload(wl, args.repeat, peer_names, notes)
    del workloads
    gc.unfreeze()
    gc.collect()

    memory: dict[str, Any] | None = None
    if not args.skip_memory:
        print(f"memory: {args.memory_orders:,} resting orders...", file=sys.stderr)
        memory = bench_memory(args.memory_orders, args.seed, peer_names)

    faster = all(w["ops_per_s"] > p["ops_per_s"] for w in results.values() for p in w["peers"].values())
    mixed_rate: float | None = results["mixed"]["ops_per_s"] if "mixed" in results else None
    bpo: float | None = memory["bytes_per_resting_order"] if memory else None
    notes.extend(
        [
            "All commands are generated before timing by driving a scratch engine and reading its events, so cancels and replaces "
            "always target live orders with exact order ids; then gc.collect() and gc.freeze() so the pre-built command lists "
            "cost no GC time inside the timed loops. The GC stays enabled while timing (gc_collections_per_run counts its runs): "
            "the engine's own garbage is part of its cost.",
            "ops_per_s: one loop of engine.handle(command) over the whole timed stream, no per-op timing, median of --repeat runs "
            "on fresh engines pre-filled (untimed) with setup_ops; output events are built and dropped. ops_per_s_cpu: the same "
            "runs timed with process CPU time (less sensitive to other processes taking the core).",
            f"p50/p99/p999_us: a separate pass timing each handle() with time.perf_counter_ns; includes the timer's own overhead "
            f"(about {timer_overhead_ns()} ns per pair of calls on this machine).",
            "Peers are measured on the same operations and the same streams, runs interleaved with ours; before timing, each peer "
            "is replayed once with assertions and its final book (orders, quantity, best bid/ask) compared with ours (book_check).",
            "Peers generate no events, keep no client order ids, do no validation, risk checks, self-trade prevention or "
            "idempotency, and keep no order status history; our engine does all of it on every command.",
            "lightmatchingengine has no replace and no IOC: replace = cancel_order + add_order (a new order id), "
            "IOC = add_order then cancel_order if leaves_qty > 0.",
            "limit_order_book has no replace and no IOC: replace = cancel + limit (a new order id), IOC = limit then cancel if has(id). "
            "It is C++ behind ctypes: most of its time is the ctypes call overhead.",
            "To keep every book identical, buyers and sellers are different traders (our self-trade prevention never fires) and "
            "every replace loses time priority (moves the price or raises the quantity), which is what cancel + add does.",
            "Our ops count one command as one op; a peer's replace is two calls but counts as one op.",
            "Every place carries a unique client order id ('c-0000001', ...), so our engine does its duplicate check and keeps "
            "the id, as it would for real clients; the peers take no client ids.",
            f"This machine has {os.cpu_count()} shared (noisy) cores: compare medians, and expect run-to-run spread.",
        ]
    )
    report: dict[str, Any] = {
        "machine": host,
        "engine_compiled": engine_compiled(),
        "engine_module": engine.engine.__file__,
        "seed": args.seed,
        "repeat": args.repeat,
        "quick": args.quick,
        "gc_freeze_after_generation": True,
        "peers_measured": peer_names,
        "peer_versions": available,
        "workloads": results,
        "memory": memory,
        "targets": {
            "mixed_ops_per_s": TARGET_MIXED_OPS_PER_S,
            "bytes_per_resting_order": TARGET_BYTES_PER_RESTING_ORDER,
            "faster_than_every_peer": faster if peer_names else None,
            "mixed_ops_per_s_met": mixed_rate >= TARGET_MIXED_OPS_PER_S if mixed_rate is not None else None,
            "bytes_per_resting_order_met": bpo <= TARGET_BYTES_PER_RESTING_ORDER if bpo is not None else None,
        },
        "notes": notes,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(summary(report))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
