"""Prometheus metrics, read from the gateway's own counters at scrape time.

Nothing on the order path touches a Prometheus object: the gateway already
counts everything (``GatewayStats``), and ``GatewayCollector.collect`` turns
those counters into metric families when ``/metrics`` is scraped. Each app
has its own ``CollectorRegistry`` so several servers can live in one process.

Latency and fsync histograms are re-bucketed from the gateway's HDR-style
histogram: a bucket ``le=b`` counts every recorded value whose histogram
bucket starts at or below ``b``, i.e. it may include values up to 1/64 above
``b``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

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
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=hist.total / 1e6)


def _labelled(family: CounterMetricFamily | GaugeMetricFamily, values: Mapping[str, int]) -> CounterMetricFamily | GaugeMetricFamily:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


class GatewayCollector(Collector):
    def __init__(self, gateway: Gateway, transport_errors: Counter[str], transport: str = "http") -> None:
        self.gateway = gateway
        self.transport_errors = transport_errors
        self.transport = transport

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
        yield _labelled(CounterMetricFamily("dex_rejects", "Commands rejected by the engine, by reason", labels=["reason"]), s.rejected)
        yield _labelled(CounterMetricFamily("dex_cancels", "Orders cancelled, by cancel reason", labels=["reason"]), s.cancelled)
        yield CounterMetricFamily("dex_trades", "Trades executed", value=s.trades)
        yield CounterMetricFamily("dex_overloaded", "Submissions refused whole because the gateway queue was full", value=s.overloaded)
        yield CounterMetricFamily("dex_gateway_batches", "Groups of commands applied between two yields", value=s.batches)
        yield CounterMetricFamily("dex_journal_fsyncs", "Journal fsync calls", value=s.fsyncs)
        errors = CounterMetricFamily(
            "dex_transport_errors", "Requests refused before reaching the engine, by transport and reason", labels=["transport", "reason"]
        )
        for reason, value in sorted(self.transport_errors.items()):
            errors.add_metric([self.transport, reason], value)
        yield errors
        yield GaugeMetricFamily("dex_gateway_queue_depth", "Commands waiting in the gateway queue", value=gw.queue_depth)
        yield GaugeMetricFamily("dex_engine_seq", "Engine sequence number of the last event", value=gw.engine.seq)
        yield GaugeMetricFamily("dex_recovered_commands", "Commands replayed from the journal at start-up", value=gw.recovered_commands)
        yield CounterMetricFamily("dex_market_data_published", "Market-data updates published", value=md.published)
        yield GaugeMetricFamily("dex_market_data_subscribers", "Market-data subscribers", value=md.subscriber_count)
        yield CounterMetricFamily("dex_market_data_gaps", "Times a slow subscriber was sent a gap", value=md.gap_count())
        yield _histogram("dex_command_latency_seconds", "Gateway submit-to-reply latency per command (includes fsync)", s.latency_us)
        yield _histogram("dex_journal_fsync_seconds", "Time of one journal fsync", s.fsync_us)


def metrics_registry(gateway: Gateway, transport_errors: Counter[str]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway, transport_errors))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
