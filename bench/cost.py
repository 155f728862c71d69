"""Cost per order from one ``dex-trader`` report: CPU-seconds per 1,000 orders, peak RSS, bytes on the wire.

``cost_of`` takes a harness report (``--json``) and returns its ``cost``
object (``traders/harness/cost.py`` says how each figure is counted: each
process's own accounting over the measured window) with what a reader needs
beside it: the transport, the batch size and loop of the run, and what was
not counted. The comparison runner calls it for every point, so "cheap" and
"fast" can be told apart per transport and per mode.

``python -m bench.cost`` measures it alone: per transport (a fresh server per
repeat, brokers started once) the ``single`` mode (one order per submit, 16
traders at 1,000 orders/s) and the ``batch`` mode (1,000 per submit, 4 traders,
closed loop), each figure min/median/max over the repeats.

Invariants: every key of ``FIELDS`` is present; a figure the run could not
give is ``None`` (a harness or server older than the cost report, a window
with no orders), never a guess. Nothing here measures: it only reads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The figures every cost object has (None where the run could not give one).
FIELDS = (
    "server_cpu_s_per_1000",
    "client_cpu_s_per_1000",
    "total_cpu_s_per_1000",
    "server_peak_rss_bytes",
    "client_peak_rss_bytes",
    "bytes_per_order_out",
    "bytes_per_order_in",
)
# A third process between client and server whose CPU the harness does not see.
BROKER_OF = {"nats": "nats-server", "amqp": "RabbitMQ"}
# Transports whose "server" is several processes, of which the harness's stats client reads one.
SERVER_NOTES = {
    "dht": "server figures are one dex-node's of the replica group (the one the stats request reached); each node applies "
    "every order, and the others' CPU and memory are not counted",
}


def cost_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The ``cost`` object of a harness report, normalised (every ``FIELDS`` key present) and annotated."""
    raw = report.get("cost")
    transport = str(report.get("transport", ""))
    cost: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {"missing": "the report has no cost object (an older harness)"}
    for key in FIELDS:
        cost.setdefault(key, None)
    cost["transport"] = transport
    cost["batch"] = report.get("batch")
    cost["loop"] = report.get("mode")  # "open" (fixed rate) or "closed"
    broker = BROKER_OF.get(transport)
    cost["broker"] = f"{broker}: a third process, its CPU and memory not counted" if broker else None
    note = SERVER_NOTES.get(transport)
    if note:
        cost["server_note"] = note
    return cost


MODES = {
    "single": ["--batch", "1", "--workers", "16", "--rate", "1000"],
    "batch": ["--batch", "1000", "--workers", "4"],
}


def measure(transport: str, seconds: float, warmup: float) -> dict[str, dict[str, Any]]:
    """Both modes once, on one fresh server (none for ``inproc``): each mode's ``cost_of``, and its reconciliation."""
    from bench.comparison import INPROC, benchmark_of
    from bench.e2e import run_harness

    out: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"dex-cost-{transport}-")))
        url = None if transport == INPROC else stack.enter_context(benchmark_of(transport).server(workdir, ())).url
        for mode, args in MODES.items():
            timing = ["--duration", f"{seconds:g}s", "--warmup", f"{warmup:g}s"]
            report = run_harness(transport, url, [*args, *timing], workdir / f"{mode}.json", timeout=(seconds + warmup) * 4 + 60)
            out[mode] = {**cost_of(report), "reconciled": bool(report["reconciliation"]["ok"])}
    return out


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per figure of ``FIELDS``, min/median/max over the runs that gave it."""
    spread: dict[str, Any] = {}
    for key in FIELDS:
        values = [float(r[key]) for r in runs if r.get(key) is not None]
        spread[key] = {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else None
    spread["all_reconciled"] = bool(runs) and all(r["reconciled"] for r in runs)
    return spread


def main(argv: Sequence[str] | None = None) -> int:
    from bench.comparison import INPROC, benchmark_of

    p = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transports", default="inproc,http,grpc,zmq,nats,amqp,dht")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("reports/bench-cost.json"))
    args = p.parse_args(argv)
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {t: {m: [] for m in MODES} for t in transports}
    with contextlib.ExitStack() as stack:
        for name in transports:
            broker = None if name == INPROC else benchmark_of(name).broker
            if broker is not None:
                stack.enter_context(broker())
        for _ in range(args.repeat):  # interleaved over the transports
            for name in transports:
                for mode, cost in measure(name, args.seconds, args.warmup).items():
                    runs[name][mode].append(cost)
    summary = {name: {mode: summarize(r) for mode, r in modes.items()} for name, modes in runs.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"modes": MODES, "summary": summary, "runs": runs}, indent=2) + "\n", encoding="utf-8")
    for name, modes in summary.items():
        for mode, figures in modes.items():
            med = {k: (v or {}).get("median") for k, v in figures.items() if k in FIELDS}
            print(
                f"{name:<7} {mode:<6} CPU s/1000: server {med['server_cpu_s_per_1000']}, client {med['client_cpu_s_per_1000']}, "
                f"total {med['total_cpu_s_per_1000']}; peak RSS server {med['server_peak_rss_bytes']}, client "
                f"{med['client_peak_rss_bytes']}; bytes/order out {med['bytes_per_order_out']}, in {med['bytes_per_order_in']}; "
                f"reconciled {'yes' if figures['all_reconciled'] else 'NO'}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
