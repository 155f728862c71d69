"""Cost per order from one ``dex-trader`` report: CPU-seconds per 1,000 orders, peak RSS, bytes on the wire.

``cost_of`` takes a harness report (``--json``) and returns its ``cost``
object (``traders/harness/cost.py`` says how each figure is counted: each
process's own accounting over the measured window) with what a reader needs
beside it: the transport, the batch size and loop of the run, and what was
not counted. The comparison runner calls it for every point, so "cheap" and
"fast" can be told apart per transport and per mode.

Invariants: every key of ``FIELDS`` is present; a figure the run could not
give is ``None`` (a harness or server older than the cost report, a window
with no orders), never a guess. Nothing here measures: it only reads.
"""

from __future__ import annotations

from collections.abc import Mapping
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
