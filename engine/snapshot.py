"""Snapshot, restore and the state hash.

A snapshot is a plain JSON-compatible ``dict`` holding everything that decides
the engine's future behaviour: configuration, counters, every live order in
queue order, pending stops, the client order ids each trader has used, and the
bounded histories the queries serve. Derived structures (price heaps, dead
queue entries, compiled risk limits) are rebuilt, not stored.

Invariants (property-tested):

* ``restore(snapshot(e))`` behaves exactly like ``e`` for any later command.
* ``state_hash(restore(snapshot(e))) == state_hash(e)``.
* Two engines fed the same commands have the same ``state_hash``.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Any

from engine.book import Account, BookSide, Order, OrderBook, StopOrder, terms_for
from engine.engine import Engine
from engine.errors import SnapshotError
from engine.events import TradeExecuted
from engine.instruments import Instrument
from engine.risk import RiskLimits
from engine.types import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce

FORMAT_VERSION = 1
_SIDES = {int(v): v for v in Side}
_ORDER_TYPES = {int(v): v for v in OrderType}
_TIFS = {int(v): v for v in TimeInForce}
_STPS = {int(v): v for v in SelfTradePrevention}


def _order(o: Order) -> list[Any]:
    return [
        o.order_id,
        o.trader,
        o.client_order_id,
        o.symbol,
        int(o.side),
        o.price,
        o.qty,
        o.filled,
        int(o.terms.stp),
        int(o.terms.order_type),
        int(o.terms.tif),
        o.stop_price,
        o.terms.post_only,
    ]


def _side(side: BookSide) -> list[list[Any]]:
    out: list[list[Any]] = []
    for price in side.prices_best_first():
        out.append([price, [_order(o) for o in side.levels[price].live_orders()]])
    return out


def _trade(t: TradeExecuted) -> list[Any]:
    return [
        t.seq,
        t.trade_id,
        t.symbol,
        t.price,
        t.qty,
        int(t.aggressor_side),
        t.maker_order_id,
        t.maker_trader,
        t.maker_client_order_id,
        t.maker_remaining,
        t.taker_order_id,
        t.taker_trader,
        t.taker_client_order_id,
        t.taker_remaining,
    ]


def snapshot(engine: Engine) -> dict[str, Any]:
    books: dict[str, Any] = {}
    for symbol, book in engine.books.items():
        stops = sorted([*book.buy_stops.values(), *book.sell_stops.values()], key=lambda o: o.order_id)
        books[symbol] = {
            "instrument": book.instrument.to_dict(),
            "last_price": book.last_price,
            "bids": _side(book.bids),
            "asks": _side(book.asks),
            "stops": [_order(o) for o in stops],
            "trades": [_trade(t) for t in engine.trades[symbol]],
        }
    return {
        "version": FORMAT_VERSION,
        "seq": engine.seq,
        "last_order_id": engine.last_order_id,
        "last_trade_id": engine.last_trade_id,
        "risk": engine.risk.to_dict(),
        "trader_limits": {t: limits.to_dict() for t, limits in sorted(engine.trader_limits.items())},
        "trade_history": engine.trade_history,
        "terminal_history": engine.terminal_history,
        "books": books,
        "client_ids": {t: [[c, order_id] for c, order_id in a.client_ids.items()] for t, a in engine.accounts.items()},
        "terminal": [[_order(o), int(status)] for o, status in engine.terminal.entries()],
    }


def restore(state: dict[str, Any]) -> Engine:
    """Rebuild an engine from ``snapshot()`` output. Raises ``SnapshotError`` if it is not one."""
    if not isinstance(state, dict):
        raise SnapshotError(f"a snapshot is a dict, not {type(state).__name__}")
    try:
        return _restore(state)
    except SnapshotError:
        raise
    except Exception as exc:  # any other failure means the input is not a snapshot we wrote
        raise SnapshotError(f"not a valid engine snapshot: {exc!r}") from exc


def _restore(state: dict[str, Any]) -> Engine:
    if state.get("version") != FORMAT_VERSION:
        raise SnapshotError(f"unsupported snapshot version {state.get('version')!r}")
    engine = Engine(
        RiskLimits.from_dict(state["risk"]),
        {t: RiskLimits.from_dict(d) for t, d in state["trader_limits"].items()},
        int(state["trade_history"]),
        int(state["terminal_history"]),
    )
    engine.seq = int(state["seq"])
    engine.last_order_id = int(state["last_order_id"])
    engine.last_trade_id = int(state["last_trade_id"])

    def account(trader: str) -> Account:
        acc = engine.accounts.get(trader)
        if acc is None:
            acc = engine.accounts[trader] = Account(trader)
        return acc

    def order(row: list[Any]) -> Order:
        # Table lookups, not enum calls: a restart restores every resting order (a KeyError is a SnapshotError too).
        terms = terms_for(_ORDER_TYPES[row[9]], _TIFS[row[10]], _STPS[row[8]], bool(row[12]))
        trader = str(row[1])
        account(trader)
        args = (int(row[0]), trader, str(row[2]), str(row[3]), _SIDES[row[4]], int(row[5]), int(row[6]), terms)
        o = StopOrder(*args, int(row[11])) if int(row[11]) else Order(*args)
        o.filled = int(row[7])
        return o

    for trader, pairs in state["client_ids"].items():
        acc = account(str(trader))
        for coid, oid in pairs:
            acc.client_ids[str(coid)] = int(oid)

    live: list[Order] = []
    for symbol, data in state["books"].items():
        instrument = Instrument.from_dict(data["instrument"])
        if instrument.symbol != symbol:
            raise SnapshotError(f"book {symbol!r} holds instrument {instrument.symbol!r}")
        book = OrderBook(instrument)
        book.set_limits(*engine.risk.compile_for(instrument))
        book.last_price = int(data["last_price"])
        engine.books[symbol] = book
        trades = book.trades = engine.trades[symbol] = deque(maxlen=engine.trade_history)
        for side, rows in ((book.bids, data["bids"]), (book.asks, data["asks"])):
            for price, orders in rows:
                level = side.level_for(int(price))
                for row in orders:
                    o = order(row)
                    if o.side is not side.side or o.price != level.price or o.symbol != symbol or o.qty <= 0:
                        raise SnapshotError(f"order {o.order_id} does not belong in {symbol} {side.side.name} {level.price}")
                    level.append(o)
                    live.append(o)
        for row in data["stops"]:
            o = order(row)
            if not isinstance(o, StopOrder) or o.symbol != symbol:
                raise SnapshotError(f"order {o.order_id} is not a stop of {symbol}")
            (book.buy_stops if o.side is Side.BUY else book.sell_stops)[o.order_id] = o
            live.append(o)
        for t in data["trades"]:
            trades.append(
                TradeExecuted(
                    int(t[0]), int(t[1]), str(t[2]), int(t[3]), int(t[4]), Side(t[5]),
                    int(t[6]), str(t[7]), str(t[8]), int(t[9]),
                    int(t[10]), str(t[11]), str(t[12]), int(t[13]),
                )
            )  # fmt: skip
    for row, status in state["terminal"]:
        o = order(row)
        engine.terminal.load(o, OrderStatus(status))
    for o in sorted(live, key=lambda o: o.order_id):
        engine._set_open(engine.accounts[o.trader], o)
    return engine


def state_hash(engine: Engine) -> str:
    """SHA-256 of the canonical snapshot: one number to compare two replicas."""
    canonical = json.dumps(snapshot(engine), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
