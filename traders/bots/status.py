"""What ``dex-bots run`` prints: one status line a second for all workers, ownership changes, the final summary.

Pure functions over the JSON each worker writes (``WorkerStats.summary``,
``--stats-out``): the supervisor sums the counters of every worker process
it started (a restarted worker's earlier process included), so the totals
never go back. Sample of the output (each line is one line; wrapped here)::

    dex-bots: 4/4 workers, 16/16 partitions | updates 96 | orders 54 (+12/s) acked 54 fills 8
        | risk held 3 (rate 3) | refused 0 | backlog 0 | latency p50 45 ms p99 50 ms
    dex-bots: partitions w0 0,4,8,12 | w1 1,5,9,13 | w2 2,6,10,14 | w3 3,7,11,15
    dex-bots summary: 42 s, 4 workers (0 restarts); 480 price updates received, 12400 bot evaluations
        -> 312 orders sent, 310 acknowledged, 2 refused, 86 fills
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from traders.bots.stats import percentile

COUNTERS = ("updates", "evaluated", "orders", "acked", "fills", "superseded", "duplicates", "exchange_rejects", "malformed")


@dataclass
class Totals:
    """The counters of several worker processes added up."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    risk: dict[str, int] = field(default_factory=dict)  # risk stage -> orders held back
    refused: dict[str, int] = field(default_factory=dict)  # exchange reject reason -> orders
    queue_depth: int = 0

    def add(self, stats: Mapping[str, Any]) -> None:
        for name in COUNTERS:
            self.counts[name] += int(stats.get(name, 0))
        _add(self.risk, stats.get("rejected", {}))
        _add(self.refused, stats.get("exchange_reasons", {}))
        self.queue_depth += int(stats.get("queue_depth", 0))


def _add(into: dict[str, int], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        into[key] = into.get(key, 0) + int(value)


def totals(stats: Iterable[Mapping[str, Any]]) -> Totals:
    out = Totals()
    for one in stats:
        out.add(one)
    return out


def ranges(numbers: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5`` (``none`` when empty)."""
    parts: list[list[int]] = []
    for n in sorted(numbers):
        if parts and parts[-1][-1] == n - 1:
            parts[-1][-1] = n
        else:
            parts.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in parts) or "none"


def _nonzero(counts: Mapping[str, int]) -> str:
    shown = [f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v]
    return f" ({', '.join(shown)})" if shown else ""


def _ms(us: int) -> str:
    return f"{us / 1000:.0f} ms" if us >= 10_000 else f"{us / 1000:.1f} ms"


def status_line(total: Totals, live: int, workers: int, owned: int, partitions: int, orders_per_s: float, window_us: Sequence[int]) -> str:
    """The one line a second: cumulative counts, the last second's order rate and latency (all workers).

    ``updates`` counts deliveries: a price update reaches every partition queue bound to its pair."""
    c = total.counts
    held = sum(total.risk.values())
    refused = sum(total.refused.values())
    window = sorted(window_us)
    latency = f"latency p50 {_ms(percentile(window, 0.5))} p99 {_ms(percentile(window, 0.99))}" if window else "latency -"
    return (
        f"dex-bots: {live}/{workers} workers, {owned}/{partitions} partitions | updates {c['updates']} | "
        f"orders {c['orders']} (+{orders_per_s:.0f}/s) acked {c['acked']} fills {c['fills']} | "
        f"risk held {held}{_nonzero(total.risk)} | refused {refused}{_nonzero(total.refused)} | "
        f"backlog {total.queue_depth} | {latency}"
    )


def ownership_line(owners: Mapping[int, Iterable[int]]) -> str:
    """Which worker runs which partitions (printed when that changes)."""
    return "dex-bots: partitions " + " | ".join(f"w{w} {ranges(owners[w])}" for w in sorted(owners))


@dataclass(frozen=True)
class BotActivity:
    """What the bots did in this run, from the positions table (orders counted per bot, before and after)."""

    bots: int
    traded: dict[str, int]  # bot id -> orders this run
    strategy_of: dict[str, str]

    def line(self) -> str:
        by_strategy: dict[str, list[int]] = {}
        for bot_id, orders in self.traded.items():
            entry = by_strategy.setdefault(self.strategy_of.get(bot_id, "?"), [0, 0])
            entry[0] += 1
            entry[1] += orders
        parts = ", ".join(f"{name} {bots} bots {orders} orders" for name, (bots, orders) in sorted(by_strategy.items()))
        busiest = sorted(self.traded.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        top = ", ".join(f"{bot_id} {orders}" for bot_id, orders in busiest)
        return f"dex-bots summary: bots {len(self.traded)} of {self.bots} traded" + (f" ({parts}); busiest {top}" if parts else "")


def summary_lines(
    total: Totals, seconds: float, workers: int, restarts: int, latencies_us: Sequence[int], activity: BotActivity | None
) -> list[str]:
    c = total.counts
    refused = sum(total.refused.values())
    lines = [
        f"dex-bots summary: {seconds:.0f} s, {workers} workers ({restarts} restarts); {c['updates']} price updates received, "
        f"{c['evaluated']} bot evaluations -> {c['orders']} orders sent, {c['acked']} acknowledged, {refused} refused, "
        f"{c['fills']} fills",
        f"dex-bots summary: held back by the risk filter {sum(total.risk.values())}{_nonzero(total.risk)}; "
        f"refused by the exchange {refused}{_nonzero(total.refused)}; stale updates skipped {c['superseded']}",
    ]
    if latencies_us:
        values = sorted(latencies_us)
        lines.append(
            f"dex-bots summary: price published -> order answered p50 {_ms(percentile(values, 0.5))}, "
            f"p99 {_ms(percentile(values, 0.99))}, max {_ms(values[-1])} over {len(values)} orders"
        )
    if activity is not None:
        lines.append(activity.line())
    return lines
