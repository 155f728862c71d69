"""``BotStore``: the bots and their positions, in an embedded SQLite database (one file, shared by the workers).

Tables::

    meta(key, value)          partitions = the number of partition queues (fixed at creation)
    bots(bot_id, pair, strategy, size, max_position, max_exposure, take_profit_bps,
         stop_loss_bps, cooldown_ms, max_orders_per_min, params (JSON), enabled)
    positions(bot_id, qty, avg_price, realized, last_seq, last_order_ns, orders, resting (JSON or ''))

Decimals are stored as text (exact). The active pairs are the pairs of the
enabled bots. The database runs in WAL mode so that several worker processes
read while one writes; a worker writes only the positions of bots it owns, so
writers never contend for the same row.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from engine import Side
from traders.bots.model import STRATEGIES, BotConfig, Position, RestingOrder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bots (
    bot_id TEXT PRIMARY KEY,
    pair TEXT NOT NULL,
    strategy TEXT NOT NULL,
    size TEXT NOT NULL,
    max_position TEXT NOT NULL,
    max_exposure TEXT NOT NULL,
    take_profit_bps INTEGER NOT NULL,
    stop_loss_bps INTEGER NOT NULL,
    cooldown_ms INTEGER NOT NULL,
    max_orders_per_min INTEGER NOT NULL,
    params TEXT NOT NULL,
    enabled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    bot_id TEXT PRIMARY KEY,
    qty TEXT NOT NULL,
    avg_price TEXT NOT NULL,
    realized TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_order_ns INTEGER NOT NULL,
    orders INTEGER NOT NULL,
    resting TEXT NOT NULL
);
"""

DEFAULT_PARTITIONS = 16
_BOT_ID = re.compile(r"[A-Za-z0-9_.]{1,40}")


class BotStoreError(ValueError):
    """A bot row that makes no bot (unknown strategy, non-positive size, ...)."""


class BotStore:
    def __init__(self, path: str | Path, partitions: int = DEFAULT_PARTITIONS) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('partitions', ?)", (str(partitions),))

    @property
    def partitions(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'partitions'").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()

    # ---------------------------------------------------------------- bots
    def add(self, bots: Iterable[BotConfig]) -> int:
        rows = [_row(_validated(b)) for b in bots]
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO bots VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def set_enabled(self, bot_id: str, enabled: bool) -> bool:
        cursor = self._db.execute("UPDATE bots SET enabled = ? WHERE bot_id = ?", (int(enabled), bot_id))
        return cursor.rowcount == 1

    def bots(self, enabled_only: bool = True) -> list[BotConfig]:
        query = "SELECT * FROM bots" + (" WHERE enabled = 1" if enabled_only else "") + " ORDER BY bot_id"
        return [_bot(row) for row in self._db.execute(query)]

    def active_pairs(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT pair FROM bots WHERE enabled = 1 ORDER BY pair")]

    # ---------------------------------------------------------------- positions
    def positions(self, bot_ids: Iterable[str]) -> dict[str, Position]:
        wanted = list(bot_ids)
        out: dict[str, Position] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps the number of bound parameters
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT * FROM positions WHERE bot_id IN ({marks})", chunk):
                out[row[0]] = Position(Decimal(row[1]), Decimal(row[2]), Decimal(row[3]), row[4], row[5], row[6], _resting(row[7]))
        return out

    def save_positions(self, positions: dict[str, Position]) -> None:
        self.save_rows(position_rows(positions))

    def save_rows(self, rows: list[tuple[object, ...]]) -> None:
        """Save rows made by ``position_rows`` (a snapshot: the positions may change meanwhile)."""
        if not rows:
            return
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO positions VALUES (?,?,?,?,?,?,?,?)", rows)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def position_rows(positions: dict[str, Position]) -> list[tuple[object, ...]]:
    return [
        (b, str(p.qty), str(p.avg_price), str(p.realized), p.last_seq, p.last_order_ns, p.orders, _resting_text(p.resting))
        for b, p in positions.items()
    ]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc is None else "ROLLBACK")


def _resting_text(order: RestingOrder | None) -> str:
    if order is None:
        return ""
    return json.dumps(
        {"order_id": order.order_id, "side": order.side.name, "lots": order.lots, "price": str(order.price), "filled": order.filled_lots}
    )


def _resting(text: str) -> RestingOrder | None:
    if not text:
        return None
    data = json.loads(text)
    return RestingOrder(int(data["order_id"]), Side[data["side"]], int(data["lots"]), Decimal(data["price"]), int(data["filled"]))


def _validated(bot: BotConfig) -> BotConfig:
    if bot.strategy not in STRATEGIES:
        raise BotStoreError(f"bot {bot.bot_id}: unknown strategy {bot.strategy!r}; known: {', '.join(STRATEGIES)}")
    if not _BOT_ID.fullmatch(bot.bot_id):
        raise BotStoreError(f"bot id {bot.bot_id!r}: 1-40 characters of letters, digits, '_' or '.' (it prefixes client order ids)")
    if bot.size <= 0 or bot.max_position <= 0 or bot.max_exposure <= 0:
        raise BotStoreError(f"bot {bot.bot_id}: size, max_position and max_exposure must be positive")
    if not bot.pair:
        raise BotStoreError(f"bot {bot.bot_id}: no pair")
    return bot


def _row(bot: BotConfig) -> tuple[object, ...]:
    return (
        bot.bot_id, bot.pair, bot.strategy, str(bot.size), str(bot.max_position), str(bot.max_exposure), bot.take_profit_bps,
        bot.stop_loss_bps, bot.cooldown_ms, bot.max_orders_per_min, json.dumps(bot.params, sort_keys=True), int(bot.enabled),
    )  # fmt: skip


def _bot(row: tuple[object, ...]) -> BotConfig:
    params = json.loads(str(row[10]))
    return BotConfig(
        str(row[0]), str(row[1]), str(row[2]), Decimal(str(row[3])), Decimal(str(row[4])), Decimal(str(row[5])),
        int(str(row[6])), int(str(row[7])), int(str(row[8])), int(str(row[9])), {str(k): str(v) for k, v in params.items()}, bool(row[11]),
    )  # fmt: skip


# Sizes per pair: about 300 quote units per order at the default start prices.
_SIZES = {"BTC-USD": Decimal("0.01"), "ETH-USD": Decimal("0.15"), "SOL-USD": Decimal("2")}


def generate_bots(count: int, pairs: list[str], seed: int = 1, start: int = 0) -> list[BotConfig]:
    """``count`` bots spread over ``pairs`` and the three strategies, with seeded parameters (for demos and the bench)."""
    rng = random.Random(seed)
    out = []
    for n in range(start, start + count):
        pair = pairs[n % len(pairs)]
        strategy = STRATEGIES[(n // len(pairs)) % len(STRATEGIES)]
        size = _SIZES.get(pair, Decimal(1))
        params = {"lookback": str(rng.randint(2, 5)), "threshold_bps": str(rng.randint(3, 20))}
        if strategy == "grid":
            params = {"step_bps": str(rng.randint(5, 30))}
        out.append(
            BotConfig(
                f"b{n:06d}",
                pair,
                strategy,
                size,
                size * 10,
                size * 10 * 40_000,
                rng.randint(20, 80),
                rng.randint(20, 80),
                rng.choice((1000, 2000, 5000)),
                30,
                params,
            )
        )
    return out
