"""Bursts: ``factor`` x a transport's sustainable rate for ``burst_s``, then the sustainable rate again.

Run ``python -m bench.burst --transports http,zmq --out reports/bench-burst.json``; ``run_burst`` is
what the comparison report calls, with the rate its rate search found per transport.

One run, on one server per transport (``benchmark_of(name).server``; its broker, if any, started once;
``inproc``: the gateway inside the load process), all open loop on ``time.monotonic()`` (shared by every
process of the machine), with the harness's own workers (``traders.harness.runner.ProcessRunner``:
seeded order flows, intended send times, ``OVERLOADED`` retried with backoff):

* the **base** load: ``rate`` R orders/s for ``before_s + burst_s + after_s`` (one process,
  ``workers`` traders, one order per submit);
* the **burst**: ``(factor - 1) x R`` more for ``burst_s`` from ``before_s`` on, spread over
  ``burst_procs`` processes (one process drives at most one core, so one alone would measure itself).

Latency is each submit's reply time minus its *intended* send time (a stall charges every order
queued behind it), recorded per order with its intended time, so that it can be placed in time:

* ``before_p99_us``: the base load's p99 over ``before_s`` (normal latency);
* ``peak_latency_us``: p50/p99/max over the orders intended in the burst window;
* ``drain_s``: from the end of the burst to the start of the first 100 ms bin (by intended time) of
  the normal load whose p99 is back under ``max(2 x before_p99, 1 ms)``: the backlog is gone once
  (a later noisy bin on this shared machine is not the burst's); ``None`` when no bin of
  ``after_s`` gets there (not drained);
* ``timeline``: ``[bin start s, p99 µs, orders]`` per 100 ms bin of intended time, every role, from
  the start of ``before_s`` (0 = the burst's start), for charts and for checking the above;
* ``sent_in_burst_per_s`` and ``peak_service_latency_us`` (reply minus *actual* send, burst
  window): what the load processes managed to send during the burst and how long the wire and the
  server took. Where the offered rate is above what the clients can send on this machine, the
  peak latency is mostly the clients' own schedule falling behind, and these two say so;
* ``overloaded``: submits the server refused with ``OVERLOADED`` (each retried until its window ends;
  nothing of a refused submit is applied). Each trader has one submit in flight, so the clients
  hold at most ``workers + burst_workers`` orders in the server at once: a burst queues in the
  clients' schedules (and shows in the latency) long before it fills a server queue;
* ``lost`` and ``reconciled``: the harness's reconciliation (``traders.harness.results.reconcile``)
  of every process's counts with the server's counters read before and after: ``lost`` =
  acknowledged acceptances the server's counters do not hold.

Every repeat reports its own figures; the transport's row gives min/median/max over repeats.
Processes started here are stopped by PID; nothing is extrapolated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

from traders.harness.clients import open_exchange
from traders.harness.config import HarnessConfig
from traders.harness.results import reconcile
from traders.harness.runner import Counts, ProcessRunner, Tally

Log = Callable[[str], None]
ROOT = Path(__file__).resolve().parents[1]
INPROC = "inproc"
BIN_S = 0.1
BEFORE_S = 1.0
DRAIN_FLOOR_US = 1_000
CHILD_TIMEOUT_S = 120.0


class TimedTally(Tally):
    """The harness's tally, also keeping each reply's intended send time, latency and service latency."""

    def __init__(self) -> None:
        super().__init__()
        self.intended = array("d")
        self.latency = array("q")
        self.service = array("q")  # reply - actual send: the part of the latency spent past the client

    def record(self, batch: Any, outcomes: Any, latency_s: float, service_s: float, measured: bool) -> None:
        super().record(batch, outcomes, latency_s, service_s, measured)
        self.intended.append(time.monotonic() - latency_s)
        self.latency.append(int(latency_s * 1e6))
        self.service.append(int(service_s * 1e6))


# ------------------------------------------------------------------ the load processes
def _child_main(spec: dict[str, Any]) -> dict[str, Any]:
    """One load process: its runners (base and/or burst) from the start instant the parent sends."""
    return asyncio.run(_child(spec))


async def _child(spec: dict[str, Any]) -> dict[str, Any]:
    async with open_exchange(spec["transport"], spec["url"]) as new_client:
        runners = []
        for proc, role in enumerate(spec["roles"]):
            config = HarnessConfig(
                transport=spec["transport"],
                server=spec["url"],
                workers=role["workers"],
                batch=spec["batch"],
                rate=role["rate"],
                duration_s=role["duration_s"],
                warmup_s=0.0,
                seed=spec["seed"],
                trader_prefix=role["prefix"],
                run_id=spec["run_id"],
            )
            runner = ProcessRunner(config, proc, new_client)
            runner.tally = TimedTally()
            await runner.prepare()
            runners.append((role, runner))
        stats = runners[0][1].clients[0]
        before = await stats.stats() if spec["read_stats"] else {}
        print("ready", flush=True)
        start = float(await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline))
        await asyncio.gather(*(runner.run(start + role["offset_s"]) for role, runner in runners))
        after = await stats.stats() if spec["read_stats"] else {}
        out = []
        for role, runner in runners:
            tally = runner.tally
            assert isinstance(tally, TimedTally)
            out.append(
                {
                    "role": role["name"],
                    "total": tally.total.to_dict(),
                    "intended": [round(t - start, 6) for t in tally.intended],
                    "latency_us": list(tally.latency),
                    "service_us": list(tally.service),
                    "first_error": tally.first_error,
                    "error": runner.error,
                }
            )
        for _, runner in runners:
            await runner.close()
    return {"runners": out, "before": before, "after": after}


@contextlib.contextmanager
def _children(specs: Sequence[dict[str, Any]]) -> Iterator[list[subprocess.Popen[str]]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.burst", "--child", json.dumps(spec)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    """Read the child's output up to its "ready" line (a library may print before it)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        if line.strip() == "ready":
            return
        seen.append(line)
    proc.wait(10)
    stderr = proc.stderr.read() if proc.stderr is not None else ""
    raise RuntimeError(f"a burst load process exited with {proc.returncode} before it was ready: {''.join(seen)[-1000:]}{stderr[-2000:]}")


def _one_burst(
    transport: str, url: str | None, rate: float, plan: Mapping[str, Any], repeat: int, stats_of: Callable[[], dict[str, Any]] | None
) -> dict[str, Any]:
    """One burst against a running server: start the load processes together, gather their samples."""
    before_s, burst_s, after_s = plan["before_s"], plan["burst_s"], plan["after_s"]
    extra = rate * (plan["factor"] - 1)
    base = {"name": "base", "rate": rate, "workers": plan["workers"], "duration_s": before_s + burst_s + after_s, "offset_s": 0.0}
    common = {
        "transport": transport,
        "url": url,
        "batch": plan["batch"],
        "seed": plan["seed"] + repeat,
        "run_id": f"b{repeat}{os.getpid()}",
    }
    procs = 1 if transport == INPROC else plan["burst_procs"]
    bursts = [
        {
            "name": "burst",
            "rate": extra / procs,
            "workers": max(1, plan["burst_workers"] // procs),
            "duration_s": burst_s,
            "offset_s": before_s,
        }
        for _ in range(procs)
    ]
    for i, role in enumerate([base, *bursts]):
        role["prefix"] = f"{role['name']}{i}"
    if transport == INPROC:  # the gateway lives in the load process: one process, both loads, its own counters
        specs = [{**common, "roles": [base, *bursts], "read_stats": True}]
    else:
        specs = [{**common, "roles": [base], "read_stats": False}, *({**common, "roles": [b], "read_stats": False} for b in bursts)]
    before = stats_of() if stats_of else {}
    with _children(specs) as procs_:
        for proc in procs_:
            _wait_ready(proc)
        start = time.monotonic() + 0.2
        for proc in procs_:  # every child gets the start instant now: none may wait for another to finish
            assert proc.stdin is not None
            proc.stdin.write(f"{start}\n")
            proc.stdin.flush()  # communicate() below closes it
        outputs = [proc.communicate(timeout=before_s + burst_s + after_s + CHILD_TIMEOUT_S) for proc in procs_]
    results = []
    for proc, (stdout, stderr) in zip(procs_, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"a burst load process exited with {proc.returncode}: {stderr[-2000:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    if transport == INPROC:
        before, after = results[0]["before"], results[0]["after"]
    else:
        after = stats_of() if stats_of else {}
    return _analyse([r for res in results for r in res["runners"]], before, after, rate, plan)


def _percentile(values: Sequence[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


def _analyse(
    runners: Sequence[Mapping[str, Any]], before: Mapping[str, Any], after: Mapping[str, Any], rate: float, plan: Mapping[str, Any]
) -> dict[str, Any]:
    before_s, burst_s, after_s = plan["before_s"], plan["burst_s"], plan["after_s"]
    total = Counts()
    samples: list[tuple[float, int]] = []  # (intended time from the burst's start, latency µs)
    normal: list[int] = []
    service: list[int] = []  # service latency of the orders intended in the burst window
    sent_in_burst = 0  # orders actually sent in the burst window (intended + latency - service)
    for runner in runners:
        total.add(Counts.from_dict(runner["total"]))
        for t, lat, svc in zip(runner["intended"], runner["latency_us"], runner["service_us"], strict=True):
            samples.append((t - before_s, lat))
            if runner["role"] == "base" and t < before_s:
                normal.append(lat)
            if before_s <= t < before_s + burst_s:
                service.append(svc)
            sent_in_burst += before_s <= t + (lat - svc) / 1e6 < before_s + burst_s
    in_burst = [lat for t, lat in samples if 0 <= t < burst_s]
    normal_p99 = _percentile(normal, 0.99)
    threshold = max(2 * normal_p99, DRAIN_FLOOR_US)
    settling: dict[int, list[int]] = {}  # the normal load after the burst, by 100 ms bin of intended time
    timeline: dict[int, list[int]] = {}
    for t, lat in samples:
        timeline.setdefault(int((t + before_s) / BIN_S), []).append(lat)
        if burst_s <= t < burst_s + after_s:
            settling.setdefault(int((t - burst_s) / BIN_S), []).append(lat)
    good = [b for b, lats in sorted(settling.items()) if _percentile(lats, 0.99) <= threshold]
    drain_s = round(good[0] * BIN_S, 2) if good else None
    rec = reconcile(total, before, after)
    lost = max(0, rec["harness"]["accepted"] - rec["server"]["accepted"]) if "skipped" not in rec else None
    errors = [r["error"] or r["first_error"] for r in runners if r["error"] or r["first_error"]]
    return {
        "offered_burst_per_s": round(rate * plan["factor"], 1),
        "before_p99_us": normal_p99,
        "peak_latency_us": {
            "p50": _percentile(in_burst, 0.5),
            "p99": _percentile(in_burst, 0.99),
            "max": max(in_burst, default=0),
            "orders": len(in_burst),
        },
        "peak_service_latency_us": {"p99": _percentile(service, 0.99), "max": max(service, default=0)},
        "sent_in_burst_per_s": round(sent_in_burst / burst_s, 1),
        "drain_threshold_us": threshold,
        "drain_s": drain_s,
        "drained": drain_s is not None,
        "timeline": [[round(b * BIN_S - before_s, 2), _percentile(lats, 0.99), len(lats)] for b, lats in sorted(timeline.items())],
        "overloaded": total.overloaded,
        "errors": total.errors,
        "first_errors": errors[:3],
        "accepted": total.accepted,
        "lost": lost,
        "reconciled": bool(rec["ok"]),
        "reconciliation_diff": rec["diff"],
    }


# ------------------------------------------------------------------ per transport
@contextlib.contextmanager
def _server(transport: str, workdir: Path, server_args: tuple[str, ...]) -> Iterator[str | None]:
    if transport == INPROC:
        yield None
        return
    from bench.comparison import benchmark_of

    with benchmark_of(transport).server(workdir, server_args) as server:
        yield server.url


def _stats_reader(transport: str, url: str | None) -> Callable[[], dict[str, Any]] | None:
    if transport == INPROC:
        return None

    async def read() -> dict[str, Any]:
        async with open_exchange(transport, url) as new_client:
            client = new_client("burst-stats")
            await client.connect()
            try:
                return dict(await client.stats())
            finally:
                await client.close()

    return lambda: asyncio.run(read())


def probe_rate(transport: str, url: str | None, plan: Mapping[str, Any]) -> float:
    """A quick default for R: half the closed-loop single-order throughput of ``workers`` traders over 1.5 s."""
    from bench.e2e import run_harness

    with tempfile.TemporaryDirectory(prefix="dex-burst-probe-") as tmp:
        args = ["--batch", str(plan["batch"]), "--workers", str(plan["workers"]), "--duration", "1.5s", "--warmup", "0.5s"]
        report = run_harness(transport, url, args, Path(tmp) / "probe.json", timeout=60)
    return max(50.0, round(float(report["throughput_per_s"]) / 2, -1))


def _spread(values: Sequence[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"min": min(present), "median": round(statistics.median(present), 3), "max": max(present)}


def _transport_row(transport: str, rate: float | None, plan: Mapping[str, Any], log: Log) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"dex-burst-{transport}-") as tmp, _server(transport, Path(tmp), plan["server_args"]) as url:
        probed = rate is None
        if rate is None:
            rate = probe_rate(transport, url, plan)
        stats_of = _stats_reader(transport, url)
        runs = []
        for repeat in range(plan["repeats"]):
            run = _one_burst(transport, url, rate, plan, repeat, stats_of)
            runs.append(run)
            peak = run["peak_latency_us"]
            drain = "not drained" if run["drain_s"] is None else f"{run['drain_s']} s"
            log(
                f"  {transport:<7} R {rate:,.0f}/s burst {run['offered_burst_per_s']:,.0f}/s: "
                f"peak p99 {peak['p99']:,} µs max {peak['max']:,} µs, "
                f"sent {run['sent_in_burst_per_s']:,.0f}/s, service p99 {run['peak_service_latency_us']['p99']:,} µs, "
                f"overloaded {run['overloaded']}, drain {drain}, lost {run['lost']}, reconciled {'yes' if run['reconciled'] else 'NO'}"
            )
    return {
        "rate": rate,
        "rate_from": "probe (half the closed-loop single-order throughput)" if probed else "given (the rate search)",
        "burst_rate": round(rate * plan["factor"], 1),
        "peak_latency_us": {
            "p99": _spread([r["peak_latency_us"]["p99"] for r in runs]),
            "max": _spread([r["peak_latency_us"]["max"] for r in runs]),
        },
        "peak_service_latency_us": {"p99": _spread([r["peak_service_latency_us"]["p99"] for r in runs])},
        "sent_in_burst_per_s": _spread([r["sent_in_burst_per_s"] for r in runs]),
        "before_p99_us": _spread([r["before_p99_us"] for r in runs]),
        "overloaded": sum(r["overloaded"] for r in runs),
        "drain_s": _spread([r["drain_s"] for r in runs]),
        "drained": all(r["drained"] for r in runs),
        "lost": sum(r["lost"] or 0 for r in runs) if all(r["lost"] is not None for r in runs) else None,
        "reconciled": all(r["reconciled"] for r in runs),
        "runs": runs,
    }


def _brokers(transports: Sequence[str], stack: ExitStack, log: Log) -> dict[str, str]:
    """Start each broker the transports need, once; the transports whose broker failed, with why."""
    from bench.comparison import benchmark_of

    failed: dict[str, str] = {}
    for name in transports:
        if name == INPROC:
            continue
        broker: Callable[[], AbstractContextManager[object]] | None = benchmark_of(name).broker
        if broker is None or (name == "amqp" and os.environ.get("DEX_AMQP_URL")):
            continue
        try:
            stack.enter_context(broker())
        except Exception as exc:
            failed[name] = f"broker: {type(exc).__name__}: {exc}"[:500]
            log(f"  {name} broker FAILED: {failed[name]}")
    return failed


def run_burst(
    transports: Sequence[str],
    sustainable: Mapping[str, float],
    *,
    factor: float = 10.0,
    burst_s: float = 2.0,
    after_s: float = 4.0,
    repeats: int = 3,
    before_s: float = BEFORE_S,
    batch: int = 1,
    workers: int = 16,
    burst_workers: int = 64,
    burst_procs: int = 2,
    seed: int = 42,
    server_args: tuple[str, ...] = (),
    log: Log = print,
) -> dict[str, Any]:
    """Every transport's burst row (its ``sustainable`` rate, or a quick probe's when absent)."""
    plan = {
        "factor": factor,
        "burst_s": burst_s,
        "after_s": after_s,
        "before_s": before_s,
        "repeats": repeats,
        "batch": batch,
        "workers": workers,
        "burst_workers": burst_workers,
        "burst_procs": burst_procs,
        "seed": seed,
        "server_args": tuple(server_args),
    }
    started = time.monotonic()
    rows: dict[str, Any] = {}
    with ExitStack() as stack:
        failed = _brokers(transports, stack, log)
        for name in transports:
            began = time.monotonic()
            if name in failed:
                rows[name] = {"failure": failed[name]}
                continue
            try:
                rows[name] = {**_transport_row(name, sustainable.get(name), plan, log), "failure": None}
            except Exception as exc:  # a transport that cannot be measured is a result to report
                rows[name] = {"failure": f"{type(exc).__name__}: {exc}"[:1000]}
                log(f"  {name} FAILED: {rows[name]['failure'][:300]}")
            rows[name]["wall_s"] = round(time.monotonic() - began, 1)
    return {
        "transports": rows,
        "plan": {k: v for k, v in plan.items() if k != "server_args"} | {"server_args": list(server_args)},
        "wall_s": round(time.monotonic() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-burst.json"))
    parser.add_argument("--transports", default="inproc,http,grpc,zmq,nats,amqp,dht")
    parser.add_argument("--rates", default="", help="sustainable rates, e.g. http=2000,zmq=4000 (default: a quick probe each)")
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--burst", type=float, default=2.0, help="burst seconds (default 2)")
    parser.add_argument("--after", type=float, default=4.0, help="seconds at the normal rate after the burst (default 4)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat, a 1 s burst, 2 s after")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child_main(json.loads(args.child))))
        return 0
    if args.quick:
        args.repeats, args.burst, args.after = 1, min(args.burst, 1.0), min(args.after, 2.0)
    rates = {k.strip(): float(v) for k, v in (item.split("=") for item in args.rates.split(",") if item.strip())}
    result = run_burst(
        [t.strip() for t in args.transports.split(",") if t.strip()],
        rates,
        factor=args.factor,
        burst_s=args.burst,
        after_s=args.after,
        repeats=args.repeats,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, row in result["transports"].items():
        if row.get("failure"):
            print(f"{name:<7} FAILED: {row['failure'][:200]}")
            continue
        print(
            f"{name:<7} R {row['rate']:,.0f}/s x{args.factor:g}: peak p99 {row['peak_latency_us']['p99']} µs, "
            f"overloaded {row['overloaded']}, "
            f"drain {row['drain_s']} s, lost {row['lost']}, reconciled {'yes' if row['reconciled'] else 'NO'}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
