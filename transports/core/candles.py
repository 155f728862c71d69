"""Candles, the timed trade tape and the 24 h ticker, built from trades as the gateway applies them.

The engine has no clock; time enters here. The gateway reads the wall clock
once per applied group that traded (never per command) and hands the group's
trades and that time to ``MarketStats.add_trades``. The same time is
journalled before the group's commands (a ``W`` record, ``transports.core.journal``)
and the whole state is saved in the snapshot's market frame, so a restart
rebuilds exactly the candles, tape and ticker it had: the state is a pure
function of (trades, group times).

Invariants:

* Times never go backwards: ``stamp`` clamps a clock that stepped back to the
  last time given, and the clamped time is what is journalled.
* A candle of interval ``w`` starts at a multiple of ``w`` ms since the epoch
  (UTC) and exists only if a trade fell in it (no empty candles). ``open`` is
  its first trade's price, ``close`` its last, ``volume`` the lots traded.
* Memory is bounded: at most ``CANDLES_KEPT`` candles per symbol and interval
  (the oldest dropped first: 1 day of 1m candles, 5 days of 5m, 15 of 15m, 60
  of 1h, about 4 years of 1d) and ``TAPE_KEPT`` trades per symbol.
* A trade of unknown time (0: replayed from a journal older than timed
  trades) joins the tape but no candle.
* Prices are ticks and quantities lots; decimal strings only on the wire
  (``transports.codec.json_views``).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from engine import Side, TradeExecuted
from transports.codec.market_messages import Candle, PublicTrade, Ticker, TimedTrade
from transports.core.limits import MAX_CANDLES_QUERY, MAX_TRADES_QUERY

INTERVALS: Final[dict[str, int]] = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}
CANDLES_KEPT: Final = MAX_CANDLES_QUERY  # per symbol and interval (1,440): one day of 1m candles, which the 24 h ticker reads
TAPE_KEPT: Final = MAX_TRADES_QUERY  # recent trades per symbol with their times (1,000)
DAY_MS: Final = 86_400_000
_MINUTE_MS: Final = INTERVALS["1m"]
_STATE_VERSION: Final = 1
_WIDTHS: Final = tuple(INTERVALS.items())


@dataclass(eq=False, slots=True)
class SymbolMarket:
    """One symbol's tape and candles; ``traded`` counts every trade ever added (tape evictions included).

    The tape holds the engine's own ``TradeExecuted`` objects (the ones its recent-trades history holds too, so
    a tuple per trade is all it adds) with their times; only ``public`` views of them ever leave the process.
    """

    tape: deque[tuple[TradeExecuted, int]] = field(default_factory=lambda: deque(maxlen=TAPE_KEPT))
    candles: dict[str, deque[Candle]] = field(default_factory=lambda: {name: deque(maxlen=CANDLES_KEPT) for name in INTERVALS})
    traded: int = 0
    by_width: list[tuple[deque[Candle], int]] = field(init=False, repr=False)  # the ``candles`` series with their widths

    def __post_init__(self) -> None:
        self.by_width = [(self.candles[name], width) for name, width in _WIDTHS]

    def fold(self, at: int, part: list[int]) -> None:
        """Fold ``part`` (``[open, high, low, close, volume, trades]`` of a group's trades of this symbol, all at
        ``at``: one time) into each interval's candle."""
        open_, high, low, close, volume, trades = part
        for series, width in self.by_width:
            start = at - at % width
            if not series or series[-1].start < start:
                series.append(Candle(start, open_, high, low, close, volume, trades))
                continue
            # series[-1].start > start cannot happen: times never go back (``MarketStats.stamp``).
            last = series[-1]
            if high > last.high:
                last.high = high
            if low < last.low:
                last.low = low
            last.close = close
            last.volume += volume
            last.trades += trades

    def latest(self, count: int) -> list[TimedTrade]:
        """The latest ``count`` trades of the tape, oldest first, as the public sees them."""
        if count <= 0:
            return []
        chosen = list(self.tape)[-count:] if count < len(self.tape) else self.tape
        return [TimedTrade(PublicTrade.of(trade), time_ms) for trade, time_ms in chosen]


def _tape_row(item: tuple[TradeExecuted, int]) -> list[int]:
    trade, time_ms = item
    return [trade.seq, trade.trade_id, trade.price, trade.qty, int(trade.aggressor_side), time_ms]


class MarketStats:
    """Every symbol's ``SymbolMarket``, the last time given, and the queries the public API answers."""

    def __init__(self) -> None:
        self.symbols: dict[str, SymbolMarket] = {}
        self.clock_ms = 0  # the latest group time seen (given by ``stamp`` or replayed)
        # symbol -> (trades counted, window's first minute, the ticker then): every ticker subscriber reads it once per
        # change, and summing a day of 1m candles for each would cost per subscriber.
        self._tickers: dict[str, tuple[int, int, Ticker]] = {}

    def stamp(self, now_ms: int) -> int:
        """The time to give the group applied now: ``now_ms``, or the last one if the clock stepped back."""
        if now_ms > self.clock_ms:
            self.clock_ms = now_ms
        return self.clock_ms

    def add_trades(self, trades: Iterable[TradeExecuted], time_ms: int) -> None:
        """A group's trades in engine order, all at ``time_ms`` (``stamp``'s answer, or a journalled one).

        Runs in the gateway writer. Per trade it only appends to the tape and
        widens one running candle per symbol (the group shares one time, so
        one bucket per interval); each touched symbol's five intervals are
        then updated once per group, not once per trade.
        """
        if time_ms > self.clock_ms:
            self.clock_ms = time_ms
        symbols = self.symbols
        parts: dict[str, list[int]] = {}  # symbol -> [open, high, low, close, volume, trades] of this group
        for trade in trades:
            symbol, price = trade.symbol, trade.price
            market = symbols.get(symbol)
            if market is None:
                market = symbols[symbol] = SymbolMarket()
            market.tape.append((trade, time_ms))
            market.traded += 1
            part = parts.get(symbol)
            if part is None:
                parts[symbol] = [price, price, price, price, trade.qty, 1]
                continue
            if price > part[1]:
                part[1] = price
            elif price < part[2]:
                part[2] = price
            part[3] = price
            part[4] += trade.qty
            part[5] += 1
        if time_ms > 0:  # a trade of unknown time (an old journal's) joins the tape, no candle
            for symbol, part in parts.items():
                symbols[symbol].fold(time_ms, part)

    def market(self, symbol: str) -> SymbolMarket | None:
        return self.symbols.get(symbol)

    def trades(self, symbol: str, limit: int, since: int | None = None) -> list[TimedTrade]:
        """Oldest first: the latest ``limit`` trades, or with ``since`` the first ``limit`` with a trade id above it."""
        market = self.symbols.get(symbol)
        if market is None or limit <= 0:
            return []
        if since is None:
            return market.latest(limit)
        out: list[TimedTrade] = []
        for trade, time_ms in market.tape:
            if trade.trade_id > since:
                out.append(TimedTrade(PublicTrade.of(trade), time_ms))
                if len(out) == limit:
                    break
        return out

    def candles(self, symbol: str, interval: str, start: int, end: int, limit: int) -> list[Candle]:
        """Oldest first: candles of ``interval`` that start in ``[start, end]``, the latest ``limit`` of them."""
        market = self.symbols.get(symbol)
        if market is None:
            return []
        chosen = [c for c in market.candles[interval] if start <= c.start <= end]
        return chosen[-limit:] if limit > 0 else []

    def ticker(self, symbol: str, now_ms: int) -> Ticker:
        """Last trade and the 24 h window ending with ``now_ms``'s minute (the 1,440 one-minute candles up to it).

        ``bid``/``ask`` are left 0: the book is the gateway's to add (``dataclasses.replace``).
        """
        market = self.symbols.get(symbol)
        if market is None:
            return Ticker(symbol, now_ms, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        first_minute = now_ms - now_ms % _MINUTE_MS - DAY_MS + _MINUTE_MS
        cached = self._tickers.get(symbol)
        if cached is not None and cached[0] == market.traded and cached[1] == first_minute:
            return dataclasses.replace(cached[2], time_ms=now_ms)
        ticker = self._window_ticker(symbol, market, now_ms, first_minute)
        self._tickers[symbol] = (market.traded, first_minute, ticker)
        return ticker

    def _window_ticker(self, symbol: str, market: SymbolMarket, now_ms: int, first_minute: int) -> Ticker:
        last = market.tape[-1][0] if market.tape else None
        window = [c for c in market.candles["1m"] if c.start >= first_minute]
        open_, high, low = (window[0].open, max(c.high for c in window), min(c.low for c in window)) if window else (0, 0, 0)
        return Ticker(
            symbol,
            now_ms,
            last.price if last is not None else 0,
            last.trade_id if last is not None else 0,
            0,
            0,
            0,
            0,
            open_,
            high,
            low,
            sum(c.volume for c in window),
            sum(c.trades for c in window),
        )

    # ------------------------------------------------------------ persistence
    def encode(self) -> bytes:
        """The whole state as JSON (integers only): the snapshot's market frame."""
        symbols: dict[str, Any] = {}
        for symbol, market in sorted(self.symbols.items()):
            symbols[symbol] = {
                "traded": market.traded,
                "tape": [_tape_row(t) for t in market.tape],
                "candles": {name: [c.as_list() for c in series] for name, series in market.candles.items()},
            }
        return orjson.dumps({"version": _STATE_VERSION, "clock_ms": self.clock_ms, "symbols": symbols})

    @staticmethod
    def decode(data: bytes) -> MarketStats:
        """Inverse of ``encode``; raises ``ValueError`` for a state this version cannot read."""
        state = orjson.loads(data)
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(f"market state version {state.get('version') if isinstance(state, dict) else None!r} is not {_STATE_VERSION}")
        stats = MarketStats()
        stats.clock_ms = int(state["clock_ms"])
        for symbol, saved in state["symbols"].items():
            market = stats.symbols[symbol] = SymbolMarket(traded=int(saved["traded"]))
            for seq, trade_id, price, qty, side, time_ms in saved["tape"]:
                # Only the public fields are saved: the restored trade names no trader or order (never shown anyway).
                trade = TradeExecuted(seq, trade_id, symbol, price, qty, Side(side), 0, "", "", 0, 0, "", "", 0)
                market.tape.append((trade, time_ms))
            for name, rows in saved["candles"].items():
                if name in market.candles:
                    market.candles[name].extend(Candle(*row) for row in rows)
        return stats
