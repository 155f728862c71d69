"""``bench/fanout.py``: market-data fan-out per transport, and the apply stamp it measures latency from.

The quick run goes over every transport's market-data path with real servers,
a real order driver and real brokers (started by the benchmark itself), so a
path that stops delivering fails here. It checks shape and reconciliation
(every update applied in a window reached every subscriber), never speed.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.fanout import TRANSPORTS, _failure, _merge, run_fanout, summarize_transport
from engine import BookDelta, Side
from transports.codec import proto_codec
from transports.core.histogram import Histogram
from transports.core.marketdata import MarketDataHub
from transports.http import market_data as ws_market_data
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import TRANSPORTS as REGISTERED

LOOKUP = {i.symbol: i for i in DEFAULT_INSTRUMENTS}.get


def test_the_apply_stamp_travels_in_the_shared_protobuf_bytes_and_the_websocket_json() -> None:
    hub = MarketDataHub(lambda symbol, depth: None)
    sub = hub.subscribe([])  # no symbol: no snapshot needed
    hub._subscribers["BTC-USD"] = [sub]
    hub.publish_all([BookDelta(7, "BTC-USD", Side.BUY, 3_000_000, 5_000, 1)], applied_mono_ns=123_456_789_012)
    update = sub.poll()
    assert update is not None
    from_proto = proto_codec.decode_market_data(proto_codec.encode_market_data(update, LOOKUP).SerializeToString(), LOOKUP)
    from_json = ws_market_data.decode_market_data(ws_market_data.encode_market_data(update, LOOKUP), LOOKUP)
    assert from_proto == from_json == update
    assert from_proto.applied_mono_ns == from_json.applied_mono_ns == 123_456_789_012  # type: ignore[union-attr]


def _reply(delivered: dict[int, int], md_range: tuple[int, int], latencies_us: list[int], **extra: Any) -> dict[str, Any]:
    h = Histogram()
    for value in latencies_us:
        h.record(value)
    reply = {
        "delivered": {str(k): v for k, v in delivered.items()},
        "latency": h.to_dict(),
        "paused_latency": Histogram().to_dict(),
        "md_range": {"": {"BTC-USD": list(md_range)}},
        "sources": {str(k): "" for k in delivered},
        "gaps": 0,
        "snapshot_recoveries": 0,
        "sequence_errors": 0,
        "live": len(delivered),
        "behind": 0,
        "most_behind_ms": 0.0,
        "paused": [],
        "errors": [],
    }
    return reply | extra


class _Set:
    count = 3
    setup = {"ready": 3, "setup_s": 0.1, "errors": []}


def test_a_subscriber_that_missed_updates_makes_the_point_incomplete_and_says_why() -> None:
    # Two workers: the updates applied in the window are md_seq 11..20 (10), seen between them.
    replies = [
        _reply({0: 10, 1: 10}, (11, 20), [100, 200, 300]),
        _reply({2: 7}, (12, 19), [400], gaps=1, snapshot_recoveries=1),
    ]
    point = _merge(_Set(), replies, 2.0, {"server": 1.0, "subscribers": 0.5})  # type: ignore[arg-type]
    assert point["published"] == 10 and point["delivered"] == 27
    assert point["delivered_per_s"] == 13.5 and point["delivered_per_s_per_subscriber"] == 4.5
    assert point["complete_subscribers"] == 2 and not point["complete"]
    assert point["failure"] is not None and "1 of 3 subscribers missed updates" in point["failure"]
    assert point["latency_us"]["count"] == 4 and 200 <= point["latency_us"]["p50"] < 204  # within its bucket

    fine = _merge(_Set(), [_reply({0: 10, 1: 10, 2: 10}, (11, 20), [100])], 2.0, {"server": 1.0, "subscribers": 0.5})  # type: ignore[arg-type]
    assert fine["complete"] and fine["failure"] is None


def test_each_replica_s_subscribers_are_reconciled_against_that_replica_s_window() -> None:
    # DHT: two subscribers stream from node a, one from node b, which applied (and stamped) its groups later.
    a, b = _reply({0: 10, 1: 10}, (11, 20), [100]), _reply({2: 10}, (8, 17), [100])
    a["md_range"], a["sources"] = {"a": a["md_range"][""]}, {"0": "a", "1": "a"}
    b["md_range"], b["sources"] = {"b": b["md_range"][""]}, {"2": "b"}
    point = _merge(_Set(), [a, b], 2.0, {"server": 1.0, "subscribers": 0.5})  # type: ignore[arg-type]
    assert point["complete"] and point["complete_subscribers"] == 3 and point["published"] == 10


def test_subscribers_that_cannot_keep_up_are_a_failure_not_a_crash() -> None:
    replies = [_reply({0: 10, 1: 10, 2: 10}, (11, 20), [100], behind=2, most_behind_ms=850.0)]
    point = _merge(_Set(), replies, 2.0, {"server": 1.0, "subscribers": 1.9})  # type: ignore[arg-type]
    assert point["failure"] is not None and "2 subscribers (0 of them never received an update) had not caught up" in point["failure"]
    assert _failure(point | {"behind": 0, "errors": ["subscriber 2: NotConnected: lost"]}, 3) == "errors: subscriber 2: NotConnected: lost"


def test_the_summary_gives_min_median_max_and_the_target_at_100_subscribers() -> None:
    def point(repeat: int, p99: int, complete: bool = True) -> dict[str, Any]:
        return {
            "subscribers": 100, "repeat": repeat, "delivered_per_s": 1000.0 * (repeat + 1), "delivered_per_s_per_subscriber": 10.0,
            "published_per_s": 10.0, "orders_per_s": 1000.0, "latency_us": {"p50": 100, "p99": p99, "p999": p99 * 2, "count": 10},
            "gaps": 1, "snapshot_recoveries": 1, "complete": complete, "failure": None if complete else "lost",
        }  # fmt: skip

    summary = summarize_transport("zmq", [point(0, 9_000), point(1, 12_000), point(2, 8_000)], (100,))["100"]
    assert summary["delivered_per_s"] == {"min": 1000.0, "median": 2000.0, "max": 3000.0}
    assert summary["latency_us"]["p99"] == {"min": 8_000, "median": 9_000, "max": 12_000}
    assert summary["gaps"] == 3 and summary["complete"] and summary["target_met"] is True
    missed = summarize_transport("zmq", [point(0, 9_000), point(1, 9_000, complete=False)], (100,))["100"]
    assert missed["target_met"] is False and missed["failure"] == "lost"
    assert summarize_transport("amqp", [point(0, 9_000)], (100,))["100"]["target_met"] is None  # no target for this wire
    one = point(0, 9_000) | {"subscribers": 1, "published_per_s": 50.0}
    # Fewer updates beside 100 subscribers at the same order rate: the gateway coalesced them, the rate held.
    coalesced = summarize_transport("nats", [one, point(0, 9_000)], (1, 100))["100"]
    assert coalesced["order_rate_held"] is True and coalesced["target_met"] is True
    starved = summarize_transport("nats", [one, point(0, 9_000) | {"orders_per_s": 600.0}], (1, 100))["100"]
    assert starved["order_rate_held"] is False and starved["target_met"] is False  # 600 orders/s against 1,000
    assert "accepted 600 orders/s against 1,000" in starved["order_rate_note"]


def test_every_transport_with_a_market_data_path_is_measured() -> None:
    assert set(TRANSPORTS) <= set(REGISTERED)


@pytest.mark.timeout(240)
def test_quick_run_delivers_every_update_on_every_transport_at_1_and_10_subscribers() -> None:
    lines: list[str] = []
    report = run_fanout(TRANSPORTS, (1, 10), repeats=1, duration_s=1.0, warmup_s=0.5, pause_s=0, log=lines.append)
    assert report["parameters"]["subscribers"] == [1, 10] and report["parameters"]["rate_orders_per_s"] == 1000.0
    assert list(report["transports"]) == list(TRANSPORTS)
    for name, result in report["transports"].items():
        assert result["slow_consumer"] is None
        for n in ("1", "10"):
            summary = result["summary"][n]
            assert summary["failure"] is None, (name, n, summary["failure"])
            assert summary["complete"], (name, n)
            assert summary["delivered_per_s"]["median"] > 0
            for q in ("p50", "p99", "p999"):
                assert summary["latency_us"][q]["median"] > 0, (name, n, q)
        for point in result["points"]:  # reconciled: each subscriber got every update applied in the window
            assert point["published"] > 0 and point["delivered"] == point["published"] * point["subscribers"], (name, point)
            assert point["sequence_errors"] == 0


@pytest.mark.timeout(120)
def test_a_paused_subscriber_catches_up_in_md_seq_order_while_the_others_keep_receiving() -> None:
    report = run_fanout(("zmq",), (10,), repeats=1, duration_s=1.0, warmup_s=0.5, pause_s=1.0, slow_consumer_subscribers=10, log=print)
    slow = report["transports"]["zmq"]["slow_consumer"]
    assert slow is not None and slow["subscribers"] == 10 and slow["pause_s"] == 1.0
    assert slow["others_complete"], slow["point"]["failure"]  # the other 9 got every update of the window
    assert slow["others_p99_us_with_pause"] > 0 and slow["others_p99_us_without_pause"] > 0
    assert slow["others_p99_delay_us"] == slow["others_p99_us_with_pause"] - slow["others_p99_us_without_pause"]
    paused = slow["paused"]
    assert paused["caught_up"] and paused["sequence_errors"] == 0 and slow["recovered"], paused
    # Whether it needed a snapshot depends on the queues on the way; either way the report says which.
    assert slow["recovered_by_snapshot"] == (paused["gaps"] > 0 and paused["snapshot_recoveries"] > 0)
    assert slow["how"]
