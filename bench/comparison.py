"""``dex-bench`` (``make bench``): every registered transport against the same engine, one run, one report.

For the in-process gateway (the ceiling: the harness and the engine in one
process, no wire) and every transport in ``transports.registry``, with the
same seed and the same ``dex-trader`` harness, three modes:

* ``single``: one trader, one order at a time, closed loop: the round-trip
  latency of one order on an idle server.
* ``rate``: 16 traders, one order per submit, open loop at ``--rate`` orders/s
  in total: latency under a fixed load, measured from each order's intended
  send time (coordinated omission corrected: a stall delays the orders
  queued behind it and they are charged for it).
* ``batch``: 4 traders, ``--batch`` (1,000) orders per submit, closed loop:
  throughput, every order's reply matched.
* ``single_fsync_off`` and ``batch_fsync_off``: the same two on a second fresh
  server started with ``--fsync off``, so the wire's cost is seen apart from
  the disk's (a transport whose acknowledgement waits for something other
  than our journal, the DHT's Raft majority, has no such row).

Beside them, in the same run: each library's trivial echo server with the
same payloads (``bench/wire_ceiling.py``: raw TCP, ZeroMQ, gRPC, FastAPI,
NATS, RabbitMQ), and the engine alone on the same seeded workload. A
transport's wire efficiency is its batch throughput divided by the lower of
its wire's echo ceiling and the engine alone.

Each transport's server is started by the transport's own benchmark module
(``bench/<name>_bench.py``, its ``BENCHMARK.server``; a broker it needs,
``BENCHMARK.broker``, once for the whole run): a fresh server per transport
and repeat, journal in a temporary directory,
default durability (every reply waits for its journal fsync), stopped by PID
when its modes are done. The modes run single → rate → batch on it, so the
large book batch mode leaves behind never weighs on the latency modes.
Repeats are interleaved over the transports, so a noisy minute on this shared
machine hits every transport alike; every point reports min/median/max.

Efficiency is a transport's median batch throughput divided by the in-process
median batch throughput of the same run. A transport registered later joins
by itself once it has a ``bench/<name>_bench.py`` with a ``BENCHMARK``; one
without is reported as such (and ``--quick``, which ``make test`` runs, fails).

Writes ``transport-comparison.json``, ``.md`` and ``.html`` (charts inline)
and two PNG charts into ``--out-dir`` (default ``reports/``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.e2e import ROOT, Benchmark, BenchServer, run_harness
from bench.engine_bench import machine
from bench.versions import component_versions
from transports.registry import TRANSPORTS

INPROC = "inproc"
DURABLE_MODES = ("single", "rate", "batch")
FSYNC_OFF_MODES = ("single_fsync_off", "batch_fsync_off")
MODES = (*DURABLE_MODES, *FSYNC_OFF_MODES)
FSYNC_OFF = ("--fsync", "off")
NO_FSYNC_TO_TURN_OFF = {"dht": "its acknowledgement waits for a Raft majority, not a journal fsync: nothing to turn off"}
# The wire each transport rides on, for its echo ceiling (the DHT's clients speak HTTP to a node).
WIRE_OF = {"http": "http", "grpc": "grpc", "zmq": "zmq", "nats": "nats", "amqp": "amqp", "dht": "http"}


@dataclass(frozen=True, slots=True)
class Plan:
    transports: tuple[str, ...]
    duration_s: float
    warmup_s: float
    repeat: int
    rate: float
    batch: int
    seed: int
    quick: bool

    def harness_args(self, mode: str) -> list[str]:
        common = ["--duration", f"{self.duration_s:g}s", "--warmup", f"{self.warmup_s:g}s", "--seed", str(self.seed)]
        mode = mode.removesuffix("_fsync_off")
        if mode == "single":
            return [*common, "--batch", "1", "--workers", "1", "--rate", "0"]
        if mode == "rate":
            return [*common, "--batch", "1", "--workers", "16", "--rate", f"{self.rate:g}"]
        return [*common, "--batch", str(self.batch), "--workers", "4", "--rate", "0"]

    def parameters(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "repeat": self.repeat,
            "seed": self.seed,
            "rate": self.rate,
            "batch": self.batch,
            "modes": {m: self.harness_args(m) for m in MODES},
            "quick": self.quick,
        }


def benchmark_of(transport: str) -> Benchmark:
    """The transport's own benchmark description (how to start its server), from ``bench/<name>_bench.py``."""
    try:
        module = importlib.import_module(f"bench.{transport}_bench")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{transport}_bench":
            raise
        raise LookupError(f"transport {transport!r} has no bench/{transport}_bench.py") from exc
    bench = getattr(module, "BENCHMARK", None)
    if not isinstance(bench, Benchmark):
        raise LookupError(f"bench/{transport}_bench.py defines no BENCHMARK")
    return bench


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
    }


def run_transport(transport: str, plan: Plan, repeat: int, log: Any) -> list[dict[str, Any]]:
    """Its modes on a fresh server with default durability, then the ``--fsync off`` modes on another one."""
    points = _run_server_modes(transport, plan, repeat, log, DURABLE_MODES, ())
    skipped = NO_FSYNC_TO_TURN_OFF.get(transport)
    if skipped is None:
        return points + _run_server_modes(transport, plan, repeat, log, FSYNC_OFF_MODES, FSYNC_OFF)
    return points + [{"mode": mode, "repeat": repeat, "skipped": skipped} for mode in FSYNC_OFF_MODES]


def _run_server_modes(
    transport: str, plan: Plan, repeat: int, log: Any, modes: Sequence[str], server_args: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Start the transport's server once, run ``modes`` on it, stop it; one point per mode (or an error)."""
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"dex-bench-{transport}-") as tmp:
        workdir = Path(tmp)
        try:
            server_cm: AbstractContextManager[BenchServer | None] = (
                _no_server() if transport == INPROC else benchmark_of(transport).server(workdir, server_args)
            )
            with server_cm as server:
                url = None if server is None else server.url
                for mode in modes:
                    started = time.monotonic()
                    try:
                        report = run_harness(
                            transport,
                            url,
                            plan.harness_args(mode),
                            workdir / f"{mode}.json",
                            timeout=(plan.duration_s + plan.warmup_s) * 4 + 90,
                        )
                        point = _run_point(report, mode, repeat)
                    except (RuntimeError, OSError, KeyError, ValueError) as exc:
                        point = {"mode": mode, "repeat": repeat, "error": str(exc)[-2000:]}
                    point["wall_s"] = round(time.monotonic() - started, 2)
                    points.append(point)
                    log(transport, point)
        except Exception as exc:  # a server or broker that cannot start is a result to report, not a crash
            reason = f"{type(exc).__name__}: {exc}"
            for mode in modes:
                if not any(p["mode"] == mode for p in points):
                    point = {"mode": mode, "repeat": repeat, "error": reason}
                    points.append(point)
                    log(transport, point)
    return points


def run_ceilings(plan: Plan, repeat: int) -> list[dict[str, Any]]:
    """Every wire's echo ceiling (``bench/wire_ceiling.py``), in this run, beside the transports."""
    from bench.wire_ceiling import WIRES, measure

    wanted = {WIRE_OF[n] for n in plan.transports if n in WIRE_OF} | {"tcp"}
    points = []
    for wire in (w for w in WIRES if w in wanted):
        broker = os.environ.get("DEX_AMQP_URL", "") if wire == "amqp" else _nats_url() if wire == "nats" else ""
        try:
            point = measure(wire, plan.batch, plan.duration_s, plan.warmup_s, broker)
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


_NATS_FOR_CEILINGS: list[str] = []


def _nats_url() -> str:
    return _NATS_FOR_CEILINGS[0] if _NATS_FOR_CEILINGS else ""


def engine_alone(plan: Plan, seconds: float = 2.0) -> dict[str, Any]:
    """The engine alone on the harness's seeded workload (4 traders' streams interleaved by batch), commands/s."""
    from engine import AddInstrument, Engine
    from traders.workload import OrderFlow
    from transports.instruments import DEFAULT_INSTRUMENTS

    flows = [OrderFlow(plan.seed, f"trader-0-{i}", DEFAULT_INSTRUMENTS) for i in range(4)]
    commands = [c for _ in range(max(1, 100_000 // (4 * plan.batch))) for f in flows for c in f.batch(plan.batch)]
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


# ---------------------------------------------------------------- summary
def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": float(statistics.median(values)), "max": max(values)}


def summarize(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode: min/median/max of throughput and of each latency percentile over the repeats."""
    out: dict[str, Any] = {}
    for mode in MODES:
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
        median = (modes["batch"]["throughput_per_s"] or {}).get("median")
        wire = (ceilings.get(WIRE_OF.get(name, ""), {}).get("batch_orders_per_s") or {}).get("median")
        bounds = [b for b in (wire, engine_rate) if b]
        result[name] = round(median / min(bounds), 4) if median is not None and bounds else None
    return result


def efficiency(summary: dict[str, Any]) -> dict[str, float | None]:
    """Median batch throughput of each transport ÷ the in-process median from the same run."""
    ceiling = (summary.get(INPROC, {}).get("batch", {}).get("throughput_per_s") or {}).get("median")
    result: dict[str, float | None] = {}
    for name, modes in summary.items():
        median = (modes["batch"]["throughput_per_s"] or {}).get("median")
        result[name] = round(median / ceiling, 4) if ceiling and median is not None else None
    return result


# ------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dex-bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--transports", default="", help=f"comma list (default: all registered: {', '.join(TRANSPORTS)})")
    # 3 s points keep the whole default run (7 targets x 5 modes x 3 repeats, two fresh servers per target and repeat, and
    # the wire ceilings) under about 25 minutes on the 2-core machine.
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per point (default 3)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each point (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="repeats of every point; min/median/max reported (default 3)")
    p.add_argument("--rate", type=float, default=1000.0, help="orders/s in the open-loop mode (default 1000)")
    p.add_argument("--batch", type=int, default=1000, help="orders per submit in batch mode (default 1000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quick", action="store_true", help="smoke run of every transport in under 2 minutes (1 s points, one repeat)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "reports", help="where the report files go (default reports/)")
    args = p.parse_args(argv)
    names = tuple(n.strip() for n in args.transports.split(",") if n.strip()) or tuple(TRANSPORTS)
    unknown = [n for n in names if n not in TRANSPORTS]
    if unknown:
        p.error(f"unknown transport(s) {', '.join(unknown)}; registered: {', '.join(TRANSPORTS)}")
    if INPROC not in names:
        names = (INPROC, *names)  # the ceiling every efficiency is measured against
    if args.quick:
        args.duration, args.warmup, args.repeat = min(args.duration, 1.0), min(args.warmup, 0.3), 1
    if args.duration <= 0 or args.repeat < 1 or args.rate <= 0 or args.batch < 1:
        p.error("--duration, --rate and --batch must be positive; --repeat at least 1")
    args.plan = Plan(names, args.duration, args.warmup, args.repeat, args.rate, args.batch, args.seed, args.quick)
    return args


def _print_point(transport: str, point: dict[str, Any]) -> None:
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


def _start_brokers(stack: contextlib.ExitStack, plan: Plan) -> dict[str, str]:
    """Start, once for the whole run, the broker each transport's runs need; the transports whose broker failed."""
    failed: dict[str, str] = {}
    for name in plan.transports:
        if name == INPROC:
            continue
        try:
            broker = benchmark_of(name).broker
            if broker is not None:
                print(f"  {name:<7} starting its broker", flush=True)
                stack.enter_context(broker())
        except Exception as exc:  # a broker that cannot start fails that transport's points, not the report
            failed[name] = f"broker: {type(exc).__name__}: {exc}"
    return failed


def run(plan: Plan) -> dict[str, Any]:
    started = time.time()
    host = machine()
    points: dict[str, list[dict[str, Any]]] = {name: [] for name in plan.transports}
    ceilings: list[dict[str, Any]] = []
    engine = engine_alone(plan)
    print(f"  engine alone on the same workload: {engine['per_s']['median']:,.0f} commands/s", flush=True)
    with contextlib.ExitStack() as brokers:
        no_broker = _start_brokers(brokers, plan)
        if "nats" in plan.transports:
            from transports.nats.local import NatsServerProcess

            workdir = brokers.enter_context(tempfile.TemporaryDirectory(prefix="dex-bench-ceiling-nats-"))
            _NATS_FOR_CEILINGS[:] = [brokers.enter_context(NatsServerProcess(Path(workdir))).url]
        for repeat in range(plan.repeat):
            print(f"repeat {repeat + 1}/{plan.repeat}", flush=True)
            for name in plan.transports:
                if name in no_broker:
                    failed = [{"mode": mode, "repeat": repeat, "error": no_broker[name]} for mode in MODES]
                    points[name].extend(failed)
                    continue
                points[name].extend(run_transport(name, plan, repeat, _print_point))
            ceilings.extend(run_ceilings(plan, repeat))
    summary = {name: summarize(runs) for name, runs in points.items()}
    wires = summarize_ceilings(ceilings)
    return {
        "report": "transport-comparison",
        "started_at_unix": round(started, 3),
        "elapsed_s": round(time.time() - started, 1),
        "machine": host,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": component_versions(),
        "parameters": plan.parameters(),
        "transports": list(plan.transports),
        "summary": summary,
        "efficiency": efficiency(summary),
        "wire_ceilings": wires,
        "engine_alone": engine,
        "wire_efficiency": wire_efficiency(summary, wires, engine),
        "runs": points,
        "ceiling_runs": ceilings,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from bench.comparison_report import write_reports

    args = parse_args(argv)
    plan: Plan = args.plan
    print(
        f"dex-bench: {', '.join(plan.transports)}; modes {', '.join(MODES)}; {plan.repeat} repeat(s) of {plan.duration_s:g} s", flush=True
    )
    result = run(plan)
    files = write_reports(result, args.out_dir)
    failed = [
        name
        for name, modes in result["summary"].items()
        if any(m["failed_runs"] or (not m["runs"] and "skipped" not in m) for m in modes.values())
    ]
    print(f"dex-bench: done in {result['elapsed_s']:.0f} s; wrote {', '.join(str(f) for f in files)}", flush=True)
    if failed:
        print(f"dex-bench: points failed for {', '.join(failed)} (see the report)", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
