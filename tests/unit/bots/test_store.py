"""The SQLite bot store: bots, active pairs, positions, validation, and a second connection seeing the same rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine import Side
from tests.unit.bots.helpers import bot
from traders.bots.model import Position, RestingOrder
from traders.bots.store import BotStore, BotStoreError, generate_bots


def test_bots_round_trip_and_active_pairs_come_from_enabled_bots(tmp_path):
    store = BotStore(tmp_path / "bots.db", partitions=8)
    store.add([bot(bot_id="a", params={"lookback": "4"}), bot(bot_id="b", pair="ETH-USD", enabled=False), bot(bot_id="c", pair="SOL-USD")])
    assert [b.bot_id for b in store.bots()] == ["a", "c"]
    assert store.bots()[0] == bot(bot_id="a", params={"lookback": "4"})
    assert store.active_pairs() == ["BTC-USD", "SOL-USD"]
    assert store.set_enabled("b", True)
    assert store.active_pairs() == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert not store.set_enabled("zzz", True)
    other = BotStore(tmp_path / "bots.db", partitions=99)  # the partition count is fixed at creation
    assert other.partitions == 8
    assert len(other.bots()) == 3


def test_positions_are_saved_exactly_and_read_back(tmp_path):
    store = BotStore(tmp_path / "bots.db")
    resting = RestingOrder(42, Side.SELL, 3, Decimal("101.25"), 1)
    store.save_positions({"a": Position(Decimal("-0.03"), Decimal("100.125"), Decimal("1.5"), 77, 123, 4, resting), "b": Position()})
    got = BotStore(tmp_path / "bots.db").positions(["a", "b", "missing"])
    assert got["a"] == Position(Decimal("-0.03"), Decimal("100.125"), Decimal("1.5"), 77, 123, 4, resting)
    assert got["b"] == Position()
    assert "missing" not in got


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"strategy": "martingale"}, "unknown strategy"),
        ({"size": Decimal(0)}, "positive"),
        ({"bot_id": "has space"}, "bot id"),
        ({"bot_id": "x" * 41}, "bot id"),
    ],
)
def test_invalid_bots_are_refused(tmp_path, bad, problem):
    with pytest.raises(BotStoreError, match=problem):
        BotStore(tmp_path / "bots.db").add([bot(**bad)])


def test_generated_bots_cover_every_pair_and_strategy_deterministically():
    bots = generate_bots(30, ["BTC-USD", "ETH-USD"], seed=5)
    assert bots == generate_bots(30, ["BTC-USD", "ETH-USD"], seed=5)
    assert {(b.pair, b.strategy) for b in bots} == {(p, s) for p in ("BTC-USD", "ETH-USD") for s in ("momentum", "mean_reversion", "grid")}
    assert len({b.bot_id for b in bots}) == 30
