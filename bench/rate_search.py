"""The sustainable rate within a latency bound: ``python -m bench.rate_search --transports http,zmq``.

For each transport the open-loop offered rate steps up a ladder (the
``dex-trader`` harness, ``--batch 1 --workers 16 --rate R``: one order per
submit, latency from each order's intended send time, so a slow reply also
charges the orders it delayed: coordinated omission corrected). Each rung is
one harness run of ``warmup_s`` + the longer of ``step_s`` and
``min_samples`` orders on the same fresh server (one server
per transport and repeat, journal in a temporary directory, stopped by PID);
``inproc`` has no server. When the first rung is not within the lowest
bound, up to ``probe_down`` rungs below it (half, a quarter) find a rate that
is, so a slow wire still gets a figure. The ladder goes up from the first rung
and stops after the first rung whose p99 is over the highest bound, whose
achieved rate is under 90% of the offered one (the traders fell behind: the
machine, not the wire, is the limit), or that failed. Every rung also carries
its cost per order (``bench.cost.cost_of``).

A rung is *within* a bound when it reconciled with the server's counters,
achieved at least 90% of its offered rate and its p99 is within the bound.
The sustainable rate of a repeat for a bound is the highest offered rate such
that it and every rung below it were within the bound (0: not even the first
rung), so one lucky rung above a failed one never counts. Each figure is
min/median/max over the repeats, and the curve gives, per offered rate, the
spread of the achieved rate and of p99 and the median p50 over the repeats
that reached it; nothing is interpolated between rungs.

Brokers (NATS, RabbitMQ) are the caller's: ``bench/suite.py`` starts them
once for the whole run; this module's command line starts the ones it needs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bench.comparison import INPROC, benchmark_of
from bench.cost import cost_of
from bench.e2e import BenchServer, run_harness

LADDER = (500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0, 64000.0)
QUICK_LADDER = (500.0, 2000.0)
PROBE_DOWN = 2  # halvings below the first rung while it is not within the lowest bound (500 -> 250 -> 125)
MIN_SAMPLES = 500  # a rung lasts at least this many orders: p99 of fewer is a handful of the slowest replies
FELL_BEHIND = 0.9  # achieved below this share of the offered rate: the rung is not sustained, the ladder stops
TRADERS = 16  # bounds the orders in flight, not the load: the rate sets that
SEED = 42


@contextlib.contextmanager
def _no_server() -> Iterator[None]:
    yield None


def _spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": float(statistics.median(values)), "max": max(values)}


def _rung(transport: str, url: str | None, rate: float, step_s: float, warmup_s: float, workdir: Path) -> dict[str, Any]:
    """One harness run at ``rate`` offered orders/s on the running server: the curve's point (or its error)."""
    args = ["--batch", "1", "--workers", str(TRADERS), "--rate", f"{rate:g}", "--duration", f"{step_s:.3g}s", "--warmup", f"{warmup_s:g}s"]
    try:
        report = run_harness(
            transport, url, [*args, "--seed", str(SEED)], workdir / f"rung-{rate:g}.json", timeout=(step_s + warmup_s) * 4 + 60
        )
    except (RuntimeError, OSError, ValueError) as exc:
        return {"offered_per_s": rate, "error": str(exc)[-1000:]}
    latency = report["latency_us"]
    return {
        "offered_per_s": rate,
        "achieved_per_s": float(report["throughput_per_s"]),
        "p50_us": int(latency["p50"]),
        "p99_us": int(latency["p99"]),
        "errors": int(report["errors"]),
        "reconciled": bool(report["reconciliation"]["ok"]),
        "cost": cost_of(report),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # other work on this shared machine competes with the rung
    }


def within(point: dict[str, Any], bound_ms: float) -> bool:
    """Whether a rung counts as sustained within ``bound_ms``: reconciled, kept up with its rate, p99 within it."""
    if "error" in point or not point["reconciled"]:
        return False
    return bool(point["achieved_per_s"] >= FELL_BEHIND * point["offered_per_s"] and point["p99_us"] <= bound_ms * 1000)


def sustained(points: Sequence[dict[str, Any]], bound_ms: float) -> float:
    """The highest offered rate with it and every rung below it within ``bound_ms`` (0.0: not even the first)."""
    best = 0.0
    for point in sorted(points, key=lambda p: p["offered_per_s"]):
        if not within(point, bound_ms):
            break
        best = point["offered_per_s"]
    return best


def ladder(
    transport: str,
    rates: Sequence[float],
    bounds_ms: Sequence[float],
    step_s: float,
    warmup_s: float,
    log: Callable[[str], None],
    probe_down: int = PROBE_DOWN,
    min_samples: int = MIN_SAMPLES,
) -> list[dict[str, Any]]:
    """One repeat on a fresh server: the first rung; below it, up to ``probe_down`` halvings while the lowest rung
    run is not within the lowest bound; then up the ladder to the first rung over the highest bound, fallen behind or
    failed."""
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"dex-rate-{transport}-") as tmp:
        workdir = Path(tmp)
        server_cm: AbstractContextManager[BenchServer | None] = (
            _no_server() if transport == INPROC else benchmark_of(transport).server(workdir, ())
        )
        with server_cm as server:
            url = None if server is None else server.url

            def step(rate: float) -> dict[str, Any]:
                points.append(_rung(transport, url, rate, max(step_s, min_samples / rate), warmup_s, workdir))
                log(_line(transport, points[-1]))
                return points[-1]

            first = step(rates[0])
            lowest = first
            for k in range(1, probe_down + 1):
                if within(lowest, min(bounds_ms)) or "error" in lowest:
                    break
                lowest = step(rates[0] / 2**k)
            if within(first, max(bounds_ms)):
                for rate in rates[1:]:
                    if not within(step(rate), max(bounds_ms)):
                        break
    return sorted(points, key=lambda p: p["offered_per_s"])


def _line(transport: str, point: dict[str, Any]) -> str:
    if "error" in point:
        return f"{transport:<7} {point['offered_per_s']:>8,.0f}/s  FAILED: {point['error'][:200]}"
    return (
        f"{transport:<7} {point['offered_per_s']:>8,.0f}/s offered  {point['achieved_per_s']:>9,.0f}/s achieved  "
        f"p50 {point['p50_us']:>8,} µs  p99 {point['p99_us']:>9,} µs  reconciled {'yes' if point['reconciled'] else 'NO'}"
    )


def curve(repeats: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per offered rate, over the repeats that reached it: the spread of achieved rate and p99, the median p50."""
    rows = []
    for rate in sorted({p["offered_per_s"] for points in repeats for p in points}):
        at = [p for points in repeats for p in points if p["offered_per_s"] == rate]
        ok = [p for p in at if "error" not in p]
        rows.append(
            {
                "offered_per_s": rate,
                "runs": len(ok),
                "failures": [p["error"] for p in at if "error" in p][:3],
                "achieved_per_s": _spread([p["achieved_per_s"] for p in ok]),
                "p50_us": _spread([float(p["p50_us"]) for p in ok]),
                "p99_us": _spread([float(p["p99_us"]) for p in ok]),
                "reconciled": bool(ok) and all(p["reconciled"] for p in ok),
            }
        )
    return rows


def summarize(runs: Sequence[Sequence[dict[str, Any]]], bounds_ms: Sequence[float], failure: str | None) -> dict[str, Any]:
    """One transport's ladders (one per repeat that started) as its curve and sustainable rates."""
    return {
        "curve": curve(runs),
        "sustainable_per_s": {f"{b:g}": _spread([sustained(points, b) for points in runs]) for b in bounds_ms},
        "failure": failure,
        "runs": [list(points) for points in runs],
    }


def run_rate_search(
    transports: Sequence[str],
    *,
    rates: Sequence[float] | None = None,
    bounds_ms: Sequence[float] = (5.0, 50.0),
    step_s: float = 2.0,
    warmup_s: float = 0.5,
    repeats: int = 3,
    log: Callable[[str], None] = print,
    probe_down: int = PROBE_DOWN,
    min_samples: int = MIN_SAMPLES,
) -> dict[str, Any]:
    """The search over ``transports`` (brokers already running), ``repeats`` ladders each, one after the other."""
    ladder_rates = tuple(sorted(float(r) for r in rates)) if rates else LADDER
    started = time.monotonic()
    runs: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in transports}
    failures: dict[str, str] = {}
    for _ in range(repeats):  # interleaved, so a noisy minute on this shared machine hits every transport alike
        for name in transports:
            try:
                runs[name].append(ladder(name, ladder_rates, bounds_ms, step_s, warmup_s, log, probe_down, min_samples))
            except Exception as exc:  # a server that cannot start is a result to report, not the end of the search
                failures[name] = f"{type(exc).__name__}: {exc}"[-2000:]
                log(f"{name:<7} FAILED: {failures[name][:300]}")
    result = {name: summarize(runs[name], bounds_ms, failures.get(name)) for name in transports}
    return {
        "parameters": {
            "rates": list(ladder_rates),
            "bounds_ms": list(bounds_ms),
            "step_s": step_s,
            "warmup_s": warmup_s,
            "repeats": repeats,
            "batch": 1,
            "traders": TRADERS,
            "seed": SEED,
            "fell_behind_below": FELL_BEHIND,
            "probe_down": probe_down,
            "min_samples": min_samples,  # a rung lasts max(step_s, min_samples / rate) seconds
            "sustainable": "highest offered rate with it and every rung below it reconciled, achieving >= 90% of it, p99 within"
            " the bound; 0: not even the first rung",
        },
        "transports": result,
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.rate_search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--transports", default="inproc,http,grpc,zmq,nats,amqp,dht", help="comma-separated (default: all seven)")
    p.add_argument("--rates", default="", help="comma-separated offered rates (default: 500, 1k, 2k, ... 64k)")
    p.add_argument("--bounds-ms", default="5,50")
    p.add_argument("--step", type=float, default=2.0, help="measured seconds per rung (default: 2)")
    p.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each rung (default: 0.5)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--probe-down", type=int, default=PROBE_DOWN, help="halvings below the first rung (default: 2)")
    p.add_argument("--min-samples", type=int, default=MIN_SAMPLES, help="orders a rung lasts at least (default: 500)")
    p.add_argument("--quick", action="store_true", help="two short rungs, one repeat, no probing down or minimum samples")
    p.add_argument("--out", type=Path, default=Path("reports/bench-rate.json"))
    args = p.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()] or None
    if args.quick:
        rates, args.step, args.warmup, args.repeat = rates or list(QUICK_LADDER), min(args.step, 0.5), min(args.warmup, 0.2), 1
        args.probe_down = args.min_samples = 0
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    with contextlib.ExitStack() as stack:
        for name in transports:
            broker = None if name == INPROC else benchmark_of(name).broker
            if broker is not None:
                stack.enter_context(broker())
        result = run_rate_search(
            transports,
            rates=rates,
            bounds_ms=[float(b) for b in args.bounds_ms.split(",")],
            step_s=args.step,
            warmup_s=args.warmup,
            repeats=args.repeat,
            probe_down=args.probe_down,
            min_samples=args.min_samples,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, data in result["transports"].items():
        figures = "  ".join(f"p99 <= {b} ms: {(s or {}).get('median', 0):,.0f}/s" for b, s in data["sustainable_per_s"].items())
        print(
            f"{name:<7} sustainable (median of {args.repeat}): {figures}"
            + (f"  FAILED: {data['failure'][:120]}" if data["failure"] else "")
        )
    print(f"wrote {args.out} in {result['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
