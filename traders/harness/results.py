"""Merging the processes' results, reconciling with the server, the JSON report and the summary.

Reconciliation: the harness counts what its replies said; the server counts
what its gateway applied (``Gateway.stats_dict``). Both are compared over the
whole run, warm-up included, as the difference of the server's counters
after and before the run, so a server that already had traffic reconciles.
Another client sending to the same server during the run shows up as a
difference; so does a request whose reply was lost.

Why commands were refused or orders ended early: ``rejected_by_reason`` is
the harness's own count from its replies; ``reconciliation`` holds the
server's ``rejected_by_reason`` and ``cancelled_by_reason`` deltas over the
run (cancels happen to resting orders too, which no reply of the canceller's
own shows: self-trade prevention, IOC remainders, ...). The summary prints
each with its one-line meaning from ``traders.harness.reasons``.

The report's headline counts (``orders_sent`` = commands sent, ``accepted``,
``rejected``, ``trades``, ``errors``) and latencies cover the measured window
only (after the warm-up); ``throughput_per_s`` is commands answered per second
of that window.

Cost: ``cost`` (``traders.harness.cost``) gives CPU-seconds per 1,000 orders,
peak RSS and lean bytes per order, the harness's side from its processes' own
accounting over the measured window and the server's from its stats read as
the window opened and ended (``Outcome.window``); reconciliation still uses
the readings before and after the whole run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from traders.harness.config import HarnessConfig
from traders.harness.cost import cost_report
from traders.harness.progress import format_us
from traders.harness.reasons import cancel_meaning, reject_meaning
from traders.harness.runner import Counts
from transports.core.histogram import Histogram

RECONCILED = ("commands", "orders", "accepted", "rejected", "trades")
_COMMAND_KINDS = ("place", "cancel", "replace", "mass_cancel")  # what traders send (not add_instrument)


@dataclass(slots=True)
class Merged:
    total: Counts = field(default_factory=Counts)
    measured: Counts = field(default_factory=Counts)
    latency_us: Histogram = field(default_factory=Histogram)
    service_latency_us: Histogram = field(default_factory=Histogram)
    measured_elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # warm-up included
    generated_live: int = 0
    error: str = ""  # what ended the run early (the server died or stopped answering); "" when it ran to the end
    # The processes' own accounting over the measured window: CPU seconds, request bytes and peak RSS, each summed
    # (the processes run side by side, so their peaks add up to at most the sum).
    cost: dict[str, float] = field(default_factory=lambda: {"cpu_s": 0.0, "request_bytes": 0, "peak_rss_bytes": 0})


def merge(results: Sequence[Mapping[str, Any]]) -> Merged:
    """One result from every process's (``ProcessRunner.result``), histograms added bucket by bucket."""
    merged = Merged()
    for result in results:
        merged.total.add(Counts.from_dict(result["total"]))
        merged.measured.add(Counts.from_dict(result["measured"]))
        merged.latency_us.merge(Histogram.from_dict(result["latency_us"]))
        merged.service_latency_us.merge(Histogram.from_dict(result["service_latency_us"]))
        merged.measured_elapsed_s = max(merged.measured_elapsed_s, float(result["measured_elapsed_s"]))
        if result.get("first_error"):
            merged.errors.append(f"process {result['proc']}: {result['first_error']}")
        for reason, count in dict(result.get("rejected_by_reason", {})).items():
            merged.rejected_by_reason[str(reason)] = merged.rejected_by_reason.get(str(reason), 0) + int(count)
        merged.generated_live += int(result.get("generated_live", 0))
        for key, value in dict(result.get("cost", {})).items():
            merged.cost[key] = merged.cost.get(key, 0) + value
        if result.get("error") and not merged.error:
            merged.error = f"process {result['proc']}: {result['error']}" if len(results) > 1 else str(result["error"])
    return merged


def _int(stats: Mapping[str, Any], key: str) -> int:
    value = stats.get(key, 0)
    return int(value) if isinstance(value, (int, float)) else 0


def server_counts(stats: Mapping[str, Any]) -> dict[str, int]:
    """The reconciled counters from one ``stats_dict``."""
    commands = stats.get("commands", {})
    sent = sum(int(commands.get(kind, 0)) for kind in _COMMAND_KINDS) if isinstance(commands, Mapping) else 0
    return {
        "commands": sent,
        "orders": _int(stats, "orders"),
        "accepted": _int(stats, "accepted"),
        "rejected": _int(stats, "rejected"),
        "trades": _int(stats, "trades"),
    }


def reconcile(total: Counts, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    harness = {
        "commands": total.sent,
        "orders": total.orders,
        "accepted": total.accepted,
        "rejected": total.rejected,
        "trades": total.trades,
    }
    if not after:  # the server stopped answering: there is nothing to compare with
        return {
            "ok": False,
            "skipped": "the server did not answer after the run",
            "harness": harness,
            "server": dict.fromkeys(RECONCILED, 0),
            "diff": {},
            "server_rejected_by_reason": {},
            "server_cancelled_by_reason": {},
        }
    start, end = server_counts(before), server_counts(after)
    server = {key: end[key] - start[key] for key in RECONCILED}
    diff = {key: harness[key] - server[key] for key in RECONCILED if harness[key] != server[key]}
    return {
        "ok": not diff,
        "harness": harness,
        "server": server,
        "diff": diff,
        "server_rejected_by_reason": counter_delta(before, after, "rejected_by_reason"),
        "server_cancelled_by_reason": counter_delta(before, after, "cancelled_by_reason"),
    }


def counter_delta(before: Mapping[str, Any], after: Mapping[str, Any], key: str) -> dict[str, int]:
    """``after[key] - before[key]`` for a counter by reason name, zero entries left out, largest first."""
    start, end = before.get(key, {}), after.get(key, {})
    if not isinstance(start, Mapping) or not isinstance(end, Mapping):
        return {}
    deltas = {str(name): int(count) - int(start.get(name, 0)) for name, count in end.items()}
    return dict(sorted(((k, v) for k, v in deltas.items() if v), key=lambda item: -item[1]))


def build_report(
    config: HarnessConfig,
    merged: Merged,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    server: str,
    window: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {}),
) -> dict[str, Any]:
    """The JSON report; ``window`` is the server's stats when the measured window started and ended (``cost``)."""
    m = merged.measured
    window_start, window_end = window
    served = server_counts(window_end)["commands"] - server_counts(window_start)["commands"] if window_start and window_end else None
    throughput = m.sent / merged.measured_elapsed_s if merged.measured_elapsed_s > 0 else 0.0
    return {
        "transport": config.transport,
        "workers": config.workers,
        "batch": config.batch,
        "rate": config.rate,
        "duration_s": round(merged.measured_elapsed_s, 6),
        "orders_sent": m.sent,
        "accepted": m.accepted,
        "rejected": m.rejected,
        "trades": m.trades,
        "errors": m.errors,
        "throughput_per_s": round(throughput, 1),
        "latency_us": merged.latency_us.summary(),
        "server_stats": dict(after),
        "procs": config.procs,
        "traders": config.traders,
        "server": server,
        "mode": "open" if config.open_loop else "closed",
        "seed": config.seed,
        "symbols": list(config.symbols),
        "trader_prefix": config.trader_prefix,
        "requested_duration_s": config.duration_s,
        "warmup_s": config.warmup_s,
        "requests": m.requests,
        "places": m.orders,
        "overloaded": m.overloaded,
        "latency_mean_us": round(merged.latency_us.mean(), 1),
        "service_latency_us": merged.service_latency_us.summary(),
        "latency_histogram": merged.latency_us.to_dict(),
        "warmup": merged.total.minus(m).to_dict(),
        "total": merged.total.to_dict(),
        "error_messages": merged.errors,
        "run_id": config.run_id,
        "workload": config.workload,
        "rejected_by_reason": dict(sorted(merged.rejected_by_reason.items(), key=lambda item: -item[1])),
        "generated_live": merged.generated_live,
        "reconciliation": reconcile(merged.total, before, after),
        "error": merged.error or None,
        "cost": cost_report(config.transport, m.sent, merged.cost, window_start, window_end, served),
    }


def write_json(path: str | Path, report: Mapping[str, Any]) -> None:
    target = Path(path)
    if target.parent != Path():
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def print_summary(report: Mapping[str, Any], console: Console) -> None:
    lat = report["latency_us"]
    svc = report["service_latency_us"]
    mode = f"open loop at {report['rate']:,.0f}/s" if report["mode"] == "open" else "closed loop"
    table = Table(
        title=f"dex-trader: {report['transport']} {report['server']}, {report['procs']}x{report['workers']} traders, "
        f"batch {report['batch']}, {mode}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("run", f"{report.get('run_id') or '-'}, seed {report['seed']}, workload {report.get('workload', '-')}")
    table.add_row("measured", f"{report['duration_s']:.2f}s (after {report['warmup_s']:g}s warm-up)")
    table.add_row("throughput", f"{report['throughput_per_s']:,.0f} commands/s")
    table.add_row("commands sent", f"{report['orders_sent']:,} in {report['requests']:,} requests ({report['places']:,} places)")
    table.add_row("accepted / rejected", f"{report['accepted']:,} / {report['rejected']:,}")
    table.add_row("trades", f"{report['trades']:,}")
    table.add_row("errors", f"{report['errors']:,} ({report['overloaded']:,} overloaded)")
    latency = "  ".join(f"{k} {format_us(int(lat[k]))}" for k in ("p50", "p90", "p99", "p999", "max"))
    table.add_row("latency", latency + ("  (from intended start)" if report["mode"] == "open" else ""))
    if report["mode"] == "open":
        table.add_row("service latency", "  ".join(f"{k} {format_us(int(svc[k]))}" for k in ("p50", "p99", "max")) + "  (from send)")
    console.print(table)
    if report["mode"] == "open" and report["throughput_per_s"] < 0.9 * float(report["rate"]):
        console.print(
            f"[yellow]the schedule fell behind: {report['throughput_per_s']:,.0f}/s sent of {report['rate']:,.0f}/s asked "
            "(each trader waits for its reply before its next request: add --workers); the latency above includes the wait[/yellow]",
            highlight=False,
        )
    print_reasons(report, console)
    print_reconciliation(report["reconciliation"], console)
    for message in report["error_messages"]:
        console.print(f"[yellow]first error in {message}[/yellow]", highlight=False)
    if report.get("error"):
        console.print(f"[bold red]the run ended early: {report['error']}[/bold red]", highlight=False)


def print_reconciliation(rec: Mapping[str, Any], console: Console) -> None:
    harness, server = rec["harness"], rec["server"]
    if rec.get("skipped"):
        console.print(f"[yellow]not reconciled: {rec['skipped']}[/yellow]", highlight=False)
        return
    if rec["ok"]:
        console.print(
            "[green]reconciled[/green] with the server: "
            + ", ".join(f"{key} {harness[key]:,}" for key in RECONCILED)
            + " (warm-up included)",
            highlight=False,
        )
    else:
        console.print("[bold red]reconciliation differs[/bold red] (harness - server, warm-up included):", highlight=False)
        for key in RECONCILED:
            mark = "  <-- differs" if key in rec["diff"] else ""
            console.print(f"  {key:<9} harness {harness[key]:>12,}  server {server[key]:>12,}{mark}", highlight=False)
    duplicates = int(rec["server_rejected_by_reason"].get("DUPLICATE_CLIENT_ORDER_ID", 0))
    if duplicates:
        console.print(
            f"[yellow]{duplicates:,} orders rejected as DUPLICATE_CLIENT_ORDER_ID: this server already saw these client order ids "
            "(leave out --run-id for fresh ones)[/yellow]",
            highlight=False,
        )


def reason_lines(report: Mapping[str, Any]) -> list[str]:
    """The summary's lines on rejects and cancels by reason, each with its meaning (warm-up included)."""
    rec = report["reconciliation"]
    ours: Mapping[str, int] = report.get("rejected_by_reason", {})
    server: Mapping[str, int] = rec.get("server_rejected_by_reason", {})
    lines: list[str] = []
    if ours or server:
        lines.append("rejected, by reason (warm-up included):")
        for name in list(ours) + [n for n in server if n not in ours]:
            count = int(ours.get(name, 0))
            theirs = int(server.get(name, 0))
            note = "" if theirs == count else f" (server: {theirs:,})"
            lines.append(f"  {name:<26} {count:>11,}{note}  {reject_meaning(name)}")
    cancelled: Mapping[str, int] = rec.get("server_cancelled_by_reason", {})
    if cancelled:
        lines.append("cancelled, by reason (the server's counters over the run):")
        for name, count in cancelled.items():
            lines.append(f"  {name:<26} {int(count):>11,}  {cancel_meaning(name)}")
    return lines


def print_reasons(report: Mapping[str, Any], console: Console) -> None:
    for line in reason_lines(report):
        console.print(line, highlight=False, markup=False)
