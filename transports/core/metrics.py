"""Prometheus metrics of every server process, read from the gateway's own counters at scrape time.

Nothing on the order path touches a Prometheus object: the gateway already
counts everything (``GatewayStats``), and ``GatewayCollector.collect`` turns
those counters into metric families when ``/metrics`` is scraped. Each server
has its own ``CollectorRegistry`` so several servers can live in one process.

Where they are served: ``turbo-dex`` on its own HTTP port (``GET /metrics``);
every server process (``dex-grpc``, ``dex-zmq``, ``dex-nats``, ``dex-amqp``,
``turbo-dex --transports ...``) on ``--metrics-port`` through
``serve_metrics``, a minimal HTTP endpoint on the server's own event loop, so
a scrape reads the counters between two gateway batches, never during one.

Families (all prefixed ``dex_``): commands by transport, rejects by transport
and reason, trades, cancels by reason, requests refused before the engine by
transport and reason, gateway queue depth, market-data fan-out, and the
histograms ``dex_command_latency_seconds`` (by transport: submit to reply,
fsync included) and ``dex_journal_fsync_seconds``.

Latency and fsync histograms are re-bucketed from the gateway's HDR-style
histogram: a bucket ``le=b`` counts every recorded value whose histogram
bucket starts at or below ``b``, i.e. it may include values up to 1/64 above
``b``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from transports.core.gateway import Gateway
from transports.core.histogram import Histogram, _index

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Bucket upper bounds in microseconds: 50 us .. 10 s.
_BOUNDS_US: tuple[int, ...] = (
    50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 10_000_000,
)  # fmt: skip


def _histogram(name: str, documentation: str, hist: Histogram) -> HistogramMetricFamily:
    buckets, total = _buckets(hist)
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total)


def _buckets(hist: Histogram) -> tuple[list[tuple[str, float]], float]:
    """Cumulative Prometheus buckets (seconds) and the sum, from an HDR-style histogram in microseconds."""
    counts = hist.counts
    buckets: list[tuple[str, float]] = []
    cumulative = 0
    start = 0
    for bound in _BOUNDS_US:
        end = min(_index(bound) + 1, len(counts))
        cumulative += sum(counts[start:end])
        start = end
        buckets.append((repr(bound / 1e6), cumulative))
    buckets.append(("+Inf", hist.count))
    return buckets, hist.total / 1e6


def _labelled(family: CounterMetricFamily | GaugeMetricFamily, values: Mapping[str, int]) -> CounterMetricFamily | GaugeMetricFamily:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


class GatewayCollector(Collector):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterable[Metric]:
        gw = self.gateway
        s = gw.stats
        md = gw.marketdata
        yield _labelled(
            CounterMetricFamily("dex_commands", "Commands applied by the engine, by transport", labels=["transport"]), s.by_transport
        )
        yield _labelled(CounterMetricFamily("dex_commands_by_type", "Commands applied, by type", labels=["type"]), s.commands)
        yield CounterMetricFamily("dex_orders", "Place-order commands applied", value=s.orders)
        yield CounterMetricFamily("dex_orders_accepted", "Orders accepted", value=s.accepted)
        rejects = CounterMetricFamily(
            "dex_rejects", "Commands rejected by the engine, by transport and reason", labels=["transport", "reason"]
        )
        for (transport, reason), value in sorted(s.rejected_by.items()):
            rejects.add_metric([transport, reason], value)
        yield rejects
        yield _labelled(CounterMetricFamily("dex_cancels", "Orders cancelled, by cancel reason", labels=["reason"]), s.cancelled)
        yield CounterMetricFamily("dex_trades", "Trades executed", value=s.trades)
        yield CounterMetricFamily("dex_overloaded", "Submissions refused whole because the gateway queue was full", value=s.overloaded)
        yield CounterMetricFamily("dex_repeated_requests", "Retried request ids answered from the de-duplication window", value=s.repeated)
        yield CounterMetricFamily("dex_gateway_batches", "Groups of commands applied between two yields", value=s.batches)
        yield CounterMetricFamily("dex_journal_fsyncs", "Journal fsync calls", value=s.fsyncs)
        errors = CounterMetricFamily(
            "dex_transport_errors", "Requests refused before reaching the engine, by transport and reason", labels=["transport", "reason"]
        )
        for (transport, reason), value in sorted(s.transport_errors.items()):
            errors.add_metric([transport, reason], value)
        yield errors
        limits = CounterMetricFamily(
            "dex_limits_exceeded",
            "Requests and connections refused over a stated limit (docs/limits.md), by transport and limit",
            labels=["transport", "limit"],
        )
        for (transport, limit), value in sorted(s.limits_exceeded.items()):
            limits.add_metric([transport, limit], value)
        yield limits
        yield GaugeMetricFamily("dex_gateway_queue_depth", "Commands waiting in the gateway queue", value=gw.queue_depth)
        yield GaugeMetricFamily("dex_engine_seq", "Engine sequence number of the last event", value=gw.engine.seq)
        yield GaugeMetricFamily("dex_recovered_commands", "Commands replayed from the journal at start-up", value=gw.recovered_commands)
        yield CounterMetricFamily("dex_market_data_published", "Market-data updates published", value=md.published)
        yield GaugeMetricFamily("dex_market_data_subscribers", "Market-data subscribers", value=md.subscriber_count)
        yield CounterMetricFamily("dex_market_data_gaps", "Times a slow subscriber was sent a gap", value=md.gap_count())
        latency = HistogramMetricFamily(
            "dex_command_latency_seconds",
            "Gateway submit-to-reply latency per command, by transport (includes fsync)",
            labels=["transport"],
        )
        for transport, hist in sorted(s.latency_by_transport.items()):
            buckets, total = _buckets(hist)
            latency.add_metric([transport], buckets, total)
        yield latency
        yield _histogram("dex_journal_fsync_seconds", "Time of one journal fsync", s.fsync_us)


def metrics_registry(gateway: Gateway) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


# ---------------------------------------------------------------- endpoint
_MAX_REQUEST = 8192


async def _answer(registry: CollectorRegistry, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/1.0-style exchange: ``GET /metrics`` gets the exposition, anything else 404; then close."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5.0)
        method, _, rest = head[:_MAX_REQUEST].partition(b" ")
        path = rest.partition(b" ")[0].split(b"?")[0]
        if method == b"GET" and path in (b"/metrics", b"/"):
            body, status, kind = render(registry), b"200 OK", CONTENT_TYPE.encode()
        else:
            body, status, kind = b"not found: GET /metrics\n", b"404 Not Found", b"text/plain"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + kind + b"\r\nContent-Length: " + str(len(body)).encode())
        writer.write(b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass  # a scraper that hung up or sent garbage gets nothing; the server goes on
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serve_metrics(gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``GET /metrics`` for ``gateway`` on ``host:port`` (0 = any free port); yields the URL."""
    registry = metrics_registry(gateway)
    server = await asyncio.start_server(lambda r, w: _answer(registry, r, w), host, port, limit=_MAX_REQUEST)
    bound = server.sockets[0].getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    try:
        yield f"http://{shown}:{bound[1]}/metrics"
    finally:
        server.close()
        await server.wait_closed()
