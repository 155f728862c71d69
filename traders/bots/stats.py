"""A worker's counters, its once-a-second stats line and the JSON it writes for ``dex-bots run``.

::

    dex-bots w0: updates 120 evaluated 3400 orders 12 acked 12 fills 5 superseded 0
        rejected freshness=0 drop=1 entry=3 limits=2 rate=40 exchange=0 dup=0 queue 0 partitions 4 latency_ms p50 3.2 p99 12.1

(one line in the output; wrapped here)

Latency is from ``published_ns`` of the price update (wall clock, set by the
feed) to the exchange's reply to the order, per order; the line shows the
last second's p50/p99, ``summary()`` the whole run's.

``summary()`` also carries the last few seconds' latency samples, each
second numbered (``windows``): the supervisor of ``dex-bots run`` reads the
workers' files on its own clock and takes each second exactly once, so its
one status line shows the latency of all workers together.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from traders.bots.risk import STAGE_NAMES

KEPT_WINDOWS = 5  # seconds of samples in the JSON: the supervisor may read late by a few
WINDOW_SAMPLES = 1000  # at most this many samples per second in the JSON (evenly spaced in sorted order)


def percentile(sorted_values: list[int], fraction: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


@dataclass
class WorkerStats:
    worker: int = 0
    updates: int = 0
    evaluated: int = 0
    orders: int = 0
    acked: int = 0
    fills: int = 0
    malformed: int = 0
    superseded: int = 0  # updates skipped because a newer one of the pair was already seen
    duplicates: int = 0  # orders the exchange refused as a repeated client order id (a redelivered update)
    exchange_rejects: int = 0
    exchange_reasons: dict[str, int] = field(default_factory=dict)  # reject reason name -> orders (duplicates included)
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGE_NAMES, 0))
    queue_depth: int = 0
    partitions: set[int] = field(default_factory=set)
    latencies_ns: list[int] = field(default_factory=list)  # the whole run (the bench reads them)
    # Where the time of an update that produced orders went (one sample per partition and update):
    delivery_ns: list[int] = field(default_factory=list)  # published -> the desk starts on it (broker, queueing)
    evaluation_ns: list[int] = field(default_factory=list)  # the desk evaluating its bots
    exchange_ns: list[int] = field(default_factory=list)  # the batch of orders sent -> its reply
    tick: int = 0  # seconds reported so far
    _window: list[int] = field(default_factory=list)
    _windows: deque[tuple[int, list[int]]] = field(default_factory=lambda: deque(maxlen=KEPT_WINDOWS))

    def latency(self, ns: int) -> None:
        self.latencies_ns.append(ns)
        self._window.append(ns)

    def exchange_rejected(self, reason: str) -> None:
        self.exchange_reasons[reason] = self.exchange_reasons.get(reason, 0) + 1

    def next_tick(self) -> list[int]:
        """Close the current second: its latency samples (ns, sorted), kept for ``summary()`` too."""
        window = sorted(self._window)
        self._window = []
        self.tick += 1
        step = max(1, -(-len(window) // WINDOW_SAMPLES))
        self._windows.append((self.tick, [ns // 1000 for ns in window[::step]]))
        return window

    def line(self, window: list[int]) -> str:
        rejects = " ".join(f"{k}={v}" for k, v in self.rejected.items())
        return (
            f"dex-bots w{self.worker}: updates {self.updates} evaluated {self.evaluated} orders {self.orders} acked {self.acked} "
            f"fills {self.fills} superseded {self.superseded} rejected {rejects} exchange={self.exchange_rejects} dup={self.duplicates} "
            f"queue {self.queue_depth} partitions {len(self.partitions)} "
            f"latency_ms p50 {percentile(window, 0.5) / 1e6:.1f} p99 {percentile(window, 0.99) / 1e6:.1f}"
        )

    def summary(self, with_latency: bool = True) -> dict[str, object]:
        """The counters; with ``with_latency`` also the latency percentiles (a sort of every sample: not every second)."""
        out: dict[str, object] = {
            "worker": self.worker,
            "updates": self.updates,
            "evaluated": self.evaluated,
            "orders": self.orders,
            "acked": self.acked,
            "fills": self.fills,
            "duplicates": self.duplicates,
            "exchange_rejects": self.exchange_rejects,
            "exchange_reasons": dict(self.exchange_reasons),
            "malformed": self.malformed,
            "superseded": self.superseded,
            "rejected": dict(self.rejected),
            "partitions": sorted(self.partitions),
            "queue_depth": self.queue_depth,
            "tick": self.tick,
            "windows": [[tick, samples] for tick, samples in self._windows],
        }
        if not with_latency:
            return out
        values = sorted(self.latencies_ns)
        out["latency_us"] = {
            "count": len(values),
            "p50": percentile(values, 0.5) // 1000,
            "p99": percentile(values, 0.99) // 1000,
            "max": (values[-1] if values else 0) // 1000,
        }
        parts = (("delivery", self.delivery_ns), ("evaluation", self.evaluation_ns), ("exchange", self.exchange_ns))
        out["breakdown_p50_us"] = {name: percentile(sorted(v), 0.5) // 1000 for name, v in parts}
        out["breakdown_p99_us"] = {name: percentile(sorted(v), 0.99) // 1000 for name, v in parts}
        return out
