"""Each of the five risk stages, alone and in order; exits skip the entry-only stages."""

from __future__ import annotations

from decimal import Decimal

from engine import Side
from tests.unit.bots.helpers import NOW, bot, market, update
from traders.bots.model import Intent, Position, Purpose
from traders.bots.risk import (
    STAGE_NAMES,
    OrderPace,
    RiskCheck,
    RiskSettings,
    drop,
    entry,
    first_rejection,
    freshness,
    limits,
    rate,
    record_order,
)

SETTINGS = RiskSettings(max_age_ms=2000, max_drop_bps=300, max_spread_bps=50, max_volatility_bps=500)
BUY = Intent(Side.BUY, Decimal("0.01"), Decimal("100"), maker=False)


def check(intent: Intent = BUY, prices: tuple[str, ...] = ("100", "100"), age_ms: int = 0, spread: str = "0.02", **kw) -> RiskCheck:  # type: ignore[no-untyped-def]
    m, _ = market(*prices)
    position = kw.pop("position", Position())
    pace = kw.pop("pace", OrderPace())
    return RiskCheck(bot(**kw), position, pace, m, update(prices[-1], spread=spread, age_ms=age_ms), intent, NOW)


def test_stage_names_in_order():
    assert STAGE_NAMES == ("freshness", "drop", "entry", "limits", "rate")


def test_freshness_rejects_an_update_older_than_max_age():
    assert freshness(check(age_ms=1999), SETTINGS)
    assert not freshness(check(age_ms=2001), SETTINGS)
    assert first_rejection(check(age_ms=5000), SETTINGS) == "freshness"


def test_drop_protection_blocks_buying_into_a_crash_but_not_selling():
    crash = ("100", "98", "96.5")  # 350 bps below the window high
    assert not drop(check(prices=crash), SETTINGS)
    assert drop(check(Intent(Side.SELL, Decimal("0.01"), Decimal("96.5"), maker=False), prices=crash), SETTINGS)
    assert drop(check(prices=("100", "99", "98")), SETTINGS)  # 200 bps: allowed
    assert first_rejection(check(prices=crash), SETTINGS) == "drop"


def test_entry_quality_rejects_wide_spreads_and_volatile_windows():
    assert not entry(check(spread="1.00"), SETTINGS)  # 100 bps at 100
    assert entry(check(spread="0.40"), SETTINGS)
    assert not entry(check(prices=("100", "106", "103")), SETTINGS)  # 600 bps range
    assert first_rejection(check(spread="1.00"), SETTINGS) == "entry"


def test_limits_on_position_and_exposure():
    assert not limits(check(position=Position(qty=Decimal("0.045"))), SETTINGS)  # 0.055 > max_position 0.05
    assert limits(check(position=Position(qty=Decimal("0.04"))), SETTINGS)
    big = Intent(Side.BUY, Decimal("0.01"), Decimal("100000"), maker=False)  # 0.01 x 100000 = 1000 notional
    assert limits(check(big), SETTINGS)
    assert not limits(check(big, position=Position(qty=Decimal("0.02"))), SETTINGS)  # 3000 > max_exposure 2000
    assert first_rejection(check(position=Position(qty=Decimal("0.05"))), SETTINGS) == "limits"
    assert limits(check(Intent(Side.SELL, Decimal("0.01"), Decimal("100"), maker=False), position=Position(qty=Decimal("0.05"))), SETTINGS)


def test_rate_enforces_cooldown_and_orders_per_minute():
    pace = OrderPace()
    record_order(pace, NOW - 500_000_000)  # 0.5 s ago, cooldown 1 s
    assert not rate(check(pace=pace), SETTINGS)
    pace = OrderPace()
    for seconds_ago in (50, 40, 30):
        record_order(pace, NOW - seconds_ago * 1_000_000_000)
    assert not rate(check(pace=pace), SETTINGS)  # 3 in the last minute, max 3
    pace = OrderPace()
    for seconds_ago in (70, 40, 30):
        record_order(pace, NOW - seconds_ago * 1_000_000_000)
    assert rate(check(pace=pace), SETTINGS)  # the 70 s old one has left the window
    assert first_rejection(check(pace=OrderPace(last_ns=NOW)), SETTINGS) == "rate"


def test_an_order_passing_every_stage_is_allowed():
    assert first_rejection(check(), SETTINGS) is None


def test_exits_skip_drop_entry_limits_and_cooldown_but_not_freshness():
    stop = Intent(Side.SELL, Decimal("0.05"), Decimal("96"), maker=False, purpose=Purpose.STOP_LOSS)
    crash = ("100", "98", "96")
    assert (
        first_rejection(
            check(stop, prices=crash, spread="2", pace=OrderPace(last_ns=NOW), position=Position(qty=Decimal("0.05"))), SETTINGS
        )
        is None
    )
    assert first_rejection(check(stop, prices=crash, age_ms=3000), SETTINGS) == "freshness"


def test_the_per_update_gate_gives_the_same_verdict_as_the_stages_one_by_one():
    from traders.bots.risk import gated_rejection, market_gate

    cases = [
        check(),
        check(age_ms=5000),
        check(prices=("100", "98", "96.5")),
        check(Intent(Side.SELL, Decimal("0.01"), Decimal("96.5"), maker=False), prices=("100", "98", "96.5")),
        check(spread="1.00"),
        check(prices=("100", "106", "103")),
        check(position=Position(qty=Decimal("0.05"))),
        check(pace=OrderPace(last_ns=NOW)),
        check(
            Intent(Side.SELL, Decimal("0.05"), Decimal("96"), maker=False, purpose=Purpose.STOP_LOSS),
            prices=("100", "98", "96"),
            spread="2",
        ),
    ]
    for case in cases:
        gate = market_gate(case.update, case.market, case.now_ns, SETTINGS)
        assert gated_rejection(case, gate, SETTINGS) == first_rejection(case, SETTINGS)
