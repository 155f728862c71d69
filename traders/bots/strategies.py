"""Strategies: given a bot, its position and the pair's recent prices, the order the bot wants now (or none).

* ``momentum`` (taker): the price moved more than ``threshold_bps`` over the
  last ``lookback`` updates -> trade in the direction of the move (buy a rise).
* ``mean_reversion`` (taker): the price is more than ``threshold_bps`` away
  from the window mean -> trade back toward it (buy below the mean).
* ``grid`` (market maker): the price line is cut into levels ``step_bps``
  apart; when the price crosses into a lower level the bot bids at the bid,
  into a higher level it offers at the ask (post-only, resting).

Exits come first (``exit_intent``): with an open position, a gain of
``take_profit_bps`` or a loss of ``stop_loss_bps`` against the average entry
closes the whole position with a taker order. Strategies are pure apart from
the grid's remembered level (``GridMemory``), kept per bot by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from engine import Side
from pricefeed.update import PriceUpdate
from traders.bots.market import PairMarket, move_bps
from traders.bots.model import BotConfig, Intent, Position, Purpose


def exit_intent(bot: BotConfig, position: Position, update: PriceUpdate) -> Intent | None:
    if position.qty == 0 or position.avg_price <= 0:
        return None
    long = position.qty > 0
    exit_price = update.bid if long else update.ask  # what closing would get now
    gain = move_bps(exit_price, position.avg_price) * (1 if long else -1)
    if gain >= bot.take_profit_bps:
        purpose = Purpose.TAKE_PROFIT
    elif -gain >= bot.stop_loss_bps:
        purpose = Purpose.STOP_LOSS
    else:
        return None
    return Intent(Side.SELL if long else Side.BUY, abs(position.qty), exit_price, maker=False, purpose=purpose)


def momentum(bot: BotConfig, market: PairMarket, update: PriceUpdate, memory: dict[str, int]) -> Intent | None:
    move = market.move(bot.param("lookback", 3))
    if move is None:
        return None
    threshold = bot.param("threshold_bps", 5)
    if move >= threshold:
        return Intent(Side.BUY, bot.size, update.ask, maker=False)
    if move <= -threshold:
        return Intent(Side.SELL, bot.size, update.bid, maker=False)
    return None


def mean_reversion(bot: BotConfig, market: PairMarket, update: PriceUpdate, memory: dict[str, int]) -> Intent | None:
    if len(market.prices) < bot.param("lookback", 5):
        return None
    deviation = market.deviation_bps
    threshold = bot.param("threshold_bps", 10)
    if deviation <= -threshold:
        return Intent(Side.BUY, bot.size, update.ask, maker=False)
    if deviation >= threshold:
        return Intent(Side.SELL, bot.size, update.bid, maker=False)
    return None


def grid(bot: BotConfig, market: PairMarket, update: PriceUpdate, memory: dict[str, int]) -> Intent | None:
    anchor = memory.get("anchor_milli")
    price_milli = int(update.price * 1000)
    if anchor is None:
        memory["anchor_milli"] = price_milli
        memory["step_milli"] = max(1, price_milli * bot.param("step_bps", 10) // 10_000)  # levels fixed at first sight
        memory["level"] = 0
        return None
    offset = price_milli - anchor
    level = offset // memory["step_milli"] if offset >= 0 else -((-offset) // memory["step_milli"])  # toward zero
    previous = memory["level"]
    memory["level"] = level
    if level < previous:
        return Intent(Side.BUY, bot.size, update.bid, maker=True)
    if level > previous:
        return Intent(Side.SELL, bot.size, update.ask, maker=True)
    return None


Strategy = Callable[[BotConfig, PairMarket, PriceUpdate, dict[str, int]], Intent | None]

STRATEGY_BY_NAME: dict[str, Strategy] = {"momentum": momentum, "mean_reversion": mean_reversion, "grid": grid}


def decide(bot: BotConfig, position: Position, market: PairMarket, update: PriceUpdate, memory: dict[str, int]) -> Intent | None:
    """The bot's intent for this update: an exit if one is due, else its strategy's entry."""
    exiting = exit_intent(bot, position, update)
    if exiting is not None:
        return exiting
    return STRATEGY_BY_NAME[bot.strategy](bot, market, update, memory)


__all__ = ["STRATEGY_BY_NAME", "Decimal", "decide", "exit_intent", "grid", "mean_reversion", "momentum"]
