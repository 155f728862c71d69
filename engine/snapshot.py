"""Snapshot, restore and the state hash.

A snapshot is a plain JSON-compatible ``dict`` holding everything that decides
the engine's future behaviour: configuration, counters, every live order in
queue order, pending stops, the client order ids each trader holds, the
de-duplication window (its finished entries and the answers of its request
ids, so a retry after a restart is answered as before it), and the bounded
histories the queries serve. Derived structures (price heaps, dead
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
from engine.engine import DEFAULT_DEDUP_WINDOW, Engine
from engine.errors import SnapshotError
from engine.events import BookDelta, Event, OrderAccepted, OrderCancelled, OrderRejected, OrderReplaced, StopTriggered, TradeExecuted
from engine.instruments import Instrument
from engine.reasons import CancelReason, RejectReason
from engine.risk import RiskLimits
from engine.types import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce

FORMAT_VERSION = 2  # 2: the de-duplication window; a version 1 snapshot (every client id ever used) still loads
_READABLE = (1, 2)
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


# The events a request id's answer may hold, by name, and how to rebuild each field (``int`` for enums, as stored).
_EVENT_TYPES: dict[str, tuple[type, tuple[Any, ...]]] = {
    "OrderAccepted": (OrderAccepted, (int, int, str, str, str, Side, OrderType, TimeInForce, int, int, int)),
    "OrderRejected": (OrderRejected, (int, str, str, str, RejectReason, str, int)),
    "TradeExecuted": (TradeExecuted, (int, int, str, int, int, Side, int, str, str, int, int, str, str, int)),
    "OrderCancelled": (OrderCancelled, (int, int, str, str, str, CancelReason, int, int)),
    "OrderReplaced": (OrderReplaced, (int, int, str, str, str, Side, int, int, bool)),
    "StopTriggered": (StopTriggered, (int, int, str, str, str, int, int)),
    "BookDelta": (BookDelta, (int, str, Side, int, int, int)),
}


def _event(e: Event) -> list[Any]:
    name = type(e).__name__
    if name not in _EVENT_TYPES:
        raise SnapshotError(f"a request's answer cannot hold {name}")
    return [name, *(int(v) if isinstance(v, int) else v for v in (getattr(e, f) for f in e.FIELDS))]


def _restore_event(row: list[Any]) -> Event:
    cls, kinds = _EVENT_TYPES[str(row[0])]
    values = row[1:]
    if len(values) != len(kinds):
        raise SnapshotError(f"{row[0]} with {len(values)} fields")
    event: Event = cls(*(kind(v) for kind, v in zip(kinds, values, strict=True)))
    return event


def _dedup(engine: Engine) -> dict[str, Any]:
    requests = engine.requests
    return {
        "window": engine.dedup_window,
        "position": engine.dedup_position,
        "recent": [list(entry) for entry in engine.recent],
        "answers": [
            [trader, request_id, *_answer(requests[(trader, request_id)])] for trader, _, _, request_id in engine.recent if request_id
        ],
    }


def _answer(answer: tuple[int, list[Event]]) -> list[Any]:
    return [answer[0], [_event(e) for e in answer[1]]]


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
        "dedup": _dedup(engine),
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
    version = state.get("version")
    if version not in _READABLE:
        raise SnapshotError(f"unsupported snapshot version {version!r}")
    dedup = state.get("dedup") or {"window": DEFAULT_DEDUP_WINDOW, "position": 0, "recent": [], "answers": []}
    engine = Engine(
        RiskLimits.from_dict(state["risk"]),
        {t: RiskLimits.from_dict(d) for t, d in state["trader_limits"].items()},
        int(state["trade_history"]),
        int(state["terminal_history"]),
        int(dedup["window"]),
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
    engine.dedup_position = int(dedup["position"])
    for trader, coid, order_id, request_id in dedup["recent"]:
        engine.recent.append((str(trader), str(coid), int(order_id), int(request_id)))
    for trader, request_id, position, events in dedup["answers"]:
        engine.requests[(str(trader), int(request_id))] = (int(position), [_restore_event(e) for e in events])
    if version == 1:
        _window_from_v1(engine)
    return engine


def _window_from_v1(engine: Engine) -> None:
    """A version 1 snapshot held every client id ever used: those of finished orders enter the window, oldest
    order first, and only the last ``dedup_window`` of them stay (as if the window had been there all along)."""
    finished = sorted(
        (order_id, trader, coid)
        for trader, account in engine.accounts.items()
        for coid, order_id in account.client_ids.items()
        if engine.open.get(order_id) is None
    )
    for order_id, trader, coid in finished:
        engine._remember(trader, coid, order_id, 0)


def state_hash(engine: Engine) -> str:
    """SHA-256 of the canonical snapshot: one number to compare two replicas."""
    canonical = json.dumps(snapshot(engine), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
