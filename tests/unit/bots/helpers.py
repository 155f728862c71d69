"""Builders shared by the bot unit tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pricefeed.update import PriceUpdate
from traders.bots.market import PairMarket
from traders.bots.model import BotConfig

NOW = 1_800_000_000_000_000_000


def bot(strategy: str = "momentum", **kw: Any) -> BotConfig:
    base: dict[str, Any] = {
        "bot_id": "b1", "pair": "BTC-USD", "strategy": strategy, "size": Decimal("0.01"), "max_position": Decimal("0.05"),
        "max_exposure": Decimal("2000"), "take_profit_bps": 50, "stop_loss_bps": 30, "cooldown_ms": 1000,
        "max_orders_per_min": 3, "params": {},
    }  # fmt: skip
    base.update(kw)
    return BotConfig(**base)


def update(price: str, seq: int = 1, spread: str = "0.02", age_ms: int = 0, pair: str = "BTC-USD") -> PriceUpdate:
    p = Decimal(price)
    half = Decimal(spread) / 2
    return PriceUpdate(pair, seq, p, p - half, p + half, "test", NOW - age_ms * 1_000_000)


def market(*prices: str) -> tuple[PairMarket, PriceUpdate]:
    m = PairMarket()
    last = update(prices[0])
    for seq, price in enumerate(prices, start=1):
        last = update(price, seq)
        m.observe(last)
    return m, last
