"""The report's sections beyond the order path: rate search, fan-out, cost, bursts, recovery (tables and charts).

Each renderer takes the run's result dictionary and returns Markdown lines
(empty when the run has no such section, so a user's own workload file gives
a report of just what it ran). Every figure printed is read from the result;
a section or transport that failed shows its failure text instead of figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bench.chart_style import plt

COST_KEYS = (
    ("server_cpu_s_per_1000", "server CPU-s / 1,000"),
    ("client_cpu_s_per_1000", "client CPU-s / 1,000"),
    ("server_peak_rss_bytes", "server peak RSS MiB"),
    ("client_peak_rss_bytes", "client peak RSS MiB"),
    ("bytes_per_order_out", "bytes/order out"),
    ("bytes_per_order_in", "bytes/order in"),
)


def sections_of(result: dict[str, Any], mode: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload name, section) of every workload of ``mode`` in this run."""
    for name, section in result.get("sections", {}).items():
        if section.get("mode") == mode:
            yield name, section


def median(spread: Any) -> float | None:
    """The median of a min/median/max dictionary (or a bare number), None when absent."""
    if isinstance(spread, dict):
        value = spread.get("median")
        return None if value is None else float(value)
    return None if spread is None else float(spread)


def num(spread: Any, scale: float = 1.0, digits: int = 0) -> str:
    """``median (min-max)`` of a spread, or the bare number, scaled; ``-`` when absent."""
    if isinstance(spread, dict) and spread.get("median") is not None:
        m, lo, hi = (float(spread[k]) / scale for k in ("median", "min", "max"))
        return f"{m:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})" if lo != hi else f"{m:,.{digits}f}"
    if isinstance(spread, int | float) and not isinstance(spread, bool):
        return f"{float(spread) / scale:,.{digits}f}"
    return "-"


def _failure_lines(name: str, section: dict[str, Any]) -> list[str]:
    return [f"**{name}: the section failed:** `{str(section['failure'])[:400]}`", ""] if section.get("failure") else []


# -------------------------------------------------------------- rate search
def rate_search_lines(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, section in sections_of(result, "rate-search"):
        out += [f"## Sustainable rate within a latency bound ({name})", "", *_failure_lines(name, section)]
        out += [
            "The open-loop offered rate steps up (one order per submit, latency from each order's intended send time); "
            "the sustainable rate is the highest offered rate whose p99 stayed within the bound, reconciled, median of the repeats.",
            "",
            "| transport | sustainable, p99 ≤ 5 ms (orders/s) | sustainable, p99 ≤ 50 ms (orders/s) | highest rung offered | note |",
            "|---|---:|---:|---:|---|",
        ]
        for transport, data in (section.get("transports") or {}).items():
            sustained = data.get("sustainable_per_s") or {}
            top = max((float(p["offered_per_s"]) for p in data.get("curve", [])), default=0.0)
            five, fifty = (_rate_text(sustained.get(bound)) for bound in ("5", "50"))
            out.append(f"| {transport} | {five} | {fifty} | {top:,.0f} | {data.get('failure') or ''} |")
        out += ["", f"![p99 against offered rate](chart:rate_{name})", ""]
    return out


def _rate_text(spread: Any) -> str:
    """A sustained rate; 0 means even the lowest rung missed the bound."""
    return "none (the lowest rung missed it)" if median(spread) == 0 else num(spread)


def rate_chart(section: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    for transport, data in (section.get("transports") or {}).items():
        curve = [p for p in data.get("curve", []) if median(p.get("p99_us")) is not None]
        if curve:
            xs = [float(p["offered_per_s"]) for p in curve]
            ys = [(median(p["p99_us"]) or 0.0) / 1000 for p in curve]
            ax.plot(xs, ys, marker="o", markersize=3, label=transport, linestyle="--" if transport == "inproc" else "-")
    for bound in (5, 50):
        ax.axhline(bound, color="#999999", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered orders/s (log)")
    ax.set_ylabel("p99 latency, ms (log; median of repeats)")
    ax.set_title("p99 against offered rate (dotted: the 5 ms and 50 ms bounds)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ fan-out
def fanout_lines(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, section in sections_of(result, "fanout"):
        params = section.get("parameters") or {}
        out += [f"## Market-data fan-out ({name})", "", *_failure_lines(name, section)]
        out += [
            f"{params.get('rate', 1000):,.0f} orders/s into one server; N subscribers on the transport's own market-data path. "
            "Latency runs from the gateway publishing an applied group to each subscriber receiving it, on this machine's "
            "monotonic clock (µs, median of the repeats).",
            "",
            "| transport | subscribers | orders accepted/s | updates delivered/s (all subscribers) | p50 µs | p99 µs | p99.9 µs | gaps "
            "| snapshot recoveries | every update delivered | target | failure |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|---|",
        ]
        slow: list[str] = []
        among = "the others"
        for transport, data in (section.get("transports") or {}).items():
            for count, point in (data.get("summary") or {}).items():
                latency = point.get("latency_us") or {}
                target = point.get("target_met")
                why = "; ".join(filter(None, [point.get("failure"), point.get("order_rate_note")]))
                out.append(
                    f"| {transport} | {int(count):,} | {num(point.get('orders_per_s'))} | {num(point.get('delivered_per_s'))} | "
                    f"{num(latency.get('p50'))} | {num(latency.get('p99'))} | {num(latency.get('p999'))} | {point.get('gaps', '-')} | "
                    f"{point.get('snapshot_recoveries', '-')} | {_yes(point.get('complete'))} | "
                    f"{'-' if target is None else _yes(target)} | {why} |"
                )
            if data.get("slow_consumer"):
                among = f"{data['slow_consumer'].get('subscribers', '-')}"
                slow.append(f"| {transport} | {_slow_text(data['slow_consumer'])} |")
            if data.get("failure"):
                out.append(f"| {transport} | - | - | - | - | - | - | - | - | - | - | {data['failure']} |")
        if slow:
            out += ["", f"**The slow consumer** (one subscriber of {among} stops reading; the others must not wait for it):", ""]
            out += ["| transport | effect |", "|---|---|", *slow]
        out += ["", f"![fan-out latency against subscribers](chart:fanout_{name})", ""]
    return out


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def _slow_text(slow: dict[str, Any]) -> str:
    """What pausing one subscriber did to the others, and how the paused one came back."""
    parts = [
        f"others' p99 {num(slow.get('others_p99_us_without_pause'))} µs without the pause, "
        f"{num(slow.get('others_p99_us_with_pause'))} µs with it (delay {num(slow.get('others_p99_delay_us'))} µs; "
        f"target ≤ 1 ms: {_yes(slow.get('target_met'))})",
        f"paused {slow.get('pause_s', '-')} s: {slow.get('how') or ('recovered' if slow.get('recovered') else 'not recovered')}",
    ]
    return "; ".join(parts)


def fanout_chart(section: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    for transport, data in (section.get("transports") or {}).items():
        summary = data.get("summary") or {}
        pairs = [(int(n), median((p.get("latency_us") or {}).get("p99"))) for n, p in summary.items()]
        points = sorted((n, v / 1000) for n, v in pairs if v is not None)
        if points:
            ax.plot([n for n, _ in points], [v for _, v in points], marker="o", markersize=3, label=transport)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subscribers (log)")
    ax.set_ylabel("p99 apply-to-receive, ms (log)")
    ax.set_title("Fan-out latency against subscribers")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------- cost
def cost_lines(result: dict[str, Any]) -> list[str]:
    costs = result.get("cost_summary") or {}
    if not costs:
        return []
    out = [
        "## Cost per order",
        "",
        "CPU-seconds per 1,000 orders from each process's own accounting over the measured window (the server's reported "
        "in its stats, the harness's its own), peak RSS of each, and bytes per order each way counted from the encoded "
        "frames; median of the repeats. A broker's own CPU is not in the server column (see each row's note).",
        "",
        "| transport | mode | " + " | ".join(label for _, label in COST_KEYS) + " | note |",
        "|---|---|" + "---:|" * len(COST_KEYS) + "---|",
    ]
    for transport, modes in costs.items():
        for mode, cost in modes.items():
            cells = [num(cost.get(key), 2**20 if key.endswith("rss_bytes") else 1.0, 0 if "bytes" in key else 3) for key, _ in COST_KEYS]
            out.append(f"| {transport} | {mode} | " + " | ".join(cells) + f" | {cost.get('note', '')} |")
    return [*out, "", "![CPU per 1,000 orders](chart:cost)", ""]


def cost_chart(result: dict[str, Any], mode: str = "batch") -> Any:
    costs = result.get("cost_summary") or {}
    names = [n for n in costs if median(costs[n].get(mode, {}).get("server_cpu_s_per_1000")) is not None]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    server = [median(costs[n][mode]["server_cpu_s_per_1000"]) or 0.0 for n in names]
    client = [median(costs[n][mode].get("client_cpu_s_per_1000")) or 0.0 for n in names]
    ax.bar(names, server, label="server", color="#2b6cb0")
    ax.bar(names, client, bottom=server, label="client (harness)", color="#90cdf4")
    ax.set_ylabel("CPU-seconds per 1,000 orders (median)")
    ax.set_title(f"CPU per 1,000 orders, {mode} mode")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# -------------------------------------------------------------------- burst
def burst_lines(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, section in sections_of(result, "burst"):
        out += [f"## Bursts ({name})", "", *_failure_lines(name, section)]
        out += [
            "Each transport is offered 10x its sustainable rate (the rate search's 5 ms figure from this run) for the burst, "
            "then its sustainable rate: the peak queueing latency over the burst, the refusals with OVERLOADED, the time to "
            "drain back to normal latency, and whether every acknowledged order is on the server (median of the repeats).",
            "",
            "| transport | normal rate/s | burst rate/s | peak p99 µs | peak max µs | OVERLOADED | drain s | lost | reconciled | failure |",
            "|---|---:|---:|---:|---:|---:|---:|---:|:---:|---|",
        ]
        for transport, data in (section.get("transports") or {}).items():
            peak = data.get("peak_latency_us") or {}
            out.append(
                f"| {transport} | {num(data.get('rate'))} | {num(data.get('burst_rate'))} | {num(peak.get('p99'))} | "
                f"{num(peak.get('max'))} | {num(data.get('overloaded'))} | {num(data.get('drain_s'), digits=2)} | "
                f"{data.get('lost', '-')} | {_yes(data.get('reconciled'))} | {data.get('failure') or ''} |"
            )
        out.append("")
    return out


# ----------------------------------------------------------------- recovery
def recovery_lines(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, section in sections_of(result, "recovery"):
        out += [f"## Recovery ({name})", "", *_failure_lines(name, section)]
        out += [
            "`kill -9` under load, then the time to the first order accepted after it: a single server restarted on its "
            "journal, `nats-auto`'s new leader, the DHT's new owner. min/median/max over the kills; lost and doubled count "
            "acknowledged orders missing or applied twice afterwards.",
            "",
            "| deployment | kills | recovery s median (min-max) | lost | doubled | failure |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for deployment, data in (section.get("deployments") or {}).items():
            out.append(
                f"| {deployment} | {data.get('kills', '-')} | {num(data.get('recovery_s'), digits=2)} | {data.get('lost', '-')} | "
                f"{data.get('doubled', '-')} | {data.get('failure') or ''} |"
            )
        big = section.get("journal_1gb")
        if big:
            out += ["", f"**A single server with {_journal_text(big)}**", ""]
        out.append("")
    return out


def _journal_text(big: dict[str, Any]) -> str:
    total = big.get("history_bytes")
    size = f"{float(total) / 2**20:,.0f} MiB of journal history" if total else "its journal history"
    restart = num(big.get("restart_s"), digits=2)
    met = big.get("target_met")
    verdict = "" if met is None else (" (target ≤ 2 s: met)" if met else " (target ≤ 2 s: NOT met)")
    extra = f" {big['note']}" if big.get("note") else ""
    return f"{size}: restart to the first accepted order in {restart} s{verdict}.{extra}"
