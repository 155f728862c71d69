"""Render a ``dex-bench`` result: JSON, Markdown, a self-contained HTML page and PNG charts.

Every number printed comes from the result dictionary of the same run; the
"which transport for what" section picks winners by comparing medians and
says so, and states durability as each transport's documented
acknowledgement point (a design fact checked by its fault tests, not a speed
figure). Charts: throughput per transport (median with min-max bars,
efficiency against in-process written on each bar) and latency percentile
curves p50 to p99.9 (HDR style), one panel per latency mode.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to files
import matplotlib.pyplot as plt

from transports.core.histogram import Histogram

PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9)
MODE_TITLES = {
    "single": "one order at a time (closed loop, 1 trader)",
    "rate": "open loop at a fixed rate (16 traders)",
    "batch": "batches of 1,000 (closed loop, 4 traders)",
}
# Where each transport's acknowledgement happens (design; see docs/<transport>.md and its fault tests).
ACKNOWLEDGED_AFTER = {
    "inproc": "nothing: no wire and no journal (the ceiling: harness, gateway and engine in one process)",
    "http": "the server's journal fsync (group commit), then the HTTP response",
    "grpc": "the server's journal fsync (group commit), then the stream reply",
    "zmq": "the server's journal fsync (group commit), then the ROUTER reply",
    "nats": "the server's journal fsync for core request/reply; JetStream's stream acknowledgement on the durable path",
    "amqp": "the broker's publisher confirm of a persistent message, then the server's journal fsync before the reply",
    "dht": "a Raft majority of the book's replica group has the command in its log",
}


def _spread_text(spread: dict[str, float] | None, unit: str = "") -> str:
    if not spread:
        return "-"
    return f"{spread['median']:,.0f}{unit} ({spread['min']:,.0f}-{spread['max']:,.0f})"


def _merged_histogram(result: dict[str, Any], transport: str, mode: str) -> Histogram | None:
    merged = Histogram()
    for point in result["runs"][transport]:
        if point["mode"] == mode and point.get("latency_histogram"):
            merged.merge(Histogram.from_dict(point["latency_histogram"]))
    return merged if merged.count else None


def percentile_curves(result: dict[str, Any], mode: str) -> dict[str, list[int]]:
    """Per transport: the latency (µs) at each of ``PERCENTILES``, from its runs' merged histograms."""
    curves: dict[str, list[int]] = {}
    for name in result["transports"]:
        hist = _merged_histogram(result, name, mode)
        if hist is not None:
            curves[name] = [hist.percentile(p) for p in PERCENTILES]
    return curves


# ------------------------------------------------------------------ charts
def _throughput_chart(result: dict[str, Any]) -> Any:
    names = [n for n in result["transports"] if result["summary"][n]["batch"]["throughput_per_s"]]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    spreads = [result["summary"][n]["batch"]["throughput_per_s"] for n in names]
    medians = [s["median"] for s in spreads]
    errors = [[m - s["min"] for m, s in zip(medians, spreads, strict=True)], [s["max"] - m for m, s in zip(medians, spreads, strict=True)]]
    bars = ax.bar(names, medians, yerr=errors, capsize=4, color=["#777777" if n == "inproc" else "#2b6cb0" for n in names])
    for bar, name in zip(bars, names, strict=True):
        eff = result["efficiency"].get(name)
        label = f"{bar.get_height():,.0f}/s" + (f"\n{eff:.0%} of in-process" if eff is not None and name != "inproc" else "")
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("orders/s (median; bars: min-max)")
    ax.set_title("Batched throughput (batches of 1,000, every reply matched)")
    ax.set_ylim(0, max([*medians, 1.0]) * 1.35)
    fig.tight_layout()
    return fig


def _latency_chart(result: dict[str, Any]) -> Any:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharey=True)
    xs = [1 / (1 - p / 100) for p in PERCENTILES]  # HDR style: 2x, 10x, 100x, 1000x
    for ax, mode in zip(axes, ("single", "rate"), strict=True):
        for name, ys in percentile_curves(result, mode).items():
            ax.plot(xs, ys, marker="o", markersize=3, label=name, linestyle="--" if name == "inproc" else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"p{p:g}" for p in PERCENTILES], fontsize=7)
        ax.minorticks_off()
        ax.set_title(MODE_TITLES[mode], fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("round-trip latency, µs (log)")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle("Latency percentiles (all repeats merged)", fontsize=10)
    fig.tight_layout()
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


# ---------------------------------------------------------------- findings
def findings(result: dict[str, Any]) -> list[str]:
    """ "Which transport for what", each line backed by a figure of this run."""
    summary = result["summary"]
    wired = [n for n in result["transports"] if n != "inproc"]
    lines: list[str] = []

    def best(mode: str, key: str, pick: str) -> tuple[str, float] | None:
        candidates: list[tuple[float, str]] = []
        for name in wired:
            data = summary[name][mode]
            spread = data["throughput_per_s"] if key == "throughput" else data["latency_us"][key]
            if spread and data["all_reconciled"]:
                candidates.append((spread["median"], name))
        if not candidates:
            return None
        value, name = min(candidates) if pick == "min" else max(candidates)
        return name, value

    single = best("single", "p50", "min")
    if single:
        p99 = summary[single[0]]["single"]["latency_us"]["p99"]
        lines.append(
            f"**Lowest latency, one order at a time:** {single[0]}: median p50 {single[1]:,.0f} µs, "
            f"p99 {p99['median']:,.0f} µs (median of {summary[single[0]]['single']['runs']} runs)."
        )
    loaded = best("rate", "p99", "min")
    if loaded:
        lines.append(
            f"**Lowest tail latency under a steady load:** {loaded[0]}: p99 {loaded[1]:,.0f} µs "
            f"at {result['parameters']['rate']:,.0f} orders/s offered "
            f"({summary[loaded[0]]['rate']['throughput_per_s']['median']:,.0f}/s achieved)."
        )
    top = best("batch", "throughput", "max")
    if top:
        eff = result["efficiency"].get(top[0])
        share = f", {eff:.0%} of the in-process ceiling" if eff is not None else ""
        lines.append(f"**Highest throughput:** {top[0]}: {top[1]:,.0f} orders/s in batches of 1,000{share}.")
    ceiling = (summary.get("inproc", {}).get("batch", {}).get("throughput_per_s") or {}).get("median")
    if ceiling:
        lines.append(
            f"**The ceiling:** the same harness and gateway with no wire reach {ceiling:,.0f} orders/s; "
            "every transport's efficiency is measured against it."
        )
    failed = [n for n in result["transports"] if any(summary[n][m]["failed_runs"] or not summary[n][m]["runs"] for m in summary[n])]
    if failed:
        lines.append(f"**Incomplete:** points failed for {', '.join(failed)}; their figures above are partial or missing.")
    lines.append(
        "**Durability** is not a speed figure: the table below says what each transport waits for before it "
        "acknowledges an order; every mode above ran with that default in place."
    )
    if "nats" in wired:
        lines.append(
            "**Zero configuration:** `nats-auto` (NATS) is the only deployment here that finds or starts its broker "
            "and elects its matching server by itself (docs/nats.md); this report does not time it."
        )
    lines.append("**Fan-out** of market data to many subscribers is not measured by this report.")
    return lines


# ------------------------------------------------------------------ tables
def _tables(result: dict[str, Any]) -> list[str]:
    summary = result["summary"]
    rows = [
        "| transport | batch orders/s median (min-max) | efficiency | single p50 µs | single p99 µs | "
        "rate achieved/s | rate p50 µs | rate p99 µs | rate p99.9 µs | errors | reconciled |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for name in result["transports"]:
        s = summary[name]
        eff = result["efficiency"].get(name)
        errors = sum(s[m]["order_errors"] for m in s)
        reconciled = all(s[m]["all_reconciled"] for m in s)
        rows.append(
            f"| {name} | {_spread_text(s['batch']['throughput_per_s'])} | {'-' if eff is None else f'{eff:.1%}'} | "
            f"{_spread_text(s['single']['latency_us']['p50'])} | {_spread_text(s['single']['latency_us']['p99'])} | "
            f"{_spread_text(s['rate']['throughput_per_s'])} | "
            f"{_spread_text(s['rate']['latency_us']['p50'])} | {_spread_text(s['rate']['latency_us']['p99'])} | "
            f"{_spread_text(s['rate']['latency_us']['p999'])} | {errors:,} | {'yes' if reconciled else 'NO'} |"
        )
    return rows


def _wire_tables(result: dict[str, Any]) -> list[str]:
    """Durability apart from the wire, and every transport beside its own wire's echo ceiling."""
    from bench.comparison import WIRE_OF

    summary = result["summary"]
    wires = result.get("wire_ceilings", {})
    engine = (result.get("engine_alone", {}).get("per_s") or {}).get("median")
    rows = [
        "| transport | batch orders/s, default durability | batch orders/s, `--fsync off` | single p50 / p99 µs, `--fsync off` | "
        "wire | wire echo, batch orders/s | wire echo single p50 / p99 µs | of wire-or-engine | of in-process |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name in result["transports"]:
        s = summary[name]
        off = s.get("batch_fsync_off", {})
        single_off = s.get("single_fsync_off", {})
        wire = WIRE_OF.get(name, "")
        echo = wires.get(wire, {})
        weff = result.get("wire_efficiency", {}).get(name)
        eff = result["efficiency"].get(name)
        off_text = (off.get("skipped") and "n/a") or _spread_text(off.get("throughput_per_s"))
        off_latency = single_off.get("latency_us", {})
        single_text = (
            "n/a" if single_off.get("skipped") else f"{_spread_text(off_latency.get('p50'))} / {_spread_text(off_latency.get('p99'))}"
        )
        rows.append(
            f"| {name} | {_spread_text(s['batch']['throughput_per_s'])} | {off_text} | {single_text} | {wire or '-'} | "
            f"{_spread_text(echo.get('batch_orders_per_s'))} | "
            f"{_spread_text(echo.get('single_p50_us'))} / {_spread_text(echo.get('single_p99_us'))} | "
            f"{'-' if weff is None else f'{weff:.1%}'} | {'-' if eff is None else f'{eff:.1%}'} |"
        )
    tcp = wires.get("tcp", {})
    return [
        *rows,
        "",
        f"Engine alone on the same seeded workload: {_spread_text(result.get('engine_alone', {}).get('per_s'))} commands/s"
        + (f" (median {engine:,.0f})." if engine else "."),
        f"Raw asyncio TCP echo with the same payloads: {_spread_text(tcp.get('batch_orders_per_s'))} orders/s in batches, "
        f"single p50 / p99 {_spread_text(tcp.get('single_p50_us'))} / {_spread_text(tcp.get('single_p99_us'))} µs.",
        "A transport skipped with `--fsync off` acknowledges after something other than our journal (see the table above).",
    ]


def _machine_lines(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    v = result["versions"]
    libs = ", ".join(f"{k} {val}" for k, val in v["libraries"].items())
    brokers = ", ".join(f"{k} {val}" for k, val in v["brokers"].items())
    p = result["parameters"]
    return [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_bytes'] / 2**30:.1f} GiB, {m['platform']}; "
        f"load average at start {m['load_average_at_start']}, at end {result['load_average_at_end']}.",
        f"- {v['python']}. Libraries: {libs}.",
        f"- Brokers and runtimes: {brokers}.",
        f"- Parameters: {p['repeat']} repeat(s) of every point, {p['duration_s']:g} s measured after {p['warmup_s']:g} s warm-up, "
        f"seed {p['seed']}{' (quick smoke run)' if p['quick'] else ''}; the whole run took {result['elapsed_s']:,.0f} s.",
        "- Server and harness share this machine's cores; figures are what this machine did in this run, nothing is extrapolated.",
    ]


def markdown(result: dict[str, Any], charts: dict[str, str]) -> str:
    out = [
        "# Transport comparison",
        "",
        "Same engine, same seeded workload, same `dex-trader` harness, same machine, one run of `make bench` "
        "(`dex-bench`). Figures are medians over the repeats, with (min-max). Regenerate with `make bench`.",
        "",
        *_machine_lines(result),
        "",
        "## Results",
        "",
        "Modes: **single** = " + MODE_TITLES["single"] + "; **rate** = " + MODE_TITLES["rate"] + ", latency from each order's "
        "intended send time (coordinated omission corrected); **batch** = " + MODE_TITLES["batch"] + ". Efficiency = "
        "batch throughput ÷ in-process batch throughput of this run.",
        "",
        *_tables(result),
        "",
        "## The wire, the disk and the engine apart",
        "",
        "Each transport's batch throughput with its default durability and with `--fsync off` (a fresh server each), "
        "beside its own wire's trivial echo server carrying the same payloads (`bench/wire_ceiling.py`: 4 clients, "
        "a lean batch of the same size each way; one client for single requests), all in this run. "
        '"Of wire-or-engine" = batch throughput ÷ the lower of the wire\'s echo ceiling and the engine alone.',
        "",
        *_wire_tables(result),
        "",
        f"![throughput]({charts['throughput']})",
        "",
        f"![latency]({charts['latency']})",
        "",
        "## Which transport for what",
        "",
        *[f"- {line}" for line in findings(result)],
        "",
        "| transport | acknowledged after |",
        "|---|---|",
        *[f"| {n} | {ACKNOWLEDGED_AFTER.get(n, 'see docs/' + n + '.md')} |" for n in result["transports"]],
        "",
        "## Latency percentiles (µs, all repeats merged)",
        "",
    ]
    for mode in ("single", "rate"):
        curves = percentile_curves(result, mode)
        out += [f"**{mode}** ({MODE_TITLES[mode]})", "", "| transport | " + " | ".join(f"p{p:g}" for p in PERCENTILES) + " |"]
        out.append("|---|" + "---:|" * len(PERCENTILES))
        out += [f"| {n} | " + " | ".join(f"{v:,}" for v in ys) + " |" for n, ys in curves.items()]
        out.append("")
    return "\n".join(out) + "\n"


def html_page(result: dict[str, Any], md_text: str, pngs: dict[str, bytes]) -> str:
    """A self-contained page: the Markdown's content as simple HTML, charts inline."""
    body: list[str] = []
    in_table = False
    for line in md_text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-:"):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("!["):
            key = line[2 : line.index("]")]
            data = base64.b64encode(pngs[key]).decode()
            body.append(f'<img alt="{key}" src="data:image/png;base64,{data}">')
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<p>• {_inline(line[2:])}</p>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    if in_table:
        body.append("</table>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
    )
    head = f"<meta charset='utf-8'><title>Transport comparison</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def write_reports(result: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "transport-comparison"
    pngs = {"throughput": _png(_throughput_chart(result)), "latency": _png(_latency_chart(result))}
    charts = {key: f"{stem}-{key}.png" for key in pngs}
    files = []
    for key, data in pngs.items():
        path = out_dir / charts[key]
        path.write_bytes(data)
        files.append(path)
    md_text = markdown(result, charts)
    slim = {
        **result,
        "runs": {n: [{k: v for k, v in p.items() if k != "latency_histogram"} for p in runs] for n, runs in result["runs"].items()},
    }
    slim["latency_percentiles_us"] = {mode: percentile_curves(result, mode) for mode in ("single", "rate", "batch")}
    slim["percentiles"] = list(PERCENTILES)
    for name, text in (
        (f"{stem}.json", json.dumps(slim, indent=1) + "\n"),
        (f"{stem}.md", md_text),
        (f"{stem}.html", html_page(result, md_text, pngs)),
    ):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files
