"""Adapters that replay a workload's peer stream on the peer libraries.

Each runner is one tight loop over the pre-built ``PeerOp`` tuples, calling the
peer's public Python API; the tuple dispatch is the only adapter cost. The
``check`` variants do the same with assertions (every cancel hits a live
order) and are run once, untimed, before anything is timed: a missed cancel
would make ``limit_order_book`` abort the process (its C++ ``cancel`` calls
``unordered_map::at``).

* ``lightmatchingengine`` (pure Python): ``add_order`` / ``cancel_order``. It
  has no IOC and no replace: IOC = ``add_order`` then ``cancel_order`` if the
  returned order still has ``leaves_qty``; replace = cancel + add.
* ``limit_order_book`` (C++ through ctypes): ``limit`` / ``cancel``; IOC =
  ``limit`` then ``cancel`` if ``has(id)``; replace = cancel + limit. We pick
  its order ids (the same 1, 2, 3... as lightmatchingengine assigns itself).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from time import perf_counter, process_time
from typing import Any

from bench.engine_workloads import OP_CANCEL, OP_IOC, OP_LIMIT, OP_REPLACE, SYMBOL, BookState, PeerOp

PEERS = ("lightmatchingengine", "limit_order_book")


def available() -> dict[str, str]:
    """Peer name -> version, for the peers that import."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name, dist in (("lightmatchingengine", "lightmatchingengine"), ("limit_order_book", "limit-order-book")):
        try:
            __import__(name)
            out[name] = version(dist)
        except (ImportError, PackageNotFoundError):
            continue
    return out


# ------------------------------------------------------ lightmatchingengine
def _lme_new() -> Any:
    from lightmatchingengine.lightmatchingengine import LightMatchingEngine

    return LightMatchingEngine()


def _lme_run(lme: Any, ops: Sequence[PeerOp]) -> None:
    add = lme.add_order
    cancel = lme.cancel_order
    sym = SYMBOL
    for kind, side, _is_buy, price, qty, pid, old_pid in ops:
        if kind == OP_REPLACE:
            cancel(old_pid, sym)
            add(sym, price, qty, side)
        elif kind == OP_LIMIT:
            add(sym, price, qty, side)
        elif kind == OP_CANCEL:
            cancel(pid, sym)
        else:  # OP_IOC
            order = add(sym, price, qty, side)[0]
            if order.leaves_qty:
                cancel(order.order_id, sym)


def _lme_check(lme: Any, ops: Sequence[PeerOp]) -> None:
    sym = SYMBOL
    for kind, side, _is_buy, price, qty, pid, old_pid in ops:
        if kind in (OP_CANCEL, OP_REPLACE):
            target = old_pid if kind == OP_REPLACE else pid
            if lme.cancel_order(target, sym) is None:
                raise AssertionError(f"lightmatchingengine: cancel of {target} missed")
        if kind != OP_CANCEL:
            order = lme.add_order(sym, price, qty, side)[0]
            if order.order_id != pid:
                raise AssertionError(f"lightmatchingengine numbered order {order.order_id}, the stream expects {pid}")
            if kind == OP_IOC and order.leaves_qty:
                lme.cancel_order(order.order_id, sym)


def _lme_state(lme: Any) -> BookState:
    book = lme.order_books.get(SYMBOL)
    if book is None:
        return BookState(0, 0, 0, 0)
    orders = [o for level in (*book.bids.values(), *book.asks.values()) for o in level]
    return BookState(
        len(orders),
        int(sum(o.leaves_qty for o in orders)),
        int(max(book.bids)) if book.bids else 0,
        int(min(book.asks)) if book.asks else 0,
    )


# --------------------------------------------------------- limit_order_book
def _lob_new() -> Any:
    from limit_order_book import LimitOrderBook

    return LimitOrderBook()


def _lob_run(lob: Any, ops: Sequence[PeerOp]) -> None:
    limit = lob.limit
    cancel = lob.cancel
    has = lob.has
    for kind, _side, is_buy, price, qty, pid, old_pid in ops:
        if kind == OP_REPLACE:
            cancel(old_pid)
            limit(is_buy, pid, qty, price)
        elif kind == OP_LIMIT:
            limit(is_buy, pid, qty, price)
        elif kind == OP_CANCEL:
            cancel(pid)
        else:  # OP_IOC
            limit(is_buy, pid, qty, price)
            if has(pid):
                cancel(pid)


def _lob_check(lob: Any, ops: Sequence[PeerOp]) -> None:
    for kind, _side, is_buy, price, qty, pid, old_pid in ops:
        if kind in (OP_CANCEL, OP_REPLACE):
            target = old_pid if kind == OP_REPLACE else pid
            if not lob.has(target):
                raise AssertionError(f"limit_order_book: cancel of {target} would miss (and abort the process)")
            lob.cancel(target)
        if kind != OP_CANCEL:
            if lob.has(pid):
                raise AssertionError(f"limit_order_book: id {pid} reused")
            lob.limit(is_buy, pid, qty, price)
            if kind == OP_IOC and lob.has(pid):
                lob.cancel(pid)


def _lob_state(lob: Any) -> BookState:
    return BookState(int(lob.count()), int(lob.volume()), int(lob.best_buy()), int(lob.best_sell()))


_NEW: dict[str, Callable[[], Any]] = {"lightmatchingengine": _lme_new, "limit_order_book": _lob_new}
_RUN: dict[str, Callable[[Any, Sequence[PeerOp]], None]] = {"lightmatchingengine": _lme_run, "limit_order_book": _lob_run}
_CHECK: dict[str, Callable[[Any, Sequence[PeerOp]], None]] = {"lightmatchingengine": _lme_check, "limit_order_book": _lob_check}
_STATE: dict[str, Callable[[Any], BookState]] = {"lightmatchingengine": _lme_state, "limit_order_book": _lob_state}


def check(peer: str, setup: Sequence[PeerOp], ops: Sequence[PeerOp]) -> BookState:
    """Replay with assertions; return the final book for comparison with ours."""
    book = _NEW[peer]()
    _CHECK[peer](book, setup)
    _CHECK[peer](book, ops)
    return _STATE[peer](book)


def timed_run(peer: str, setup: Sequence[PeerOp], ops: Sequence[PeerOp]) -> tuple[float, float]:
    """Wall and CPU seconds to replay ``ops`` on a fresh peer pre-filled with ``setup`` (the pre-fill is not timed)."""
    book = _NEW[peer]()
    _RUN[peer](book, setup)
    run = _RUN[peer]
    gc.collect()
    c0 = process_time()
    t0 = perf_counter()
    run(book, ops)
    elapsed = perf_counter() - t0
    cpu = process_time() - c0
    del book
    return elapsed, cpu


# ------------------------------------------------------------------- memory
def fill(peer: str, orders: Any) -> Any:
    """Add resting orders ``(trader, coid, is_buy, price, qty)`` to a fresh peer; return the peer (peers take no trader or client id)."""
    book = _NEW[peer]()
    if peer == "lightmatchingengine":
        add = book.add_order
        for _trader, _coid, is_buy, price, qty in orders:
            add(SYMBOL, price, qty, 1 if is_buy else 2)
    else:
        limit = book.limit
        for pid, (_trader, _coid, is_buy, price, qty) in enumerate(orders, 1):
            limit(is_buy, pid, qty, price)
    return book


def state(peer: str, book: Any) -> BookState:
    return _STATE[peer](book)
