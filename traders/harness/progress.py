"""The live view: one line of numbers a second, merged over every process.

Each process reports a snapshot a second (``ProcessRunner.snapshot``): its
running counts, a histogram of the last second and its measured histogram so
far. The view keeps the latest snapshot per process and renders the sums:
on a terminal as a rich ``Live`` table redrawn in place, otherwise as one
plain line per second (logs, CI).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from traders.harness.runner import Counts
from transports.core.histogram import Histogram

_COLUMNS = ("elapsed", "phase", "sent", "rate/s", "accepted", "rejected", "trades", "errors", "p50 1s", "p99 1s", "p50 all", "p99 all")


def format_us(value: int) -> str:
    """Microseconds as a short human duration: ``850µs``, ``1.25ms``, ``2.1s``."""
    if value < 1000:
        return f"{value}µs"
    if value < 1_000_000:
        return f"{value / 1000:.2f}ms"
    return f"{value / 1_000_000:.2f}s"


class ProgressView:
    def __init__(self, console: Console, title: str, enabled: bool = True) -> None:
        self.console = console
        self.title = title
        self.enabled = enabled
        self._latest: dict[int, dict[str, Any]] = {}
        self._live: Live | None = None
        self._last_sent = 0
        self._last_time = time.monotonic()

    def __enter__(self) -> ProgressView:
        if self.enabled and self.console.is_terminal:
            self._live = Live(self._table(None), console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def update(self, snapshot: dict[str, Any]) -> None:
        """Store one process's snapshot (call ``render`` to show the sums)."""
        self._latest[int(snapshot["proc"])] = snapshot

    def render(self) -> None:
        if not self.enabled or not self._latest:
            return
        before = self._last_sent
        row = self._row()
        final = all(s.get("final") for s in self._latest.values())
        if self._live is not None:
            self._live.update(self._table(row), refresh=True)
        elif self._last_sent != before and not final:  # plain lines: nothing new (or the summary follows), nothing printed
            line = "  ".join(f"{name} {value}" for name, value in zip(_COLUMNS, row, strict=True))
            self.console.print(line, highlight=False, soft_wrap=True)

    def _row(self) -> list[str]:
        snapshots = list(self._latest.values())
        total = Counts()
        window = Histogram()
        overall = Histogram()
        for snap in snapshots:
            total.add(Counts.from_dict(snap["total"]))
            window.merge(Histogram.from_dict(snap["window_us"]))
            overall.merge(Histogram.from_dict(snap["latency_us"]))
        now = time.monotonic()
        elapsed = max(float(s["elapsed_s"]) for s in snapshots)
        if all(s.get("final") for s in snapshots):  # the whole run's average, not the last fraction of a second
            rate = total.sent / max(elapsed, 1e-9)
        else:
            rate = (total.sent - self._last_sent) / max(now - self._last_time, 1e-9)
        self._last_sent, self._last_time = total.sent, now
        phase = "measure" if all(s["measuring"] for s in snapshots) else "warm-up"
        return [
            f"{elapsed:5.1f}s",
            phase,
            f"{total.sent:,}",
            f"{rate:,.0f}",
            f"{total.accepted:,}",
            f"{total.rejected:,}",
            f"{total.trades:,}",
            f"{total.errors:,}",
            format_us(window.percentile(50)) if window.count else "-",
            format_us(window.percentile(99)) if window.count else "-",
            format_us(overall.percentile(50)) if overall.count else "-",
            format_us(overall.percentile(99)) if overall.count else "-",
        ]

    def _table(self, row: list[str] | None) -> Table:
        table = Table(title=self.title, title_justify="left")
        for name in _COLUMNS:
            table.add_column(name, justify="right")
        table.add_row(*(row or ["-"] * len(_COLUMNS)))
        return table
