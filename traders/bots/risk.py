"""The five-stage risk filter every intent passes before it becomes an order.

=========  ================  ===============================================================
stage      name              rejects when
=========  ================  ===============================================================
1          ``freshness``     the update is older than ``max_age_ms`` (wall clock since publication)
2          ``drop``          a buy entry while the price is more than ``max_drop_bps`` below the
                             window high (no catching a falling knife); a sell entry while it
                             is that far above the window low
3          ``entry``         the spread exceeds ``max_spread_bps`` or the window's volatility
                             exceeds ``max_volatility_bps``
4          ``limits``        the order would take the position beyond ``max_position`` or its
                             notional beyond ``max_exposure`` (both absolute)
5          ``rate``          less than ``cooldown_ms`` since the bot's last order, or
                             ``max_orders_per_min`` orders already in the last minute
=========  ================  ===============================================================

Stages run in this order and the first that rejects names the rejection (the
stats line counts rejections by stage). Exits (take-profit, stop-loss) reduce
risk: they pass only ``freshness`` and the per-minute cap of ``rate`` (not the
cooldown), so a stale price never closes a position but a cooldown never keeps
a losing one open.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from engine import Side
from pricefeed.update import PriceUpdate
from traders.bots.market import PairMarket, spread_bps
from traders.bots.model import BotConfig, Intent, Position

_MINUTE_NS = 60_000_000_000


@dataclass(frozen=True, slots=True)
class RiskSettings:
    max_age_ms: int = 2000
    max_drop_bps: int = 300
    max_spread_bps: int = 50
    max_volatility_bps: int = 500


@dataclass(slots=True)
class OrderPace:
    """A bot's recent order times (monotonic per worker; lost when the bot moves: the cooldown restarts)."""

    recent_ns: deque[int] = field(default_factory=deque)
    last_ns: int = 0


@dataclass(slots=True)
class RiskCheck:
    bot: BotConfig
    position: Position
    pace: OrderPace
    market: PairMarket
    update: PriceUpdate
    intent: Intent
    now_ns: int  # wall clock, comparable with update.published_ns


def freshness(check: RiskCheck, settings: RiskSettings) -> bool:
    return (check.now_ns - check.update.published_ns) <= settings.max_age_ms * 1_000_000


def drop(check: RiskCheck, settings: RiskSettings) -> bool:
    market = check.market
    if not market.prices:
        return True
    if check.intent.side is Side.BUY:
        return market.below_high_bps <= settings.max_drop_bps
    return market.above_low_bps <= settings.max_drop_bps


def entry(check: RiskCheck, settings: RiskSettings) -> bool:
    return spread_bps(check.update) <= settings.max_spread_bps and check.market.volatility_bps() <= settings.max_volatility_bps


def limits(check: RiskCheck, settings: RiskSettings) -> bool:
    signed = check.intent.qty if check.intent.side is Side.BUY else -check.intent.qty
    after = abs(check.position.qty + signed)
    return after <= check.bot.max_position and after * check.intent.price <= check.bot.max_exposure


def rate(check: RiskCheck, settings: RiskSettings) -> bool:
    recent = check.pace.recent_ns
    while recent and check.now_ns - recent[0] >= _MINUTE_NS:
        recent.popleft()
    if len(recent) >= check.bot.max_orders_per_min:
        return False
    if check.intent.is_exit:
        return True
    return check.now_ns - check.pace.last_ns >= check.bot.cooldown_ms * 1_000_000


@dataclass(frozen=True, slots=True)
class MarketGate:
    """The verdicts of the stages that depend on the update alone, computed once per update for all bots."""

    fresh: bool
    buy_drop_ok: bool
    sell_drop_ok: bool
    entry_ok: bool


def market_gate(update: PriceUpdate, market: PairMarket, now_ns: int, settings: RiskSettings) -> MarketGate:
    fresh = (now_ns - update.published_ns) <= settings.max_age_ms * 1_000_000
    empty = not market.prices
    return MarketGate(
        fresh,
        empty or market.below_high_bps <= settings.max_drop_bps,
        empty or market.above_low_bps <= settings.max_drop_bps,
        spread_bps(update) <= settings.max_spread_bps and market.volatility_bps() <= settings.max_volatility_bps,
    )


def gated_rejection(check: RiskCheck, gate: MarketGate, settings: RiskSettings) -> str | None:
    """``first_rejection`` with the update-only stages read from ``gate`` (the same answer, cheaper per bot)."""
    if not gate.fresh:
        return "freshness"
    if check.intent.is_exit:
        return None if rate(check, settings) else "rate"
    if not (gate.buy_drop_ok if check.intent.side is Side.BUY else gate.sell_drop_ok):
        return "drop"
    if not gate.entry_ok:
        return "entry"
    if not limits(check, settings):
        return "limits"
    return None if rate(check, settings) else "rate"


STAGES = (("freshness", freshness), ("drop", drop), ("entry", entry), ("limits", limits), ("rate", rate))
STAGE_NAMES = tuple(name for name, _ in STAGES)
_EXIT_STAGES = frozenset(("freshness", "rate"))


def first_rejection(check: RiskCheck, settings: RiskSettings) -> str | None:
    """The name of the first stage that rejects ``check.intent`` (None: the order may go)."""
    exiting = check.intent.is_exit
    for name, stage in STAGES:
        if exiting and name not in _EXIT_STAGES:
            continue
        if not stage(check, settings):
            return name
    return None


def record_order(pace: OrderPace, now_ns: int) -> None:
    pace.recent_ns.append(now_ns)
    pace.last_ns = now_ns


__all__ = [
    "STAGES", "STAGE_NAMES", "MarketGate", "OrderPace", "RiskCheck", "RiskSettings", "first_rejection", "gated_rejection",
    "market_gate", "record_order",
]  # fmt: skip
