"""What the measured window cost, from each process's own accounting: the report's ``cost`` object.

The harness (every one of its processes) reads its own CPU time
(``time.process_time``: user + system, all threads) when the measured window
starts and when its traders are done, its peak RSS (``VmHWM``,
``transports.core.usage``), and the bytes of the lean ``OrderBatch`` requests
it sent in the window. The server's side comes from its stats
(``Gateway.stats_dict``: ``process_cpu_us``, ``peak_rss_bytes``,
``lean_bytes_in``, ``lean_bytes_out``, ``lean_commands``, all since it
started), read when the window starts and when it ends; the server's figures
are the differences, CPU divided by the commands the server applied between
the two readings and bytes by the commands its lean requests carried, so each
ratio uses its own counts (a DHT node receives a share of the requests but
applies every command).

Invariants: a figure that cannot be had (a server whose stats lack the field,
a window with no commands) is ``None``, never a guess. Bytes are the encoded
lean frames, both ways, counted once by the server's request handler; the
framing each wire adds (HTTP headers, gRPC frames, NATS subjects, AMQP
properties) is not in them; a wire whose client sends its own messages instead
(FIX) has no lean bytes, and says so (``bytes_not_counted``). With ``inproc`` the server is this process: its
CPU is counted once (``same_process``), as the client's. A broker (NATS,
RabbitMQ) is a third process whose CPU is not counted here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transports.core import usage

NO_LEAN = "the server received no lean OrderBatch: this wire's client turns them into its own messages (FIX), not counted"
# The stats fields the server's side is computed from (a server without them predates the cost report).
SERVER_FIELDS = ("process_cpu_us", "peak_rss_bytes", "lean_bytes_in", "lean_bytes_out", "lean_commands")


def cpu_s() -> float:
    """This process's CPU time so far (user + system, every thread)."""
    return usage.cpu_us() / 1e6


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``VmHWM``: not its parent's, see ``transports.core.usage``)."""
    return usage.peak_rss_bytes()


def _per(value: float | None, count: int, scale: float) -> float | None:
    return round(value / count * scale, 6) if value is not None and count > 0 else None


def _delta(start: Mapping[str, Any], end: Mapping[str, Any], key: str) -> int | None:
    if key not in start or key not in end:
        return None
    return int(end[key]) - int(start[key])


def cost_report(
    transport: str,
    commands: int,
    client: Mapping[str, Any],
    window_start: Mapping[str, Any],
    window_end: Mapping[str, Any],
    server_commands: int | None,
) -> dict[str, Any]:
    """The ``cost`` object: ``commands`` the harness sent in the window, ``client`` its processes' merged accounting,
    the server's stats at the window's start and end and the commands it counted between them."""
    cpu_us = _delta(window_start, window_end, "process_cpu_us")
    server_cpu = cpu_us / 1e6 if cpu_us is not None else None
    bytes_in = _delta(window_start, window_end, "lean_bytes_in")  # what the server received: orders out of the harness
    bytes_out = _delta(window_start, window_end, "lean_bytes_out")
    lean_commands = _delta(window_start, window_end, "lean_commands") or 0  # what those bytes carried, at this server
    served = server_commands or 0
    same_process = transport == "inproc"
    client_cpu = float(client.get("cpu_s", 0.0))
    server_per_1000 = _per(server_cpu, served, 1000)
    client_per_1000 = _per(client_cpu, commands, 1000)
    total = client_per_1000
    if not same_process:
        total = round(server_per_1000 + client_per_1000, 6) if server_per_1000 is not None and client_per_1000 is not None else None
    peak = window_end.get("peak_rss_bytes")
    missing = [key for key in SERVER_FIELDS if key not in window_start or key not in window_end]
    return {
        "commands": commands,
        "server_commands": server_commands,
        "server_cpu_s": server_cpu,
        "client_cpu_s": round(client_cpu, 6),
        "server_cpu_s_per_1000": server_per_1000,
        "client_cpu_s_per_1000": client_per_1000,
        "total_cpu_s_per_1000": total,
        "server_peak_rss_bytes": int(peak) if isinstance(peak, int | float) else None,
        "client_peak_rss_bytes": int(client.get("peak_rss_bytes", 0)) or None,
        "server_lean_bytes_in": bytes_in,
        "server_lean_bytes_out": bytes_out,
        "client_request_bytes": int(client.get("request_bytes", 0)),
        "server_lean_commands": lean_commands,
        "bytes_per_order_out": _per(bytes_in, lean_commands, 1),
        "bytes_per_order_in": _per(bytes_out, lean_commands, 1),
        "client_bytes_per_order_out": _per(int(client.get("request_bytes", 0)), commands, 1),
        "same_process": same_process,
        "server_fields_missing": missing,
        "counted": (
            "the harness and the in-process gateway are one process: its CPU and RSS are counted once, as the client's and the server's"
            if same_process
            else "the server process and the harness process(es); a broker between them is a third process, not counted"
        ),
        "bytes": "encoded lean OrderBatch (out) and OutcomeBatch (in) bytes, without the wire's own framing",
        **({"bytes_not_counted": NO_LEAN} if served > 0 and not lean_commands and not missing else {}),
    }
