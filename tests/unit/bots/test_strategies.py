"""Each strategy's decision on price paths a trader would recognise, and the take-profit / stop-loss exits."""

from __future__ import annotations

from decimal import Decimal

from engine import Side
from tests.unit.bots.helpers import bot, market, update
from traders.bots.model import Position, Purpose
from traders.bots.strategies import decide, exit_intent, grid, mean_reversion, momentum


def test_momentum_buys_a_rise_sells_a_fall_and_ignores_noise():
    b = bot(params={"lookback": "2", "threshold_bps": "10"})
    rising, last = market("100.00", "100.05", "100.20")  # +20 bps over 2 updates
    intent = momentum(b, rising, last, {})
    assert intent is not None and intent.side is Side.BUY and not intent.maker and intent.price == last.ask
    falling, last = market("100.00", "99.95", "99.80")
    intent = momentum(b, falling, last, {})
    assert intent is not None and intent.side is Side.SELL and intent.price == last.bid
    flat, last = market("100.00", "100.01", "100.02")
    assert momentum(b, flat, last, {}) is None
    short, last = market("100.00", "101.00")  # window shorter than the lookback
    assert momentum(b, short, last, {}) is None


def test_mean_reversion_buys_below_the_mean_and_sells_above():
    b = bot("mean_reversion", params={"lookback": "4", "threshold_bps": "20"})
    dipped, last = market("100", "100", "100", "99.5")  # mean 99.875, price 50 bps... below by ~38 bps
    intent = mean_reversion(b, dipped, last, {})
    assert intent is not None and intent.side is Side.BUY
    spiked, last = market("100", "100", "100", "100.5")
    intent = mean_reversion(b, spiked, last, {})
    assert intent is not None and intent.side is Side.SELL
    calm, last = market("100", "100", "100", "100.05")
    assert mean_reversion(b, calm, last, {}) is None


def test_grid_bids_on_a_level_down_and_offers_on_a_level_up_as_a_maker():
    b = bot("grid", params={"step_bps": "10"})  # levels 0.10 apart at 100
    memory: dict[str, int] = {}
    m, _ = market("100")
    assert grid(b, m, update("100.00", 1), memory) is None  # first sight anchors the grid
    assert grid(b, m, update("100.05", 2), memory) is None  # same level
    down = grid(b, m, update("99.85", 3), memory)
    assert down is not None and down.side is Side.BUY and down.maker and down.price == Decimal("99.84")
    up = grid(b, m, update("100.12", 4), memory)
    assert up is not None and up.side is Side.SELL and up.maker


def test_take_profit_and_stop_loss_close_the_whole_position_first():
    b = bot(take_profit_bps=50, stop_loss_bps=30)
    long = Position(qty=Decimal("0.03"), avg_price=Decimal("100"))
    win = exit_intent(b, long, update("100.60", spread="0.02"))  # bid 100.59: +59 bps
    assert win is not None and win.purpose is Purpose.TAKE_PROFIT and win.side is Side.SELL and win.qty == Decimal("0.03")
    loss = exit_intent(b, long, update("99.65"))
    assert loss is not None and loss.purpose is Purpose.STOP_LOSS
    assert exit_intent(b, long, update("100.10")) is None
    short = Position(qty=Decimal("-0.02"), avg_price=Decimal("100"))
    cover = exit_intent(b, short, update("99.40"))
    assert cover is not None and cover.side is Side.BUY and cover.purpose is Purpose.TAKE_PROFIT
    m, _ = market("100.00", "100.50", "101.00")
    assert decide(bot(params={"lookback": "2"}), long, m, update("100.60"), {}).purpose is Purpose.TAKE_PROFIT  # type: ignore[union-attr]


def test_position_averages_in_and_realizes_on_the_way_out():
    p = Position()
    p.apply_fill(Side.BUY, Decimal("1"), Decimal("100"))
    p.apply_fill(Side.BUY, Decimal("1"), Decimal("110"))
    assert (p.qty, p.avg_price) == (Decimal(2), Decimal(105))
    p.apply_fill(Side.SELL, Decimal("3"), Decimal("120"))
    assert p.realized == Decimal(30)
    assert (p.qty, p.avg_price) == (Decimal(-1), Decimal(120))
