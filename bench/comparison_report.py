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

from bench import report_decision as decision
from bench import report_sections as sections
from bench.chart_style import plt
from transports.core.histogram import Histogram

PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9)
MODE_TITLES = {
    "single": "one order at a time (closed loop, 1 trader)",
    "rate": "open loop at a fixed rate (16 traders)",
    "batch": "batches of 1,000 (closed loop, 4 traders)",
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
    names = [n for n in result["transports"] if _mode(result, n, "batch").get("throughput_per_s")]
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
    for ax, mode in zip(axes, ("single", "rate"), strict=True):  # a mode the run lacks leaves its panel empty
        for name, ys in percentile_curves(result, mode).items():
            ax.plot(xs, ys, marker="o", markersize=3, label=name, linestyle="--" if name == "inproc" else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"p{p:g}" for p in PERCENTILES], fontsize=7)
        ax.minorticks_off()
        ax.set_title(MODE_TITLES.get(mode, mode), fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("round-trip latency, µs (log)")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:  # a mode the run lacks has no curves to name
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Latency percentiles (all repeats merged)", fontsize=10)
    fig.tight_layout()
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


# ---------------------------------------------------------------- findings
def _mode(result: dict[str, Any], name: str, mode: str) -> dict[str, Any]:
    """The summary of ``mode`` for transport ``name``; empty when the run had no such workload."""
    data: dict[str, Any] = result.get("summary", {}).get(name, {}).get(mode, {})
    return data


def _best(result: dict[str, Any], mode: str, key: str, pick: str) -> tuple[str, float] | None:
    """The reconciled transport (not in process) with the lowest latency ``key`` or the highest throughput in ``mode``."""
    candidates: list[tuple[float, str]] = []
    for name in result.get("transports", []):
        data = _mode(result, name, mode)
        if name == "inproc" or not data:
            continue
        spread = data["throughput_per_s"] if key == "throughput" else data["latency_us"][key]
        if spread and data["all_reconciled"]:
            candidates.append((spread["median"], name))
    if not candidates:
        return None
    value, name = min(candidates) if pick == "min" else max(candidates)
    return name, value


def findings(result: dict[str, Any]) -> list[str]:
    """ "Which transport for what", each line backed by a figure of this run."""
    lines: list[str] = []
    single = _best(result, "single", "p50", "min")
    if single:
        data = _mode(result, single[0], "single")
        lines.append(
            f"**Lowest latency, one order at a time:** {single[0]}: median p50 {single[1]:,.0f} µs, "
            f"p99 {data['latency_us']['p99']['median']:,.0f} µs (median of {data['runs']} runs)."
        )
    loaded = _best(result, "rate", "p99", "min")
    if loaded:
        achieved = _mode(result, loaded[0], "rate")["throughput_per_s"]["median"]
        lines.append(
            f"**Lowest tail latency under a steady load:** {loaded[0]}: p99 {loaded[1]:,.0f} µs ({achieved:,.0f} orders/s achieved)."
        )
    top = _best(result, "batch", "throughput", "max")
    if top:
        eff = result.get("efficiency", {}).get(top[0])
        share = f", {eff:.0%} of the in-process ceiling" if eff is not None else ""
        lines.append(f"**Highest throughput:** {top[0]}: {top[1]:,.0f} orders/s in batches of 1,000{share}.")
    ceiling = (_mode(result, "inproc", "batch").get("throughput_per_s") or {}).get("median")
    if ceiling:
        lines.append(
            f"**The ceiling:** the same harness and gateway with no wire reach {ceiling:,.0f} orders/s; "
            "every transport's efficiency is measured against it."
        )
    lines += decision.section_findings(result)
    summary = result.get("summary", {})
    failed = [
        n
        for n in result.get("transports", [])
        if any(m["failed_runs"] or (not m["runs"] and "skipped" not in m) for m in summary[n].values())
    ]
    if failed:
        lines.append(f"**Incomplete:** points failed for {', '.join(failed)}; their figures above are partial or missing.")
    lines.append(
        "**Durability** is not a speed figure: the decision table says what each transport waits for before it "
        "acknowledges an order; every mode ran with that default in place unless its name says `fsync_off`."
    )
    return lines


# ------------------------------------------------------------------ tables
def _tables(result: dict[str, Any]) -> list[str]:
    """Batch throughput, single-order latency and, when the run has the fixed-rate workload, latency under load."""
    with_rate = "rate" in result.get("modes", [])
    rate_head = " rate achieved/s | rate p50 µs | rate p99 µs | rate p99.9 µs |" if with_rate else ""
    rows = [
        f"| transport | batch orders/s median (min-max) | efficiency | single p50 µs | single p99 µs |{rate_head} errors | reconciled |",
        "|---|---:|---:|---:|---:|" + ("---:|" * 4 if with_rate else "") + "---:|:---:|",
    ]
    for name in result["transports"]:
        s = result["summary"][name]
        batch, single, rate = (s.get(m, {}) for m in ("batch", "single", "rate"))
        eff = result.get("efficiency", {}).get(name)
        errors = sum(s[m]["order_errors"] for m in s)
        reconciled = all(s[m]["all_reconciled"] for m in s if s[m]["runs"])
        lat = {m: d.get("latency_us", {}) for m, d in (("single", single), ("rate", rate))}
        rate_cells = (
            f" {_spread_text(rate.get('throughput_per_s'))} | {_spread_text(lat['rate'].get('p50'))} | "
            f"{_spread_text(lat['rate'].get('p99'))} | {_spread_text(lat['rate'].get('p999'))} |"
            if with_rate
            else ""
        )
        rows.append(
            f"| {name} | {_spread_text(batch.get('throughput_per_s'))} | {'-' if eff is None else f'{eff:.1%}'} | "
            f"{_spread_text(lat['single'].get('p50'))} | {_spread_text(lat['single'].get('p99'))} |{rate_cells} {errors:,} | "
            f"{'yes' if reconciled else 'NO'} |"
        )
    return rows


def _wire_tables(result: dict[str, Any]) -> list[str]:
    """Durability apart from the wire, and every transport beside its own wire's echo ceiling."""
    from bench.comparison import WIRE_OF

    wires = result.get("wire_ceilings", {})
    engine = (result.get("engine_alone", {}).get("per_s") or {}).get("median")
    rows = [
        "| transport | batch orders/s, default durability | batch orders/s, `--fsync off` | single p50 / p99 µs, `--fsync off` | "
        "wire | wire echo, batch orders/s | wire echo single p50 / p99 µs | of wire-or-engine | of in-process |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name in result["transports"]:
        off = _mode(result, name, "batch_fsync_off")
        single_off = _mode(result, name, "single_fsync_off")
        wire = WIRE_OF.get(name, "")
        echo = wires.get(wire, {})
        weff = result.get("wire_efficiency", {}).get(name)
        eff = result.get("efficiency", {}).get(name)
        off_text = (off.get("skipped") and "n/a") or _spread_text(off.get("throughput_per_s"))
        off_latency = single_off.get("latency_us", {})
        single_text = (
            "n/a" if single_off.get("skipped") else f"{_spread_text(off_latency.get('p50'))} / {_spread_text(off_latency.get('p99'))}"
        )
        rows.append(
            f"| {name} | {_spread_text(_mode(result, name, 'batch').get('throughput_per_s'))} | {off_text} | {single_text} | "
            f"{wire or '-'} | {_spread_text(echo.get('batch_orders_per_s'))} | "
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
        "A transport skipped with `--fsync off` acknowledges after something other than our journal (see the decision table).",
    ]


def _machine_lines(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    v = result["versions"]
    libs = ", ".join(f"{k} {val}" for k, val in v["libraries"].items())
    brokers = ", ".join(f"{k} {val}" for k, val in v["brokers"].items())
    quick = " (quick smoke run)" if result.get("parameters", {}).get("quick") else ""
    return [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_bytes'] / 2**30:.1f} GiB, {m['platform']}; "
        f"load average at start {m['load_average_at_start']}, at end {result['load_average_at_end']}.",
        f"- {v['python']}. Libraries: {libs}.",
        f"- Brokers and runtimes: {brokers}.",
        f"- Workload file `{result.get('parameters', {}).get('workload_file', '-')}`{quick}; the whole run took "
        f"{result['elapsed_s']:,.0f} s.",
        "- Servers, brokers and clients share this machine's cores; figures are what this machine did in this run, nothing extrapolated.",
    ]


def _workload_lines(result: dict[str, Any]) -> list[str]:
    rows = ["| workload | mode | what it runs | transports | points |", "|---|---|---|---|---|"]
    for w in result.get("workloads", []):
        points = f"{w['repeats']} x {w['duration_s']:g} s (+{w['warmup_s']:g} s warm-up)"
        if w["mode"] == "recovery":
            points = f"{w['kills']} kills per deployment"
        transports = ", ".join(w["transports"]) or "all"
        rows.append(f"| {w['name']} | {w['mode']} | {w['description'] or '-'} | {transports} | {points} |")
    return rows


AUTH_MAX_BATCH_LOSS = 0.10  # issue 17's bound: authentication costs at most 10% of batched throughput
AUTH_MAX_SINGLE_P50_US = 50  # ... and at most 50 µs of single-order p50


def _auth_lines(result: dict[str, Any]) -> list[str]:
    """Each transport with and without authentication (``--auth keys``), measured in the same run.

    Ed25519 keys (``single_auth``/``batch_auth``) always; HMAC-SHA256 keys (``*_auth_hmac``, the auth suite) in
    columns of their own when the run has them.
    """
    hmac = any(m in result.get("modes", []) for m in ("single_auth_hmac", "batch_auth_hmac"))
    schemes = [("keys", "_auth"), *([("hmac", "_auth_hmac")] if hmac else [])]
    head = "| transport | batch orders/s, auth off | single p50 µs, off |"
    rule = "|---|---:|---:|"
    for label, _ in schemes:
        head += f" batch, {label} | change | p50 µs, {label} | change µs | within bounds, {label} |"
        rule += "---:|---:|---:|---:|:---:|"
    rows = [
        "### What authentication costs",
        "",
        "The single and batch workloads again on a server started with `--auth keys`, every trader proving its API key "
        "the wire's own way (docs/security.md); a fresh server each. `keys`: Ed25519 keys; `hmac`: HMAC-SHA256 keys. "
        f"Bounds: at most {AUTH_MAX_BATCH_LOSS:.0%} of batched throughput and {AUTH_MAX_SINGLE_P50_US} µs of single-order p50.",
        "",
        head,
        rule,
    ]
    left_out = [n for n in result["transports"] if n != "inproc" and not any(_mode(result, n, f"batch{s}") for _, s in schemes)]
    for name in result["transports"]:
        if not any((m := _mode(result, name, f"batch{suffix}")) and not m.get("skipped") for _, suffix in schemes):
            continue
        batch, p50 = _median(result, name, "batch", "throughput_per_s"), _median(result, name, "single", "p50")
        row = f"| {name} | {_number(batch)} | {_number(p50)} |"
        for _, suffix in schemes:
            batch_keys = _median(result, name, f"batch{suffix}", "throughput_per_s")
            p50_keys = _median(result, name, f"single{suffix}", "p50")
            change = None if not batch or batch_keys is None else batch_keys / batch - 1
            delta = None if p50 is None or p50_keys is None else p50_keys - p50
            ok = change is not None and delta is not None and change >= -AUTH_MAX_BATCH_LOSS and delta <= AUTH_MAX_SINGLE_P50_US
            row += (
                f" {_number(batch_keys)} | {'-' if change is None else f'{change:+.1%}'} | {_number(p50_keys)} | "
                f"{'-' if delta is None else f'{delta:+,.0f}'} | {'-' if change is None or delta is None else ('yes' if ok else 'NO')} |"
            )
        rows.append(row)
    if left_out:
        rows += ["", f"Not in the authenticated workloads (their workload files say why): {', '.join(left_out)}."]
    return [*rows, ""]


def _median(result: dict[str, Any], name: str, mode: str, key: str) -> float | None:
    point = _mode(result, name, mode)
    spread = point.get("throughput_per_s") if key == "throughput_per_s" else point.get("latency_us", {}).get(key)
    return None if not spread else float(spread["median"])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _order_path_lines(result: dict[str, Any], charts: dict[str, str]) -> list[str]:
    if not result.get("transports"):
        return []
    descriptions = {w["name"]: w["description"] for w in result.get("workloads", [])}
    modes = "; ".join(f"**{m}** = {descriptions.get(m) or m}" for m in result.get("modes", []))
    out = [
        "## Order path",
        "",
        f"Workloads: {modes}. Open-loop latency runs from each order's intended send time (coordinated omission corrected). "
        "Efficiency = batch throughput ÷ in-process batch throughput of this run.",
        "",
        *_tables(result),
        "",
    ]
    if result.get("wire_ceilings"):
        out += [
            "### The wire, the disk and the engine apart",
            "",
            "Each transport's batch throughput with its default durability and with `--fsync off` (a fresh server each), "
            "beside its own wire's trivial echo server carrying the same payloads (`bench/wire_ceiling.py`: 4 clients, "
            "a lean batch of the same size each way; one client for single requests), all in this run. "
            '"Of wire-or-engine" = batch throughput ÷ the lower of the wire\'s echo ceiling and the engine alone.',
            "",
            *_wire_tables(result),
            "",
        ]
    if "single_auth" in result.get("modes", []) or "batch_auth" in result.get("modes", []):
        out += _auth_lines(result)
    out += [f"![{key}]({charts[key]})" for key in ("throughput", "latency") if key in charts]
    out.append("")
    for mode in ("single", "rate"):
        curves = percentile_curves(result, mode)
        if not curves:
            continue
        out += [
            f"**Latency percentiles, {mode}** (µs, all repeats merged)",
            "",
            "| transport | " + " | ".join(f"p{p:g}" for p in PERCENTILES) + " |",
        ]
        out.append("|---|" + "---:|" * len(PERCENTILES))
        out += [f"| {n} | " + " | ".join(f"{v:,}" for v in ys) + " |" for n, ys in curves.items()]
        out.append("")
    return out


def markdown(result: dict[str, Any], charts: dict[str, str]) -> str:
    out = [
        "# Transport comparison",
        "",
        "Same engine, same seeded workloads, same `dex-trader` harness, same machine, one run of `dex-bench` over workload files "
        "(`bench/workloads/`, format in `docs/benchmarks.md`). Figures are medians over the repeats, with (min-max). "
        "Regenerate with `make bench`.",
        "",
        *_machine_lines(result),
        "",
        *_workload_lines(result),
        "",
        "## Which transport for what",
        "",
        *decision.table(result),
        "",
        *[f"- {line}" for line in findings(result)],
        "",
        *_order_path_lines(result, charts),
        *sections.rate_search_lines(result),
        *sections.fanout_lines(result),
        *sections.cost_lines(result),
        *sections.burst_lines(result),
        *sections.recovery_lines(result),
    ]
    text = "\n".join(out) + "\n"
    for key, file in charts.items():
        text = text.replace(f"(chart:{key})", f"({file})")
    return text


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
        if line.startswith("![") and line.endswith(")"):
            alt, file = line[2:-1].split("](", 1)
            data = base64.b64encode(pngs[file]).decode()
            body.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        elif line.startswith("### "):
            body.append(f"<h3>{html.escape(line[4:])}</h3>")
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


def _charts(result: dict[str, Any]) -> dict[str, Any]:
    """Every chart this run has data for, by key (the Markdown names them ``chart:<key>`` or by key)."""
    figures: dict[str, Any] = {}
    if any(_mode(result, n, "batch").get("throughput_per_s") for n in result.get("transports", [])):
        figures["throughput"] = _throughput_chart(result)
    if any(percentile_curves(result, m) for m in ("single", "rate")):
        figures["latency"] = _latency_chart(result)
    for name, section in sections.sections_of(result, "rate-search"):
        figures[f"rate_{name}"] = sections.rate_chart(section)
    for name, section in sections.sections_of(result, "fanout"):
        figures[f"fanout_{name}"] = sections.fanout_chart(section)
    if result.get("cost_summary"):
        figures["cost"] = sections.cost_chart(result)
    return figures


def write_reports(result: dict[str, Any], out_dir: Path, stem: str = "transport-comparison") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = {key: _png(fig) for key, fig in _charts(result).items()}
    charts = {key: f"{stem}-{key}.png" for key in pngs}
    files = []
    for key, data in pngs.items():
        path = out_dir / charts[key]
        path.write_bytes(data)
        files.append(path)
    md_text = markdown(result, charts)
    slim = {
        **result,
        "runs": {n: [{k: v for k, v in p.items() if k != "latency_histogram"} for p in runs] for n, runs in result.get("runs", {}).items()},
    }
    slim["latency_percentiles_us"] = {mode: percentile_curves(result, mode) for mode in ("single", "rate", "batch")}
    slim["percentiles"] = list(PERCENTILES)
    slim["decision"] = decision.rows(result)
    for name, text in (
        (f"{stem}.json", json.dumps(slim, indent=1) + "\n"),
        (f"{stem}.md", md_text),
        (f"{stem}.html", html_page(result, md_text, {charts[k]: v for k, v in pngs.items()})),
    ):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files
