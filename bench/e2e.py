"""What every end-to-end transport benchmark shares: run the ``dex-trader`` harness, take medians, summarize.

A transport's ``Benchmark`` (its transport name, how to start its server as
a subprocess, its targets) comes from its descriptor (``benchmark_of``), and
``main`` which runs both modes ``--repeat`` times, each on a fresh server,
through ``run_harness``; ``summarize`` turns the runs into the report's
``summary`` with the transport's targets (``bench/http_bench.py``,
``bench/grpc_bench.py`` and ``bench/zmq_bench.py`` are each little more than
their ``Benchmark``):

* ``batch``: batches closed loop → commands/s matched end to end;
* ``single``: one command per submit, open loop at a fixed rate → p50/p99
  latency from the intended send time (coordinated omission corrected).

The figures are what this machine does with server and harness sharing its
cores; nothing is extrapolated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.engine_bench import machine

ROOT = Path(__file__).resolve().parents[1]


def run_harness(transport: str, server_url: str | None, args: Sequence[str], out: Path, timeout: float) -> dict[str, Any]:
    """One ``dex-trader`` run in its own process; its JSON report (``server_url`` None: the in-process gateway)."""
    server = ["--server", server_url] if server_url is not None else []
    command = [sys.executable, "-m", "traders.harness", "--transport", transport, *server, "--quiet", "--json", str(out), *args]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"dex-trader did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"dex-trader exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    report["harness_stderr"] = done.stderr.strip()
    return report


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def summarize(
    batch_runs: list[dict[str, Any]], single_runs: list[dict[str, Any]], *, target_batch_per_s: float, target_single_p99_us: float
) -> dict[str, Any]:
    throughput = [float(r["throughput_per_s"]) for r in batch_runs]
    batch_p99 = [float(r["latency_us"]["p99"]) for r in batch_runs]
    p50 = [float(r["latency_us"]["p50"]) for r in single_runs]
    p99 = [float(r["latency_us"]["p99"]) for r in single_runs]
    achieved = [float(r["throughput_per_s"]) for r in single_runs]
    service_p99 = [float(r["service_latency_us"]["p99"]) for r in single_runs]
    fsync_p50 = [float(r["server_stats"].get("fsync_us", {}).get("p50", 0)) for r in single_runs]
    gateway_p99 = [float(r["server_stats"].get("latency_us", {}).get("p99", 0)) for r in single_runs]
    reconciled = all(r["reconciliation"]["ok"] for r in batch_runs + single_runs)
    median_throughput = median(throughput)
    median_p99 = median(p99)
    return {
        "batch": {
            "median_throughput_per_s": round(median_throughput, 1),
            "throughput_per_s": throughput,
            "median_request_p99_us": median(batch_p99),
            "target_per_s": target_batch_per_s,
            "target_met": median_throughput >= target_batch_per_s,
        },
        "single": {
            "median_p50_us": median(p50),
            "median_p99_us": median_p99,
            "p50_us": p50,
            "p99_us": p99,
            "median_achieved_per_s": round(median(achieved), 1),
            "median_service_p99_us": median(service_p99),  # from the actual send, not the intended start
            "median_server_gateway_p99_us": median(gateway_p99),  # inside the server: queue, engine, journal, fsync
            "median_server_fsync_p50_us": median(fsync_p50),  # one fsync of the journal; every reply waits for one
            "target_p99_us": target_single_p99_us,
            "target_met": bool(single_runs) and median_p99 <= target_single_p99_us,
        },
        "all_runs_reconciled": reconciled,
    }


# ------------------------------------------------------------------ driver
class BenchServer(Protocol):
    """A server started for one run (a subprocess stopped by PID when the run ends)."""

    @property
    def url(self) -> str: ...

    @property
    def pid(self) -> int: ...

    def log_tail(self, lines: int = 20) -> str: ...


ServerFactory = Callable[[Path, tuple[str, ...]], AbstractContextManager[BenchServer]]  # (workdir, extra server args)


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str  # the report's "benchmark"
    transport: str  # dex-trader --transport
    server: ServerFactory
    target_batch_per_s: float
    target_single_p99_us: float
    default_out: Path
    notes: tuple[str, ...] = ()
    # What every run of this transport needs running first (a broker), started once for all of them.
    broker: Callable[[], AbstractContextManager[object]] | None = None


def benchmark_of(transport: str) -> Benchmark:
    """The transport's benchmark, from its descriptor (``transports/<name>/descriptor.py``): server, broker, targets."""
    from transports.registry import TRANSPORTS

    descriptor = TRANSPORTS.get(transport)
    if descriptor is None:
        raise LookupError(f"transport {transport!r} is not registered (transports/registry.py)")
    defaults, local, broker = descriptor.bench, descriptor.local_server, descriptor.broker
    if defaults is None or local is None:
        raise LookupError(f"transport {transport!r} has no bench defaults or local server in its descriptor")
    return Benchmark(
        name=transport,
        transport=transport,
        server=local,
        target_batch_per_s=defaults.target_batch_per_s,
        target_single_p99_us=defaults.target_single_p99_us,
        default_out=Path(f"reports/bench-{transport}.json"),
        notes=defaults.notes,
        broker=broker.start_local if broker is not None and defaults.shared_broker else None,
    )


def parse_args(bench: Benchmark, argv: Sequence[str] | None, description: str | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m bench.{bench.name}_bench", description=description)
    p.add_argument("--out", type=Path, default=bench.default_out)
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run (default: 15)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run (default: 2)")
    p.add_argument("--repeat", type=int, default=3, help="runs per mode; medians are reported (default: 3)")
    p.add_argument("--batch", type=int, default=1000, help="commands per submit in batch mode (default: 1000)")
    p.add_argument("--batch-workers", type=int, default=4, help="traders per harness process in batch mode (default: 4)")
    p.add_argument("--batch-procs", type=int, default=1, help="harness processes in batch mode (default: 1)")
    p.add_argument("--rate", type=float, default=1000.0, help="commands/s in single mode (default: 1000)")
    p.add_argument("--single-workers", type=int, default=16, help="traders in single mode; bounds concurrency, not load (default: 16)")
    p.add_argument("--modes", default="batch,single", help="comma-separated subset of: batch, single")
    p.add_argument("--server-arg", action="append", default=[], help="extra server argument (repeatable)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quick", action="store_true", help="smoke test: 2 s runs, one repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.repeat = min(args.seconds, 2.0), min(args.warmup, 0.5), 1
    unknown = {m.strip() for m in args.modes.split(",") if m.strip()} - {"batch", "single"}
    if unknown:
        p.error(f"unknown mode(s) {', '.join(sorted(unknown))}")
    return args


def one_run(bench: Benchmark, mode: str, harness_args: Sequence[str], seconds: float, server_args: Sequence[str]) -> dict[str, Any]:
    """A fresh server (journal in a temporary directory), one harness run against it, the server stopped."""
    with (
        tempfile.TemporaryDirectory(prefix=f"dex-bench-{bench.name}-{mode}-") as tmp,
        bench.server(Path(tmp), tuple(server_args)) as server,
    ):
        load_before = [round(x, 2) for x in os.getloadavg()]
        report = run_harness(bench.transport, server.url, harness_args, Path(tmp) / "harness.json", timeout=seconds * 4 + 60)
        report["server_pid"] = server.pid
        report["server_log_tail"] = server.log_tail(5)
        report["load_average_before"] = load_before  # other work on this shared machine competes with server and harness
    return report


def main(bench: Benchmark, argv: Sequence[str] | None = None, description: str | None = None) -> int:
    """Run both modes ``--repeat`` times (interleaved, so noise hits both alike) and write the report."""
    args = parse_args(bench, argv, description)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    common = ["--duration", f"{args.seconds:g}s", "--warmup", f"{args.warmup:g}s", "--seed", str(args.seed)]
    plans = {
        "batch": [*common, "--batch", str(args.batch), "--workers", str(args.batch_workers), "--procs", str(args.batch_procs)],
        "single": [*common, "--batch", "1", "--rate", f"{args.rate:g}", "--workers", str(args.single_workers)],
    }
    runs: dict[str, list[dict[str, Any]]] = {"batch": [], "single": []}
    started = time.time()
    host = machine()  # before the runs, so its load average is the machine's, not ours
    for i in range(args.repeat):
        for mode in modes:
            report = one_run(bench, mode, plans[mode], args.seconds + args.warmup, args.server_arg)
            runs[mode].append(report)
            lat = report["latency_us"]
            print(
                f"run {i + 1}/{args.repeat} {mode:<6}  {report['throughput_per_s']:>12,.0f} commands/s  "
                f"p50 {lat['p50']:>7,} µs  p99 {lat['p99']:>7,} µs  errors {report['errors']:,}  "
                f"reconciled {'yes' if report['reconciliation']['ok'] else 'NO'}",
                flush=True,
            )
    summary = summarize(
        runs["batch"], runs["single"], target_batch_per_s=bench.target_batch_per_s, target_single_p99_us=bench.target_single_p99_us
    )
    report = {
        "benchmark": bench.name,
        "started_at_unix": round(started, 3),
        "machine": host,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "server_args": args.server_arg,
            "fsync": "server default",
            "harness_args": {mode: plans[mode] for mode in modes},
        },
        "summary": summary,
        "runs": runs,
        "notes": [
            f"Server ({bench.name}, one process) and harness share this machine's cores; nothing is extrapolated.",
            "Latency is per submit, from the intended start time in open loop (coordinated omission corrected).",
            "Throughput counts commands answered per second of the measured window (warm-up excluded).",
            *bench.notes,
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    b, s = summary["batch"], summary["single"]
    print()
    if runs["batch"]:
        print(
            f"batch  ({args.batch}/submit, closed loop): median {b['median_throughput_per_s']:,.0f} commands/s  "
            f"(target >= {bench.target_batch_per_s:,.0f}: {'met' if b['target_met'] else 'NOT met'})"
        )
    if runs["single"]:
        print(
            f"single (1/submit at {args.rate:,.0f}/s): median p50 {s['median_p50_us']:,.0f} µs, p99 {s['median_p99_us']:,.0f} µs  "
            f"(target p99 <= {bench.target_single_p99_us:,.0f} µs: {'met' if s['target_met'] else 'NOT met'})"
        )
    print(f"all runs reconciled with the server: {'yes' if summary['all_runs_reconciled'] else 'NO'}")
    print(f"wrote {args.out}")
    return 0
