"""``dex-bench`` (``make bench``): run workload files, write the transport comparison report.

``make bench`` runs the default suite (``bench/workloads/default.yaml``) and
writes ``reports/transport-comparison.{json,md,html}`` plus its charts;
``make bench WORKLOAD=file.yaml`` (``dex-bench --workload file.yaml``) runs
any workload or suite file, a user's own included, into
``reports/workload-<file>.{json,md,html}`` so the published report is only
ever regenerated whole. The file format is in ``docs/benchmarks.md`` and
``bench/workload_files.py``.

Sections, each from the workloads of its mode, in this order:

* order path (``closed``, ``fixed``): ``bench/comparison.py``, with the wire
  ceilings, the engine alone and the cost per order;
* ``rate-search``: ``bench/rate_search.py``;
* ``fanout``: ``bench/fanout.py``;
* ``burst``: ``bench/burst.py``, at 10x the sustainable rate the rate search
  found in the same run (its 5 ms figure), else the workload's ``rate``;
* ``recovery``: ``bench/recovery.py``.

Invariants: the brokers the transports need are started once for the whole
run and stopped by PID at its end (the authenticated workloads' keys are
created before any of them, and RabbitMQ has a second broker for them:
``bench/auth_brokers.py``); a section that fails is reported as a
failure, never dropped; the exit status is 1 when any point failed or did not
reconcile with the server's counters.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.auth_brokers import amqp_auth_broker, issue_keys, keyed, needs_amqp_broker
from bench.comparison import INPROC, benchmark_of, run_order_path
from bench.e2e import ROOT
from bench.engine_bench import machine
from bench.versions import component_versions
from bench.workload_files import BENCH_KEYS, DEFAULT_SUITE, ORDER_PATH_MODES, Workload, WorkloadError, load
from transports.registry import TRANSPORTS

REPORT_STEM = "transport-comparison"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dex-bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--workload", type=Path, default=DEFAULT_SUITE, help="a workload or suite file (default: the default suite)")
    p.add_argument("--transports", default="", help=f"comma list: only these (registered: {', '.join(TRANSPORTS)})")
    p.add_argument("--duration", type=float, help="measured seconds per point, for every workload (default: each file's)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds before each point, for every workload")
    p.add_argument("--repeat", type=int, help="repeats of every point, for every workload (default: each file's)")
    p.add_argument("--quick", action="store_true", help="a smoke run of every workload: 1 s points, one repeat, small counts")
    p.add_argument("--out-dir", type=Path, default=ROOT / "reports", help="where the report files go (default reports/)")
    args = p.parse_args(argv)
    only = tuple(n.strip() for n in args.transports.split(",") if n.strip())
    unknown = [n for n in only if n not in TRANSPORTS]
    if unknown:
        p.error(f"unknown transport(s) {', '.join(unknown)}; registered: {', '.join(TRANSPORTS)}")
    if (args.duration is not None and args.duration <= 0) or (args.repeat is not None and args.repeat < 1):
        p.error("--duration must be positive and --repeat at least 1")
    try:
        workloads = load(args.workload)
    except WorkloadError as exc:
        p.error(str(exc))
    args.workloads = [_adjust(w, args, only) for w in workloads]
    return args


def _adjust(workload: Workload, args: argparse.Namespace, only: tuple[str, ...]) -> Workload:
    if args.quick:
        workload = workload.quick()
    workload = workload.scaled(duration_s=args.duration, warmup_s=args.warmup, repeats=args.repeat)
    if only:
        kept = tuple(t for t in workload.targets() if t in only or (t == INPROC and workload.mode in ORDER_PATH_MODES))
        workload = dataclasses.replace(workload, transports=kept)
    return workload


def _brokers(stack: contextlib.ExitStack, transports: Sequence[str], workloads: Sequence[Workload] = ()) -> dict[str, str]:
    """Start, once for the whole run, the broker each transport needs; the transports whose broker failed, and why.

    The authenticated workloads' keys are created first, and RabbitMQ gets a second broker for them, without guest
    (``bench/auth_brokers.py``); if it cannot start, only those points fail (their server finds no broker).
    """
    failed: dict[str, str] = {}
    if keyed(workloads):
        created = issue_keys(workloads)
        print(f"  auth    {created} new development key(s) in {BENCH_KEYS}", flush=True)
    if needs_amqp_broker(workloads):
        try:
            print("  amqp    starting a broker with the keyring's users (auth workloads)", flush=True)
            stack.enter_context(amqp_auth_broker())
        except Exception as exc:  # the unauthenticated points still run on the shared broker
            print(f"  amqp    its keyed broker FAILED: {type(exc).__name__}: {exc}"[:400], flush=True)
    for name in transports:
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


def _ceiling_brokers(stack: contextlib.ExitStack, workloads: Sequence[Workload]) -> None:
    """For the wire echoes: a broker of its own for each order-path transport whose server brings its own (NATS).

    ``start_local`` names it in the transport's environment variable while the order path runs.
    """
    for name in dict.fromkeys(t for w in workloads if w.mode in ORDER_PATH_MODES for t in w.targets()):
        descriptor = TRANSPORTS.get(name)
        if descriptor is not None and descriptor.broker is not None and not (descriptor.bench and descriptor.bench.shared_broker):
            stack.enter_context(descriptor.broker.start_local())


def _mode_function(module: str, name: str) -> Callable[..., dict[str, Any]]:
    """A mode's entry point, imported only when a workload of that mode runs (each mode pulls in its own clients)."""
    function: Callable[..., dict[str, Any]] = getattr(importlib.import_module(f"bench.{module}"), name)
    return function


def _section(workload: Workload, sustainable: dict[str, float], quick: bool) -> dict[str, Any]:
    """Run one non-order-path workload through its mode's module."""
    wired = tuple(t for t in workload.targets() if t != INPROC) if workload.mode == "fanout" else workload.targets()
    log: Callable[[str], None] = lambda line: print(f"  {line}", flush=True)  # noqa: E731
    if workload.mode == "rate-search":
        return _mode_function("rate_search", "run_rate_search")(
            wired,
            rates=workload.rates or None,
            bounds_ms=workload.bounds_ms,
            step_s=workload.duration_s,
            warmup_s=workload.warmup_s,
            repeats=workload.repeats,
            log=log,
            **({"probe_down": 0, "min_samples": 0} if quick else {}),  # a smoke run: short rungs, no probing below the ladder
        )
    if workload.mode == "fanout":
        return _mode_function("fanout", "run_fanout")(
            wired,
            workload.subscribers,
            rate=workload.rate,
            duration_s=workload.duration_s,
            warmup_s=workload.warmup_s,
            repeats=workload.repeats,
            pause_s=workload.pause_s,
            log=log,
            start_brokers=False,  # run() started them for the whole run
        )
    if workload.mode == "burst":
        rates = {t: sustainable.get(t, workload.rate) for t in wired}
        return _mode_function("burst", "run_burst")(
            wired, rates, factor=workload.factor, burst_s=workload.burst_s, after_s=workload.after_s, repeats=workload.repeats, log=log
        )
    return _mode_function("recovery", "run_recovery")(
        workload.deployments, kills=workload.kills, journal_bytes=workload.journal_bytes, log=log
    )


def sustainable_rates(section: dict[str, Any], bound_ms: str = "5") -> dict[str, float]:
    """Per transport, the median rate a rate search sustained within ``bound_ms`` (absent where none was)."""
    rates: dict[str, float] = {}
    for name, data in (section.get("transports") or {}).items():
        median = ((data.get("sustainable_per_s") or {}).get(bound_ms) or {}).get("median")
        if median:
            rates[name] = float(median)
    return rates


def run(workloads: Sequence[Workload], quick: bool = False) -> dict[str, Any]:
    """Every workload in order (order path first, as one section); the result every report is rendered from."""
    started = time.time()
    host = machine()
    sections: dict[str, Any] = {}
    order_path: dict[str, Any] | None = None
    transports = tuple(dict.fromkeys(t for w in workloads for t in w.targets()))
    with contextlib.ExitStack() as stack:
        failed_brokers = _brokers(stack, transports, workloads)
        with contextlib.ExitStack() as ceiling_brokers:
            _ceiling_brokers(ceiling_brokers, workloads)
            order_path = run_order_path(workloads, failed_brokers)
        sustainable: dict[str, float] = {}
        for workload in (w for w in workloads if w.mode not in ORDER_PATH_MODES):
            print(f"{workload.name} ({workload.mode})", flush=True)
            began = time.monotonic()
            try:
                section = _section(workload, sustainable, quick)
            except Exception as exc:  # a mode that breaks is a result to report, not the end of the run
                section = {"failure": f"{type(exc).__name__}: {exc}"[-2000:]}
                print(f"  {workload.name} FAILED: {section['failure'][:300]}", flush=True)
            section["wall_s"] = round(time.monotonic() - began, 1)
            sections[workload.name] = {"mode": workload.mode, **section}
            if workload.mode == "rate-search":
                sustainable.update(sustainable_rates(section))
    return {
        "report": REPORT_STEM,
        "started_at_unix": round(started, 3),
        "elapsed_s": round(time.time() - started, 1),
        "machine": host,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": component_versions(),
        "workloads": [{k: v for k, v in dataclasses.asdict(w).items()} for w in workloads],
        **(order_path or {"transports": [], "modes": [], "summary": {}, "runs": {}}),
        "sections": sections,
    }


def failures(result: dict[str, Any]) -> list[str]:
    """What failed or did not reconcile, one line each (empty: a clean run)."""
    lines = []
    for name, modes in result.get("summary", {}).items():
        for mode, data in modes.items():
            if data["failed_runs"] or (not data["runs"] and "skipped" not in data):
                lines.append(f"{name} {mode}: {data['failed_runs']} failed point(s)")
            elif data["runs"] and not data["all_reconciled"]:
                lines.append(f"{name} {mode}: not reconciled with the server's counters")
    for name, section in result.get("sections", {}).items():
        if section.get("failure"):
            lines.append(f"{name}: {section['failure'][:200]}")
    return lines


def shown_path(path: Path) -> str:
    """``path`` as the report names it: relative to the checkout when inside it (no machine's own directories)."""
    try:
        return str(path.resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    from bench.comparison_report import write_reports

    args = parse_args(argv)
    workloads: list[Workload] = args.workloads
    names = ", ".join(f"{w.name} ({w.mode})" for w in workloads)
    print(f"dex-bench: {args.workload}: {names}", flush=True)
    result = run(workloads, args.quick)
    result["parameters"] = {"workload_file": shown_path(args.workload), "quick": args.quick}
    stem = REPORT_STEM if args.workload.resolve() == DEFAULT_SUITE else f"workload-{args.workload.stem}"
    files = write_reports(result, args.out_dir, stem)
    print(f"dex-bench: done in {result['elapsed_s']:.0f} s; wrote {', '.join(str(f) for f in files)}", flush=True)
    problems = failures(result)
    if problems:
        print("dex-bench: failed or unreconciled:\n  " + "\n  ".join(problems), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
