"""Public market-data views shared by REST and the WebSocket channels: ticker, trades, depth and candles.

Every view reads the gateway between groups (the event loop never runs one
inside a group), so each message is consistent with one engine state.

WebSocket channels (one symbol each; one JSON text message per change)::

    /ws/ticker/{symbol}                   {"type": "ticker", ...GET /ticker/{symbol}}
    /ws/trades/{symbol}?limit=N           {"type": "trades", "symbol", "trades": [timed trades, oldest first]}
    /ws/depth/{symbol}?limit=N            {"type": "depth", ...GET /depth/{symbol}}
    /ws/candles/{symbol}?interval=1m      {"type": "candles", "symbol", "interval", "candles": [[start, o, h, l, c, v, n], ...]}
    any of them                           {"type": "gap", "symbol", "dropped"}   (trades only: missed trades)
                                          {"type": "error", ...}                 (then the socket closes, 1008)

Invariants:

* A channel first sends the current state (the latest ``limit`` trades for
  ``trades``, default 50; the latest candle for ``candles``), then one
  message whenever the symbol changed, coalesced: everything that changed
  since its last message, never a state older than one already sent.
* It is woken by the symbol's market-data subscription
  (``Gateway.subscribe``), so it is bounded like one: a slow reader's backlog
  is dropped by the hub, and the channel then sends the state as it is now.
  A ``trades`` reader that fell further behind than the tape keeps
  (``TAPE_KEPT``) is told how many trades it missed (``gap``).
* A ``candles`` message carries every candle that changed since the previous
  one (the one still open, and the ones that closed meanwhile), oldest first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from engine import ExchangeError, Instrument, MalformedMessage, RejectReason
from transports.codec.json_codec import dumps
from transports.codec.json_views import encode_candle, encode_depth, encode_ticker, encode_timed_trade
from transports.codec.market_messages import TimedTrade
from transports.core.candles import INTERVALS
from transports.core.gateway import Gateway
from transports.core.limits import DEFAULT_DEPTH, MAX_DEPTH, MAX_TEXT, MAX_TRADES_QUERY
from transports.http.websockets import close_on_disconnect, refuse

DEFAULT_CHANNEL_TRADES = 50
Sender = Callable[[], Awaitable[None]]


def now_ms() -> int:
    """Wall-clock ms: the end of the ticker's 24 h window (one read per query, never per command)."""
    return time.time_ns() // 1_000_000


def instrument_of(gateway: Gateway, symbol: str) -> Instrument:
    instrument = gateway.instrument(symbol)
    if instrument is None:
        raise MalformedMessage(f"unknown symbol {symbol[:MAX_TEXT]!r}", RejectReason.UNKNOWN_SYMBOL)  # a WebSocket path is unchecked
    return instrument


def check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise MalformedMessage(f"unknown candle interval {interval!r}: one of {', '.join(INTERVALS)}")
    return interval


def ticker_view(gateway: Gateway, instrument: Instrument, at_ms: int) -> dict[str, Any]:
    """``GET /ticker/{symbol}``: the 24 h figures of ``MarketStats.ticker`` with the book's best bid and ask."""
    ticker = gateway.market_stats.ticker(instrument.symbol, at_ms)
    book = gateway.depth(instrument.symbol, 1)
    if book is not None:
        bid, ask = (book.bids[0] if book.bids else None), (book.asks[0] if book.asks else None)
        ticker = dataclasses.replace(
            ticker,
            bid=bid.price if bid else 0,
            bid_qty=bid.qty if bid else 0,
            ask=ask.price if ask else 0,
            ask_qty=ask.qty if ask else 0,
        )
    return encode_ticker(ticker, instrument)


def depth_view(gateway: Gateway, instrument: Instrument, limit: int) -> dict[str, Any]:
    """``GET /depth/{symbol}``: the best ``limit`` levels a side, with the market-data sequence they reflect."""
    book = gateway.depth(instrument.symbol, limit)
    if book is None:
        raise MalformedMessage(f"unknown symbol {instrument.symbol!r}", RejectReason.UNKNOWN_SYMBOL)
    return encode_depth(book, instrument, gateway.marketdata.md_seq.get(instrument.symbol, 0))


def trades_view(gateway: Gateway, instrument: Instrument, limit: int, since: int | None) -> list[dict[str, Any]]:
    return [encode_timed_trade(t, instrument) for t in gateway.market_stats.trades(instrument.symbol, limit, since)]


def candles_view(gateway: Gateway, instrument: Instrument, interval: str, start: int, end: int, limit: int) -> list[list[Any]]:
    if start > end:
        raise MalformedMessage(f"start ({start}) is after end ({end})")
    return [
        encode_candle(c, instrument) for c in gateway.market_stats.candles(instrument.symbol, check_interval(interval), start, end, limit)
    ]


# ---------------------------------------------------------------- WebSocket
class _TradesCursor:
    """What a ``trades`` channel has sent: the tape count it has seen up to."""

    def __init__(self, gateway: Gateway, instrument: Instrument, first: int) -> None:
        self.gateway, self.instrument, self.first = gateway, instrument, first
        market = gateway.market_stats.market(instrument.symbol)
        self.seen = market.traded if market is not None else 0

    def messages(self) -> list[dict[str, Any]]:
        market = self.gateway.market_stats.market(self.instrument.symbol)
        if market is None:
            return [self._trades([])] if self.first else []
        fresh, self.seen = market.traded - self.seen, market.traded
        if self.first:
            fresh, self.first = self.first, 0
            return [self._trades(market.latest(fresh))]
        if not fresh:
            return []
        out = []
        if fresh > len(market.tape):
            out.append({"type": "gap", "symbol": self.instrument.symbol, "dropped": fresh - len(market.tape)})
        out.append(self._trades(market.latest(fresh)))
        return out

    def _trades(self, items: list[TimedTrade]) -> dict[str, Any]:
        return {"type": "trades", "symbol": self.instrument.symbol, "trades": [encode_timed_trade(t, self.instrument) for t in items]}


class _CandlesCursor:
    """What a ``candles`` channel has sent: the start and trade count of its newest candle."""

    def __init__(self, gateway: Gateway, instrument: Instrument, interval: str) -> None:
        self.gateway, self.instrument, self.interval = gateway, instrument, interval
        self.sent: tuple[int, int] | None = None  # (start, trades) of the newest candle sent

    def messages(self) -> list[dict[str, Any]]:
        market = self.gateway.market_stats.market(self.instrument.symbol)
        series = list(market.candles[self.interval]) if market is not None else []
        if self.sent is None:
            changed = series[-1:]
        else:
            start, trades = self.sent
            changed = [c for c in series if c.start > start or (c.start == start and c.trades != trades)]
        if self.sent is not None and not changed:
            return []
        if series:
            self.sent = (series[-1].start, series[-1].trades)
        else:
            self.sent = (-1, 0)
        rows = [encode_candle(c, self.instrument) for c in changed]
        return [{"type": "candles", "symbol": self.instrument.symbol, "interval": self.interval, "candles": rows}]


def channel_messages(gateway: Gateway, instrument: Instrument, channel: str, params: dict[str, str]) -> Callable[[], list[dict[str, Any]]]:
    """The function a channel calls on each wake: the messages to send now (checked ``params`` first)."""
    if channel == "ticker":
        last: list[dict[str, Any]] = []

        def ticker() -> list[dict[str, Any]]:
            view = {"type": "ticker", **ticker_view(gateway, instrument, now_ms())}
            if last and {**view, "time": 0} == {**last[0], "time": 0}:
                return []
            last[:] = [view]
            return [view]

        return ticker
    if channel == "depth":
        limit = int_param(params, "limit", DEFAULT_DEPTH, 1, MAX_DEPTH)
        return lambda: [{"type": "depth", **depth_view(gateway, instrument, limit)}]
    if channel == "trades":
        return _TradesCursor(gateway, instrument, int_param(params, "limit", DEFAULT_CHANNEL_TRADES, 0, MAX_TRADES_QUERY)).messages
    return _CandlesCursor(gateway, instrument, check_interval(params.get("interval", "1m"))).messages


def int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > 9 or not low <= int(text) <= high:
        raise MalformedMessage(f"{name} must be an integer from {low} to {high}, not {text[:20]!r}")
    return int(text)


async def serve_channel(gateway: Gateway, websocket: WebSocket, channel: str, symbol: str) -> None:
    """Run one channel until the client leaves: the current state, then a message per change."""
    await websocket.accept()
    try:
        instrument = instrument_of(gateway, symbol)
        messages = channel_messages(gateway, instrument, channel, dict(websocket.query_params))
        sub = gateway.subscribe([symbol])
    except ExchangeError as exc:
        await refuse(websocket, exc)
        return
    while sub.poll() is not None:
        pass  # the book snapshot every subscription starts with: the first messages below are the state now
    watcher = asyncio.create_task(close_on_disconnect(websocket, sub))
    try:
        while True:
            for message in messages():
                await websocket.send_text(dumps(message).decode())
            await sub.next()  # woken by the symbol's next change (or its gap)
            while sub.poll() is not None:
                pass  # coalesce: one message for everything that is already waiting
    except (WebSocketDisconnect, RuntimeError, StopAsyncIteration):
        pass  # the client went away; nothing to tell it
    finally:
        watcher.cancel()
        gateway.unsubscribe(sub)
