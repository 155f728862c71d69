"""The web screen's Transports panel: each transport's figures over the last window, from the gateway's own counters.

Every transport of a process submits through one gateway, which already
counts per transport: commands and place commands (``by_transport``,
``orders_by_transport``), engine rejects (``rejected_by``), refusals before the
engine (``transport_errors``) and submit-to-reply latency
(``latency_by_transport``). A ``TransportPanel`` samples those counters and
reports the difference since its previous sample: orders/s, commands/s,
rejects, and p50/p99 of the replies released in the window; plus the
commands each transport has waiting in the gateway's queue now.

Invariants:

* Read only: sampling never changes a counter, so any number of panels
  (one per WebSocket viewer, one for REST) can sample the same gateway.
* A window's percentiles come from the histogram buckets recorded in it
  (cumulative counts minus the previous sample's), within the histogram's
  1/64 resolution; an empty window reports 0.
* The first sample's window starts when the panel was made (its counters
  start from the gateway's totals then), so a new viewer sees current rates,
  not averages since the server started.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from transports.core.gateway import Gateway
from transports.core.histogram import Histogram

_CONFIG = "config"  # the gateway's own start-up submissions (instruments listed), not a wire


@dataclass(slots=True)
class _Totals:
    orders: int = 0
    commands: int = 0
    rejects: int = 0
    refused: int = 0
    latency: list[int] = field(default_factory=list)  # the histogram's bucket counts


def _rejects_by_transport(pairs: Counter[tuple[str, str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for (transport, _), value in pairs.items():
        out[transport] += value
    return out


class TransportPanel:
    """One viewer's per-transport window over a gateway's counters."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._at = time.monotonic()
        self._last: dict[str, _Totals] = self._totals()

    def _totals(self) -> dict[str, _Totals]:
        s = self.gateway.stats
        rejects = _rejects_by_transport(s.rejected_by)
        refused = _rejects_by_transport(s.transport_errors)
        names = set(s.by_transport) | set(refused) | set(s.latency_by_transport)
        out: dict[str, _Totals] = {}
        for name in names:
            hist = s.latency_by_transport.get(name)
            out[name] = _Totals(
                s.orders_by_transport[name], s.by_transport[name], rejects[name], refused[name], list(hist.counts) if hist else []
            )
        return out

    def sample(self) -> dict[str, Any]:
        """``{"type": "transports", "time", "window_s", "queue_depth", "transports": [per transport, by name]}``."""
        now = time.monotonic()
        window = max(now - self._at, 1e-6)
        current = self._totals()
        queued = self.gateway.queued_by_transport()
        s = self.gateway.stats
        rows = []
        for name in sorted(set(current) | set(queued)):
            if name == _CONFIG:
                continue
            cur = current.get(name, _Totals())
            old = self._last.get(name, _Totals())
            window_hist = Histogram()
            if cur.latency:
                window_hist.counts = [c - (old.latency[i] if old.latency else 0) for i, c in enumerate(cur.latency)]
                window_hist.count = sum(window_hist.counts)
                window_hist.max = s.latency_by_transport[name].max  # caps the top bucket's edge
            rows.append(
                {
                    "transport": name,
                    "orders_per_s": round((cur.orders - old.orders) / window, 1),
                    "commands_per_s": round((cur.commands - old.commands) / window, 1),
                    "p50_us": window_hist.percentile(50),
                    "p99_us": window_hist.percentile(99),
                    "rejects": cur.rejects - old.rejects,
                    "refused": cur.refused - old.refused,
                    "queue_depth": queued[name],
                    "commands": cur.commands,
                    "rejects_total": cur.rejects,
                }
            )
        self._at, self._last = now, current
        return {
            "type": "transports",
            "time": time.time_ns() // 1_000_000,
            "window_s": round(window, 3),
            "queue_depth": self.gateway.queue_depth,
            "transports": rows,
        }
