"""The order path of ``dex-bench``: every transport against the same engine, beside its wire's echo ceiling.

The workloads (``bench/workload_files.py``) of mode ``closed`` (as fast as
replies come back) and ``fixed`` (open loop at a fixed rate, latency from
each order's intended send time: coordinated omission corrected) run here,
through the same ``dex-trader`` harness with the same seed, on the
in-process gateway (the ceiling: the harness and the engine in one process,
no wire) and every transport they name. The default suite has four:
``single`` (one order at a time), ``batch`` (4 traders, 1,000 orders per
submit), and ``single_fsync_off`` / ``batch_fsync_off`` (the same on a
server started with ``--fsync off``, so
the wire's cost is seen apart from the disk's; a transport whose
acknowledgement waits for something other than our journal, the DHT's Raft
majority, has no such row).

Beside them, in the same run: each library's trivial echo server with the
same payloads (``bench/wire_ceiling.py``: raw TCP, ZeroMQ, gRPC, FastAPI,
NATS, RabbitMQ), and the engine alone on the same seeded workload. A
transport's wire efficiency is its batch throughput divided by the lower of
its wire's echo ceiling and the engine alone.

Each transport's server is started by its descriptor's local starter
(``transports/<name>/descriptor.py``, read by ``benchmark_of``; a broker it
needs for the whole run, ``benchmark_of(name).broker``, is started once by ``bench/suite.py``):
a fresh server per transport, durability and repeat, journal in a temporary
directory, stopped by PID when its workloads are done. The workloads sharing
a durability run on one server in file order (single → batch in the
default suite, so the large book batch mode leaves behind never weighs on the
latency mode). Repeats are interleaved over the transports, so a noisy
minute on this shared machine hits every transport alike; every point
reports min/median/max, and a point whose counts differ from the server's is
marked unreconciled and never named a winner.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bench.auth_brokers import auth_server
from bench.cost import cost_of
from bench.cost import summarize as summarize_cost
from bench.e2e import Benchmark, BenchServer, run_harness
from bench.e2e import benchmark_of as e2e_benchmark_of
from bench.workload_files import ORDER_PATH_MODES, Workload
from transports.registry import TRANSPORTS

INPROC = "inproc"
# The default suite's order-path workloads (bench/workloads/*.yaml), the names the report's tables know.
MODES = (
    *("single", "rate", "batch", "single_fsync_off", "batch_fsync_off"),
    *("single_auth", "batch_auth", "single_auth_hmac", "batch_auth_hmac"),
)
NO_WIRE_TO_AUTHENTICATE = "no wire: the harness and the gateway share one process, there is no one to authenticate"
# From the descriptors: why a transport has no journal fsync to turn off, and the wire its echo ceiling rides on.
NO_FSYNC_TO_TURN_OFF = {n: d.no_fsync_to_turn_off for n, d in TRANSPORTS.items() if d.no_fsync_to_turn_off}
WIRE_OF = {n: d.echo_wire for n, d in TRANSPORTS.items() if d.echo_wire}


def benchmark_of(transport: str) -> Benchmark:
    """The transport's benchmark description (how to start its server, its broker), from its descriptor."""
    return e2e_benchmark_of(transport)


@contextlib.contextmanager
def _no_server() -> Iterator[None]:
    yield None


def _run_point(report: dict[str, Any], mode: str, repeat: int) -> dict[str, Any]:
    """What the comparison keeps of one harness report."""
    return {
        "mode": mode,
        "repeat": repeat,
        "throughput_per_s": report["throughput_per_s"],
        "latency_us": report["latency_us"],
        "latency_histogram": report.get("latency_histogram"),
        "orders_sent": report["orders_sent"],
        "accepted": report["accepted"],
        "trades": report["trades"],
        "errors": report["errors"],
        "error_messages": report.get("error_messages", [])[:3],
        "reconciled": report["reconciliation"]["ok"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cost": cost_of(report),
    }


def cost_summary(points: dict[str, list[dict[str, Any]]], modes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per transport and mode: min/median/max of each cost figure over the reconciled-or-not points that ran (marked)."""
    out: dict[str, dict[str, Any]] = {}
    for name, runs in points.items():
        for mode in modes:
            ok = [p for p in runs if p["mode"] == mode and "cost" in p]
            if not ok:
                continue
            spread = summarize_cost([{**p["cost"], "reconciled": p["reconciled"]} for p in ok])
            first = ok[0]["cost"]
            same = "one process: the harness and the gateway, counted once as both" if first.get("same_process") else None
            notes = [n for n in (same, first.get("broker"), first.get("server_note")) if n]
            out.setdefault(name, {})[mode] = {**spread, "note": "; ".join(str(n) for n in notes)}
    return out


def _order_path(workloads: Sequence[Workload]) -> list[tuple[tuple[str, ...], list[Workload]]]:
    """The closed and fixed workloads grouped by server arguments (durability), in file order: one server per group."""
    groups: dict[tuple[str, ...], list[Workload]] = {}
    for workload in workloads:
        if workload.mode in ORDER_PATH_MODES:
            groups.setdefault(workload.server_args(), []).append(workload)
    return list(groups.items())


def run_transport(transport: str, workloads: Sequence[Workload], repeat: int, log: Any) -> list[dict[str, Any]]:
    """Repeat ``repeat`` of every order-path workload naming ``transport``: one fresh server per durability."""
    points: list[dict[str, Any]] = []
    for server_args, group in _order_path(workloads):
        wanted = [w for w in group if transport in w.targets() and repeat < w.repeats]
        skipped = NO_FSYNC_TO_TURN_OFF.get(transport) if "--fsync" in server_args else None
        if "--auth" in server_args and transport == INPROC:
            skipped = NO_WIRE_TO_AUTHENTICATE
        if skipped is not None:
            points += [{"mode": w.name, "repeat": repeat, "skipped": skipped} for w in wanted]
        elif wanted:
            points += _run_server_modes(transport, wanted, repeat, log, server_args)
    return points


def _run_server_modes(
    transport: str, workloads: Sequence[Workload], repeat: int, log: Any, server_args: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Start the transport's server once, run ``workloads`` on it, stop it; one point per workload (or an error)."""
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"dex-bench-{transport}-") as tmp:
        workdir = Path(tmp)
        try:
            server_cm: AbstractContextManager[BenchServer | None] = (
                _no_server()
                if transport == INPROC
                # NATS and RabbitMQ with --auth keys: a broker with the keyring's users (bench/auth_brokers.py)
                else auth_server(transport, workdir, server_args) or benchmark_of(transport).server(workdir, server_args)
            )
            with server_cm as server:
                url = None if server is None else server.url
                for workload in workloads:
                    points.append(_run_workload(transport, url, workload, repeat, workdir))
                    log(transport, points[-1])
        except Exception as exc:  # a server or broker that cannot start is a result to report, not a crash
            reason = f"{type(exc).__name__}: {exc}"
            for workload in workloads:
                if not any(p["mode"] == workload.name for p in points):
                    points.append({"mode": workload.name, "repeat": repeat, "error": reason})
                    log(transport, points[-1])
    return points


# A closed-loop point lasts at least this many of one round of its traders' batches at the transport's target rate.
BATCH_ROUNDS_PER_POINT = 5


def long_enough(transport: str, workload: Workload) -> Workload:
    """``workload``, its points lengthened where the transport answers a round of batches slower than a point lasts.

    A closed-loop point counts the batches answered inside it: on a wire slower than the point (FIX: one message
    per order, a batch of 1,000 takes seconds), a short point would count none.
    """
    bench = TRANSPORTS[transport].bench if transport in TRANSPORTS else None
    if workload.mode != "closed" or bench is None:
        return workload
    round_s = workload.traders * workload.procs * workload.batch / bench.target_batch_per_s
    return workload.scaled(duration_s=max(workload.duration_s, round(BATCH_ROUNDS_PER_POINT * round_s, 1)))


def _run_workload(transport: str, url: str | None, workload: Workload, repeat: int, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    workload = long_enough(transport, workload)
    try:
        report = run_harness(
            transport,
            url,
            workload.harness_args(),
            workdir / f"{workload.name}.json",
            timeout=(workload.duration_s + workload.warmup_s) * 4 + 90,
        )
        point = _run_point(report, workload.name, repeat)
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        point = {"mode": workload.name, "repeat": repeat, "error": str(exc)[-2000:]}
    point["wall_s"] = round(time.monotonic() - started, 2)
    point["duration_s"] = workload.duration_s  # measured seconds (``long_enough``: longer than the file's on a slow wire)
    return point


def ceiling_workload(workloads: Sequence[Workload]) -> Workload | None:
    """The workload whose batch size and point length the wire ceilings use: the largest closed batch."""
    closed = [w for w in workloads if w.mode == "closed"]
    return max(closed, key=lambda w: w.batch) if closed else None


def _broker_of_wire(wire: str) -> str:
    """The running broker a wire's echo uses: the one named in the environment by the transport riding that wire."""
    for descriptor in TRANSPORTS.values():
        if descriptor.echo_wire == wire and descriptor.broker is not None:
            return os.environ.get(descriptor.broker.env, "")
    return ""


# Seconds per wire echo point: an echo answers 900 (RabbitMQ) to 25,000 (TCP) round trips a second, so one second
# holds enough samples for a p99, and twelve points per repeat must not stretch the suite past 30 minutes.
CEILING_S = 1.0


def run_ceilings(transports: Sequence[str], workload: Workload, repeat: int) -> list[dict[str, Any]]:
    """Every wire's echo ceiling (``bench/wire_ceiling.py``), in this run, beside the transports.

    A brokered wire's echo uses the broker named in its transport's environment variable (``bench/suite.py``
    starts one for the order path).
    """
    from bench.wire_ceiling import WIRES, measure

    wanted = {WIRE_OF[n] for n in transports if n in WIRE_OF} | {"tcp"}
    points = []
    for wire in (w for w in WIRES if w in wanted):
        try:
            seconds = min(workload.duration_s, CEILING_S)
            point = measure(wire, workload.batch, seconds, workload.warmup_s, _broker_of_wire(wire))
        except Exception as exc:  # a wire that cannot be measured is a result to report
            point = {"wire": wire, "error": f"{type(exc).__name__}: {exc}"[-500:]}
        point["repeat"] = repeat
        points.append(point)
        if "error" in point:
            print(f"  wire {wire:<5} FAILED: {point['error'][:200]}", flush=True)
        else:
            print(
                f"  wire {wire:<5} echo {point['batch']['orders_per_s']:>13,.0f} orders/s in batches; "
                f"single p50 {point['single']['latency_us']['p50']:,} µs p99 {point['single']['latency_us']['p99']:,} µs",
                flush=True,
            )
    return points


def engine_alone(seed: int, batch: int) -> dict[str, Any]:
    """The engine alone on the harness's seeded workload (4 traders' streams interleaved by batch), commands/s."""
    from engine import AddInstrument, Engine
    from transports.core.workload import OrderFlow
    from transports.instruments import DEFAULT_INSTRUMENTS

    flows = [OrderFlow(seed, f"trader-0-{i}", DEFAULT_INSTRUMENTS) for i in range(4)]
    commands = [c for _ in range(max(1, 100_000 // (4 * batch))) for f in flows for c in f.batch(batch)]
    rates = []
    for _ in range(3):
        engine = Engine()
        for instrument in DEFAULT_INSTRUMENTS:
            engine.handle(AddInstrument(instrument))
        handle = engine.handle
        started = time.perf_counter()
        for command in commands:
            handle(command)
        rates.append(len(commands) / (time.perf_counter() - started))
    return {"commands": len(commands), "per_s": _spread(rates)}


def print_point(transport: str, point: dict[str, Any]) -> None:
    if "skipped" in point:
        print(f"  {transport:<7} {point['mode']:<16} skipped: {point['skipped']}", flush=True)
        return
    if "error" in point:
        print(f"  {transport:<7} {point['mode']:<16} FAILED: {point['error'][:200]}", flush=True)
        return
    lat = point["latency_us"]
    print(
        f"  {transport:<7} {point['mode']:<16} {point['throughput_per_s']:>11,.0f} orders/s  p50 {lat['p50']:>9,} µs  "
        f"p99 {lat['p99']:>9,} µs  errors {point['errors']:,}  reconciled {'yes' if point['reconciled'] else 'NO'}",
        flush=True,
    )


def run_order_path(workloads: Sequence[Workload], failed_brokers: dict[str, str]) -> dict[str, Any] | None:
    """Every closed and fixed workload over its transports, the wire ceilings and the engine alone; None if there are none.

    Brokers are already running and named in their environment variables (``bench/suite.py``);
    ``failed_brokers`` names the transports whose broker did not start, whose points are failures to report.
    """
    order = [w for w in workloads if w.mode in ORDER_PATH_MODES]
    if not order:
        return None
    transports = tuple(dict.fromkeys(t for w in order for t in w.targets()))
    ceiling = ceiling_workload(order)
    engine = engine_alone(order[0].seed, ceiling.batch if ceiling else 1000)
    print(f"  engine alone on the same workload: {engine['per_s']['median']:,.0f} commands/s", flush=True)
    points: dict[str, list[dict[str, Any]]] = {name: [] for name in transports}
    ceilings: list[dict[str, Any]] = []
    for repeat in range(max(w.repeats for w in order)):
        print(f"order path: repeat {repeat + 1}", flush=True)
        for name in transports:
            if name in failed_brokers:
                wanted = [w for w in order if name in w.targets() and repeat < w.repeats]
                points[name].extend({"mode": w.name, "repeat": repeat, "error": failed_brokers[name]} for w in wanted)
                continue
            points[name].extend(run_transport(name, order, repeat, print_point))
        if ceiling is not None and repeat < ceiling.repeats:
            ceilings.extend(run_ceilings(transports, ceiling, repeat))
    modes = [w.name for w in order]
    # a transport is summarized only in the modes whose workload names it: one left out is absent, not a failure
    summary = {name: summarize(runs, [w.name for w in order if name in w.targets()]) for name, runs in points.items()}
    wires = summarize_ceilings(ceilings)
    return {
        "transports": list(transports),
        "modes": modes,
        "order_workloads": {
            w.name: {"mode": w.mode, "harness_args": w.harness_args(), "server_args": list(w.server_args())} for w in order
        },
        "summary": summary,
        "efficiency": efficiency(summary),
        "wire_ceilings": wires,
        "engine_alone": engine,
        "wire_efficiency": wire_efficiency(summary, wires, engine),
        "runs": points,
        "ceiling_runs": ceilings,
        "cost_summary": cost_summary(points, modes),
    }


# ---------------------------------------------------------------- summary
def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": float(statistics.median(values)), "max": max(values)}


def summarize(points: list[dict[str, Any]], modes: Sequence[str] = MODES) -> dict[str, Any]:
    """Per mode: min/median/max of throughput and of each latency percentile over the repeats."""
    out: dict[str, Any] = {}
    for mode in modes:
        ok = [p for p in points if p["mode"] == mode and "error" not in p and "skipped" not in p]
        errors = [p["error"] for p in points if p["mode"] == mode and "error" in p]
        skipped = next((p["skipped"] for p in points if p["mode"] == mode and "skipped" in p), None)
        out[mode] = {
            "runs": len(ok),
            "failed_runs": len(errors),
            "failures": errors[:3],
            "throughput_per_s": _spread([float(p["throughput_per_s"]) for p in ok]),
            "latency_us": {q: _spread([float(p["latency_us"][q]) for p in ok]) for q in ("p50", "p90", "p99", "p999", "max")},
            "order_errors": sum(int(p["errors"]) for p in ok),
            "all_reconciled": bool(ok) and all(p["reconciled"] for p in ok),
            **({"skipped": skipped} if skipped else {}),
        }
    return out


def summarize_ceilings(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per wire: min/median/max of its echo's batch orders/s and single-request p50/p99."""
    out: dict[str, Any] = {}
    for wire in dict.fromkeys(p["wire"] for p in points):
        ok = [p for p in points if p["wire"] == wire and "error" not in p]
        out[wire] = {
            "runs": len(ok),
            "failures": [p["error"] for p in points if p["wire"] == wire and "error" in p][:3],
            "batch_orders_per_s": _spread([float(p["batch"]["orders_per_s"]) for p in ok]),
            "single_p50_us": _spread([float(p["single"]["latency_us"]["p50"]) for p in ok]),
            "single_p99_us": _spread([float(p["single"]["latency_us"]["p99"]) for p in ok]),
        }
    return out


def wire_efficiency(summary: dict[str, Any], ceilings: dict[str, Any], engine: dict[str, Any]) -> dict[str, float | None]:
    """Median batch throughput ÷ the lower of the transport's wire echo ceiling and the engine alone."""
    engine_rate = (engine.get("per_s") or {}).get("median")
    result: dict[str, float | None] = {}
    for name, modes in summary.items():
        median = (modes.get("batch", {}).get("throughput_per_s") or {}).get("median")
        wire = (ceilings.get(WIRE_OF.get(name, ""), {}).get("batch_orders_per_s") or {}).get("median")
        bounds = [b for b in (wire, engine_rate) if b]
        result[name] = round(median / min(bounds), 4) if median is not None and bounds else None
    return result


def efficiency(summary: dict[str, Any]) -> dict[str, float | None]:
    """Median batch throughput of each transport ÷ the in-process median from the same run."""
    ceiling = (summary.get(INPROC, {}).get("batch", {}).get("throughput_per_s") or {}).get("median")
    result: dict[str, float | None] = {}
    for name, modes in summary.items():
        median = (modes.get("batch", {}).get("throughput_per_s") or {}).get("median")
        result[name] = round(median / ceiling, 4) if ceiling and median is not None else None
    return result
