"""The gateway writer's inner loop: apply one submission's commands, tally them, collect market data.

Pure and synchronous (no asyncio, no clock), compiled with mypyc
(``scripts/build_native.py``): it runs once per command on every wire, so it
is the one place where per-command bookkeeping costs anything. Everything
that can be counted per submission or per group (latency, transport counts,
journal records) is done by the caller, not here.

Invariants:

* Commands are applied in order, each exactly once; ``replies`` gets one
  event list per command, the engine's own. A retried request id the engine's
  window still holds (``Engine.repeated_from``) is answered with its first
  events, or, when that answer is older than the window's duration (its
  position below ``answerable_from``), with ``DUPLICATE_REQUEST_ID``; either
  way nothing was applied, so its events are neither tallied nor published.
* ``Tally`` counts what ``GatewayStats`` reports (commands by kind, accepted,
  rejected and cancelled by reason, trades) from the events themselves.
* Market data is coalesced per group: every trade in engine order, and for
  each touched price level only its last ``BookDelta`` (the level's state at
  the end of the group). A subscriber that applies them reaches the same book
  as one that applied every delta.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from engine import (
    BookDelta,
    CancelOrder,
    Command,
    Engine,
    Event,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    TradeExecuted,
)
from transports.codec.lean import OutcomeColumns

LevelKey = tuple[str, int, int]  # symbol, side, price


class Tally:
    """Counts of one submission (merged into ``GatewayStats`` once per submission)."""

    def __init__(self) -> None:
        self.places = 0
        self.cancels = 0
        self.replaces = 0
        self.mass_cancels = 0
        self.add_instruments = 0
        self.accepted = 0
        self.trades = 0
        self.repeated = 0  # retried request ids answered from the engine's window (nothing applied)
        self.rejected: dict[int, int] = {}  # RejectReason number -> count
        self.cancelled: dict[int, int] = {}  # CancelReason number -> count


class MarketBatch:
    """The market data of one group: trades in order, the last delta of each touched level.

    ``wanted`` is off while nobody subscribes to anything: then book deltas
    nobody can receive are not collected, only counted per symbol (``unsent``),
    so that each symbol's ``md_seq`` still advances with its book. Trades are
    always collected: the candles are built from every one of them.
    """

    def __init__(self) -> None:
        self.wanted = True
        self.trades: list[TradeExecuted] = []
        self.deltas: dict[LevelKey, BookDelta] = {}
        self.unsent: dict[str, int] = {}

    def clear(self) -> None:
        self.trades = []
        self.deltas = {}
        self.unsent = {}


def apply_commands(
    engine: Engine,
    commands: Sequence[Command],
    replies: list[list[Event]],
    tally: Tally,
    market: MarketBatch,
    outcomes: OutcomeColumns | None = None,
    answerable_from: int = 0,
) -> None:
    """Apply ``commands`` through ``engine.handle``.

    Each one's events are appended to ``replies``, or, for a lean submission
    (``outcomes`` given), only its outcome is recorded and the events are
    dropped at once: nobody will read them, and keeping them alive costs.
    """
    trades = market.trades
    deltas = market.deltas
    collect = market.wanted
    unsent = market.unsent
    rejected = tally.rejected
    cancelled = tally.cancelled
    handle = engine.handle
    for command in commands:
        events = handle(command)  # total: a bad command is a reject event, never an exception
        repeated = engine.repeated_from >= 0
        if repeated:
            tally.repeated += 1
            if engine.repeated_from < answerable_from:
                events = [_too_old(command)]
                rejected[_DUPLICATE_REQUEST_ID] = rejected.get(_DUPLICATE_REQUEST_ID, 0) + 1
        if outcomes is None:
            replies.append(events)
        else:
            outcomes.add(command, events)
        if isinstance(command, PlaceOrder):
            tally.places += 1
        elif isinstance(command, CancelOrder):
            tally.cancels += 1
        elif isinstance(command, ReplaceOrder):
            tally.replaces += 1
        elif isinstance(command, MassCancel):
            tally.mass_cancels += 1
        else:
            tally.add_instruments += 1
        if repeated:
            continue
        for event in events:
            if isinstance(event, BookDelta):
                if collect:
                    deltas[(event.symbol, int(event.side), event.price)] = event
                else:
                    unsent[event.symbol] = unsent.get(event.symbol, 0) + 1
            elif isinstance(event, TradeExecuted):
                tally.trades += 1
                trades.append(event)  # always: candles and the timed tape need every trade (transports.core.candles)
            elif isinstance(event, OrderAccepted):
                tally.accepted += 1
            elif isinstance(event, OrderRejected):
                code = int(event.reason)
                rejected[code] = rejected.get(code, 0) + 1
            elif isinstance(event, OrderCancelled):
                code = int(event.reason)
                cancelled[code] = cancelled.get(code, 0) + 1


_DUPLICATE_REQUEST_ID: Final = int(RejectReason.DUPLICATE_REQUEST_ID)


def _too_old(command: Command) -> OrderRejected:
    """The answer to a retry whose first answer is older than the window's duration (not an engine event: seq 0)."""
    trader = getattr(command, "trader", "")
    request_id = getattr(command, "request_id", 0)
    message = f"request id {request_id} was answered longer ago than the de-duplication window; nothing applied"
    return OrderRejected(0, trader, "", "", RejectReason.DUPLICATE_REQUEST_ID, message, 0)
