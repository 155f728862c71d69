"""Candles, the timed tape and the ticker (transports.core.candles) against a naive recomputation from the trades."""

from __future__ import annotations

import random
from collections import defaultdict

from engine import Side, TradeExecuted
from transports.codec.json_views import percent_change
from transports.core.candles import CANDLES_KEPT, DAY_MS, INTERVALS, TAPE_KEPT, MarketStats

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def trade(trade_id: int, price: int, qty: int, symbol: str = "BTC-USD") -> TradeExecuted:
    return TradeExecuted(trade_id, trade_id, symbol, price, qty, Side.BUY, 1, "m", "", 0, 2, "t", "", 0)


def recompute(trades: list[tuple[int, int, int]], width: int) -> list[list[int]]:
    """(time, price, qty) in order -> [start, open, high, low, close, volume, count] per bucket that traded."""
    buckets: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for time_ms, price, qty in trades:
        buckets[time_ms - time_ms % width].append((price, qty))
    out = []
    for start in sorted(buckets):
        rows = buckets[start]
        prices = [p for p, _ in rows]
        out.append([start, prices[0], max(prices), min(prices), prices[-1], sum(q for _, q in rows), len(rows)])
    return out


def random_history(seed: int, groups: int) -> list[tuple[int, list[TradeExecuted]]]:
    rng = random.Random(seed)
    now, trade_id, out = T0, 0, []
    for _ in range(groups):
        now += rng.choice([0, 1, 250, 59_000, 61_000, 3_600_000])
        batch = []
        for _ in range(rng.randint(1, 4)):
            trade_id += 1
            batch.append(trade(trade_id, rng.randint(29_000_00, 31_000_00), rng.randint(1, 50)))
        out.append((now, batch))
    return out


def test_candles_equal_a_recomputation_from_the_trades_at_every_interval() -> None:
    stats, flat = MarketStats(), []
    for time_ms, batch in random_history(7, 400):
        stats.add_trades(batch, stats.stamp(time_ms))
        flat += [(time_ms, t.price, t.qty) for t in batch]
    for name, width in INTERVALS.items():
        built = [c.as_list() for c in stats.candles("BTC-USD", name, 0, 2**53, CANDLES_KEPT)]
        assert built == recompute(flat, width)[-CANDLES_KEPT:], name
    assert [t.trade.trade_id for t in stats.trades("BTC-USD", TAPE_KEPT)] == list(range(1, 1 + len(flat)))[-TAPE_KEPT:]


def test_a_clock_that_steps_back_folds_into_the_latest_candle() -> None:
    stats = MarketStats()
    stats.add_trades([trade(1, 100, 1)], stats.stamp(T0 + 120_000))
    stepped_back = stats.stamp(T0)  # NTP stepped the clock back two minutes
    assert stepped_back == T0 + 120_000
    stats.add_trades([trade(2, 90, 2)], stepped_back)
    assert [c.as_list() for c in stats.candles("BTC-USD", "1m", 0, 2**53, 10)] == [[T0 + 120_000, 100, 100, 90, 90, 3, 2]]


def test_memory_is_capped_per_symbol_and_interval() -> None:
    stats = MarketStats()
    for minute in range(CANDLES_KEPT + 10):
        stats.add_trades([trade(minute + 1, 100, 1)], T0 + minute * 60_000)
    market = stats.market("BTC-USD")
    assert market is not None
    assert len(market.candles["1m"]) == CANDLES_KEPT and len(market.tape) == TAPE_KEPT
    assert market.candles["1m"][0].start == T0 + 10 * 60_000  # the oldest went first
    assert market.traded == CANDLES_KEPT + 10


def test_start_end_and_limit_select_candles() -> None:
    stats = MarketStats()
    for minute in range(10):
        stats.add_trades([trade(minute + 1, 100 + minute, 1)], T0 + minute * 60_000 + 5)
    starts = [c.start for c in stats.candles("BTC-USD", "1m", T0 + 2 * 60_000, T0 + 5 * 60_000, 100)]
    assert starts == [T0 + m * 60_000 for m in range(2, 6)]
    assert [c.start for c in stats.candles("BTC-USD", "1m", 0, 2**53, 2)] == [T0 + 8 * 60_000, T0 + 9 * 60_000]
    assert stats.candles("NOPE", "1m", 0, 2**53, 10) == []


def test_trades_since_a_trade_id_page_forward() -> None:
    stats = MarketStats()
    stats.add_trades([trade(i, 100, 1) for i in range(1, 11)], T0)
    assert [t.trade.trade_id for t in stats.trades("BTC-USD", 3, since=4)] == [5, 6, 7]
    assert [t.trade.trade_id for t in stats.trades("BTC-USD", 3)] == [8, 9, 10]
    assert stats.trades("BTC-USD", 3, since=10) == []


def test_the_ticker_covers_the_24_hours_ending_with_the_current_minute() -> None:
    stats = MarketStats()
    stats.add_trades([trade(1, 200, 5)], T0)  # older than the window at the time asked below
    stats.add_trades([trade(2, 100, 1), trade(3, 120, 2)], T0 + 60_000)
    stats.add_trades([trade(4, 110, 3)], T0 + DAY_MS)
    ticker = stats.ticker("BTC-USD", T0 + DAY_MS + 30_000)
    assert (ticker.last, ticker.last_trade_id, ticker.open, ticker.high, ticker.low) == (110, 4, 100, 120, 100)
    assert (ticker.volume, ticker.trades) == (6, 3)
    empty = stats.ticker("BTC-USD", T0 + 3 * DAY_MS)
    assert (empty.last, empty.open, empty.volume) == (110, 0, 0)


def test_percent_change_is_exact_and_rounded_half_away_from_zero() -> None:
    assert percent_change(110, 100) == "10.00"
    assert percent_change(90, 100) == "-10.00"
    assert percent_change(30_001_50, 30_000_00) == "0.01"  # 0.005% rounds up
    assert percent_change(29_998_50, 30_000_00) == "-0.01"
    assert percent_change(100, 0) is None


def test_the_state_round_trips_through_the_snapshot_frame() -> None:
    stats = MarketStats()
    for time_ms, batch in random_history(11, 200):
        stats.add_trades(batch, stats.stamp(time_ms))
    restored = MarketStats.decode(stats.encode())
    assert restored.encode() == stats.encode()
    assert restored.clock_ms == stats.clock_ms


def test_a_ticker_asked_again_sees_the_trades_since_and_the_window_moving() -> None:
    stats = MarketStats()
    stats.add_trades([trade(1, 100, 1)], T0)
    assert stats.ticker("BTC-USD", T0 + 1).volume == 1
    stats.add_trades([trade(2, 105, 2)], T0 + 2)
    again = stats.ticker("BTC-USD", T0 + 3)
    assert (again.last, again.volume, again.high, again.time_ms) == (105, 3, 105, T0 + 3)
    assert stats.ticker("BTC-USD", T0 + DAY_MS + 60_000).volume == 0  # the minute of both trades left the window
