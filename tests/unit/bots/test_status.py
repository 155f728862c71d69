"""What ``dex-bots run`` prints, from the workers' JSON: totals, the status line, ownership, the summary."""

from __future__ import annotations

from traders.bots.status import BotActivity, ownership_line, ranges, status_line, summary_lines, totals
from traders.bots.supervisor import worker_argv


def worker(orders: int, **extra: object) -> dict[str, object]:
    stats: dict[str, object] = {"updates": 10, "evaluated": 100, "orders": orders, "acked": orders, "fills": 1}
    stats.update(extra)
    return stats


def test_totals_add_every_process_of_a_worker_so_a_restart_never_lowers_them() -> None:
    first = worker(5, rejected={"rate": 2, "limits": 0}, exchange_reasons={"DUPLICATE_CLIENT_ORDER_ID": 1})
    restarted = worker(3, rejected={"rate": 1}, exchange_reasons={"DUPLICATE_CLIENT_ORDER_ID": 2, "POST_ONLY_WOULD_TRADE": 1})
    total = totals([first, restarted, {}])  # a worker that has not written yet counts nothing
    assert total.counts["orders"] == 8 and total.counts["updates"] == 20
    assert total.risk == {"rate": 3, "limits": 0}
    assert total.refused == {"DUPLICATE_CLIENT_ORDER_ID": 3, "POST_ONLY_WOULD_TRADE": 1}


def test_the_status_line_names_only_what_happened_and_the_last_seconds_latency() -> None:
    total = totals([worker(7, rejected={"rate": 4, "drop": 0, "limits": 1})])
    line = status_line(total, 3, 4, 12, 16, 2.0, [40_000, 50_000, 60_000])
    assert line.startswith("dex-bots: 3/4 workers, 12/16 partitions | updates 10 | orders 7 (+2/s) acked 7 fills 1")
    assert "risk held 5 (rate 4, limits 1)" in line and "drop" not in line
    assert "refused 0 |" in line and line.endswith("latency p50 50 ms p99 60 ms")
    assert status_line(total, 4, 4, 16, 16, 0.0, []).endswith("latency -")


def test_ownership_and_partition_ranges() -> None:
    assert ranges([5, 0, 1, 2, 9, 10]) == "0-2,5,9-10" and ranges([]) == "none"
    assert ownership_line({1: [1, 3], 0: [0, 2]}) == "dex-bots: partitions w0 0,2 | w1 1,3"


def test_the_summary_gives_orders_rejects_by_reason_latency_and_what_the_bots_did() -> None:
    total = totals([worker(4, rejected={"rate": 2}, exchange_reasons={"DUPLICATE_CLIENT_ORDER_ID": 1})])
    activity = BotActivity(3, {"a": 3, "b": 1}, {"a": "momentum", "b": "grid", "c": "grid"})
    lines = summary_lines(total, 12.4, 2, 1, [1_000, 2_000, 90_000], activity)
    assert lines[0] == (
        "dex-bots summary: 12 s, 2 workers (1 restarts); 10 price updates received, 100 bot evaluations -> 4 orders sent, "
        "4 acknowledged, 1 refused, 1 fills"
    )
    assert "held back by the risk filter 2 (rate 2); refused by the exchange 1 (DUPLICATE_CLIENT_ORDER_ID 1)" in lines[1]
    assert lines[2] == "dex-bots summary: price published -> order answered p50 2.0 ms, p99 90 ms, max 90 ms over 3 orders"
    assert lines[3] == "dex-bots summary: bots 2 of 3 traded (grid 1 bots 1 orders, momentum 1 bots 3 orders); busiest a 3, b 1"


def test_the_workers_get_the_run_options_but_the_supervisor_sets_stats_out_and_quiet() -> None:
    argv = ["run", "--db", "x.db", "--quiet", "--stats-out", "s{worker}.json", "--stats-out=t.json", "--workers", "2"]
    assert worker_argv(argv) == ["--db", "x.db", "--workers", "2"]
