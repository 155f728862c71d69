"""The report's decision table, "which transport for what", regenerated from every section of the run.

One row per transport: single-order latency, batched throughput, the rate
sustained within p99 ≤ 5 ms, fan-out at 1,000 subscribers, CPU per 1,000
orders, what an acknowledgement waits for, recovery time, zero configuration
and the operational parts. The measured columns come from this run's result
only; a transport whose figures did not reconcile shows them marked and is
never named a winner. The three design columns are facts about each
deployment (its docs and fault tests check them), not speed figures.
"""

from __future__ import annotations

import re
from typing import Any

from bench.report_sections import median, sections_of
from transports.registry import TRANSPORTS

# Design facts from each transport's descriptor (transports/<name>/descriptor.py; its docs and fault tests check them).
ACKNOWLEDGED_AFTER = {name: d.acknowledged_after for name, d in TRANSPORTS.items()}
ZERO_CONFIGURATION = {name: d.zero_configuration for name, d in TRANSPORTS.items()}
OPERATIONAL_PARTS = {name: d.operational_parts for name, d in TRANSPORTS.items()}
RECOVERY_DEPLOYMENT = {"dht": "dht", "inproc": ""}  # every other transport recovers as a single server on its journal


def _summary(result: dict[str, Any], name: str, mode: str) -> dict[str, Any]:
    data: dict[str, Any] = result.get("summary", {}).get(name, {}).get(mode, {})
    return data


def _measured(result: dict[str, Any], name: str, mode: str, key: str) -> str:
    data = _summary(result, name, mode)
    if not data or not data.get("runs"):
        return "-"
    spread = data["throughput_per_s"] if key == "throughput" else data["latency_us"][key]
    value = median(spread)
    if value is None:
        return "-"
    return f"{value:,.0f}" + ("" if data["all_reconciled"] else " (NOT reconciled)")


def _sustained(result: dict[str, Any], name: str) -> str:
    for _, section in sections_of(result, "rate-search"):
        data = (section.get("transports") or {}).get(name)
        if data:
            value = median((data.get("sustainable_per_s") or {}).get("5"))
            return "none" if not value else f"{value:,.0f}/s"
    return "-"


def _fanout(result: dict[str, Any], name: str, subscribers: str = "1000") -> str:
    for _, section in sections_of(result, "fanout"):
        data = (section.get("transports") or {}).get(name)
        if not data:
            continue
        point = (data.get("summary") or {}).get(subscribers)
        if not point:
            return data.get("failure") or "not measured"
        if point.get("failure"):
            return f"fails: {_first_clause(str(point['failure']))}"
        p99 = median((point.get("latency_us") or {}).get("p99"))
        whole = "every update" if point.get("complete") else "updates lost or late"
        return "-" if p99 is None else f"p99 {p99 / 1000:,.1f} ms, {whole}"
    return "-"


def _first_clause(failure: str) -> str:
    """What failed, whole (a cut at a fixed width ended cells mid-word); the fan-out section gives where and why."""
    return re.split(r" \(|; | \|\| ", failure, maxsplit=1)[0]


def _cpu(result: dict[str, Any], name: str, mode: str = "batch") -> str:
    cost = (result.get("cost_summary") or {}).get(name, {}).get(mode)
    if not cost:
        return "-"
    server, client = median(cost.get("server_cpu_s_per_1000")), median(cost.get("client_cpu_s_per_1000"))
    if server is None:
        return "-"
    return f"{server:.3f} + {client:.3f}" if client is not None else f"{server:.3f}"


def _recovery(result: dict[str, Any], name: str) -> str:
    deployment = RECOVERY_DEPLOYMENT.get(name, "single")
    if not deployment:
        return "-"
    for _, section in sections_of(result, "recovery"):
        deployments = section.get("deployments") or {}
        texts = []
        for label in (deployment, "nats-auto") if name == "nats" else (deployment,):
            data = deployments.get(label)
            value = median((data or {}).get("recovery_s"))
            if value is not None:
                texts.append(f"{label} {value:,.2f} s")
        return "; ".join(texts) or "-"
    return "-"


def rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """The decision table as data (the JSON report keeps it beside the figures it is built from)."""
    names = list(result.get("transports") or [])
    for _, section in result.get("sections", {}).items():
        names += [n for n in (section.get("transports") or {}) if n not in names]
    return [
        {
            "transport": name,
            "single_p50_us": _measured(result, name, "single", "p50"),
            "batch_orders_per_s": _measured(result, name, "batch", "throughput"),
            "sustainable_at_5ms": _sustained(result, name),
            "fanout_1000": _fanout(result, name),
            "cpu_s_per_1000_orders": _cpu(result, name),
            "acknowledged_after": ACKNOWLEDGED_AFTER.get(name, f"see docs/{name}.md"),
            "recovery": _recovery(result, name),
            "zero_configuration": ZERO_CONFIGURATION.get(name, "-"),
            "operational_parts": OPERATIONAL_PARTS.get(name, "-"),
        }
        for name in names
    ]


HEADERS = (
    "transport",
    "single order p50 µs",
    "batched orders/s",
    "sustained at p99 ≤ 5 ms",
    "fan-out, 1,000 subscribers",
    "CPU-s per 1,000 orders (server + client, batch)",
    "acknowledged after",
    "recovery (median)",
    "zero configuration",
    "operational parts",
)


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * 5 + "---|" * 4]
    lines += ["| " + " | ".join(row.values()) + " |" for row in rows(result)]
    return lines


def section_findings(result: dict[str, Any]) -> list[str]:
    """Winners of the sections beyond the order path, each backed by its figure (reconciled points only)."""
    lines: list[str] = []
    best_rate = max(
        (
            (median(((d.get("sustainable_per_s") or {}).get("5"))) or 0.0, n)
            for _, s in sections_of(result, "rate-search")
            for n, d in (s.get("transports") or {}).items()
            if n != "inproc"
        ),
        default=(0.0, ""),
    )
    at_1000 = sorted(
        (p99, name)
        for _, section in sections_of(result, "rate-search")
        for name, data in (section.get("transports") or {}).items()
        for point in data.get("curve", [])
        if name != "inproc" and point.get("offered_per_s") == 1000 and point.get("reconciled")
        for p99 in [median(point.get("p99_us"))]
        if p99 is not None
    )
    if at_1000:
        p99, name = at_1000[0]
        lines.append(f"**Lowest tail latency at 1,000 orders/s offered (16 traders, one order each):** {name}: p99 {p99:,.0f} µs.")
    if best_rate[1]:
        lines.append(f"**Highest rate within p99 ≤ 5 ms:** {best_rate[1]}: {best_rate[0]:,.0f} orders/s offered one order per submit.")
    costs = result.get("cost_summary") or {}
    cheapest = min(
        ((median(c.get("batch", {}).get("server_cpu_s_per_1000")), n) for n, c in costs.items() if n != "inproc"),
        key=lambda pair: float("inf") if pair[0] is None else pair[0],
        default=(None, ""),
    )
    if cheapest[0] is not None:
        lines.append(f"**Cheapest server per order (batch mode):** {cheapest[1]}: {cheapest[0]:.3f} CPU-s per 1,000 orders.")
    for _, section in sections_of(result, "recovery"):
        for deployment, data in (section.get("deployments") or {}).items():
            value = median(data.get("recovery_s"))
            if value is not None:
                kills, lost, doubled = data.get("kills"), data.get("lost"), data.get("doubled")
                lines.append(
                    f"**Recovery, {deployment}:** {value:,.2f} s from kill -9 to the next accepted order "
                    f"(median of {kills} kills; lost {lost}, doubled {doubled})."
                )
    return lines
