"""Public market data over HTTP: depth, trades, ticker, candles, instruments, and the WebSocket streams.

No route here needs an identity. ``market_router`` serves the book, the
instruments and the sequenced ``/ws/marketdata`` stream; ``market_stats_router``
the ticker, the timed trades, ``/depth`` and the candles (views and channels:
``market_channels``; candles: ``transports.core.candles``). Every query
parameter is bounded (``transports.core.limits``); a bad one is 400
MALFORMED_MESSAGE, an unknown symbol 404 UNKNOWN_SYMBOL.

Public data is anonymous: no trader names, client order ids or remaining
quantities (``PublicTrade``). A stream starts with a snapshot and continues
with sequenced updates; a subscriber that falls behind gets a gap and a fresh
snapshot (``transports.core.marketdata``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect
from starlette.responses import Response

from engine import ExchangeError, MalformedMessage, RejectReason
from transports.codec.json_views import encode_depth, encode_instruments
from transports.core.limits import DEFAULT_DEPTH, MAX_CANDLES_QUERY, MAX_DEPTH, MAX_TRADES_QUERY
from transports.core.marketdata import Subscription
from transports.http import openapi as doc
from transports.http.context import HttpContext, json_response
from transports.http.market_channels import candles_view, depth_view, instrument_of, now_ms, serve_channel, ticker_view, trades_view
from transports.http.market_data import market_data_batch_text, market_data_text
from transports.http.websockets import close_on_disconnect, refuse

Symbol = Annotated[str, Path(min_length=1, max_length=32)]


def market_router(ctx: HttpContext) -> APIRouter:
    """Depth, trades and instruments (REST), and ``/ws/marketdata`` (WebSocket)."""
    router = APIRouter()
    gateway, requests, lookup, json = ctx.gateway, ctx.requests, ctx.gateway.instrument, json_response

    @router.get(
        "/book/{symbol}",
        summary="Level-2 depth, best level first",
        responses=doc.responses(doc.ref("Book"), {400: doc.ERROR, 404: doc.ERROR}),
        tags=["market data"],
    )
    async def get_book(symbol: Symbol, depth: Annotated[int, Query(ge=1, le=1000)] = 10) -> Response:
        book = gateway.depth(symbol, depth)
        instrument = lookup(symbol)
        if book is None or instrument is None:
            raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)
        return json(encode_depth(book, instrument, gateway.marketdata.md_seq.get(symbol, 0)))

    @router.get("/instruments", summary="Listed instruments", responses=doc.responses(doc.ref("Instruments"), {}), tags=["market data"])
    async def get_instruments() -> Response:
        return json({"instruments": encode_instruments(gateway.instruments)})

    async def stream(websocket: WebSocket, symbols: list[str]) -> None:
        await websocket.accept()
        if not symbols:
            await refuse(websocket, MalformedMessage("name the symbols: /ws/marketdata/{symbol} or /ws/marketdata?symbols=A,B"))
            return
        batched = websocket.query_params.get("batch", "0")
        if batched not in ("0", "1"):
            await refuse(websocket, MalformedMessage(f"batch must be 0 or 1, not {batched[:16]!r}"))
            return
        try:
            sub = gateway.subscribe(requests.snapshot_symbols(symbols))  # repeats collapsed, their number capped
        except KeyError as exc:
            await refuse(websocket, MalformedMessage(f"unknown symbol {exc.args[0]!r}", RejectReason.UNKNOWN_SYMBOL))
            return
        except ExchangeError as exc:
            requests.refused(exc)
            await refuse(websocket, exc)
            return
        watcher = asyncio.create_task(close_on_disconnect(websocket, sub))
        try:
            await (send_batches if batched == "1" else send_items)(websocket, sub)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away; nothing to tell it
        finally:
            watcher.cancel()
            gateway.unsubscribe(sub)

    async def send_items(websocket: WebSocket, sub: Subscription) -> None:
        async for item in sub:  # ends only when the subscription is closed
            await websocket.send_text(market_data_text(item, lookup))

    async def send_batches(websocket: WebSocket, sub: Subscription) -> None:
        # A message per update costs the server about as much as the update itself: beside 100 subscribers one
        # message each fell behind the order flow. Everything waiting goes in one message instead.
        async for items in sub.batches():
            await websocket.send_text(market_data_batch_text(items, lookup))

    @router.websocket("/ws/marketdata/{symbol}")
    async def ws_symbol(websocket: WebSocket, symbol: str) -> None:
        await stream(websocket, [symbol])

    @router.websocket("/ws/marketdata")
    async def ws_symbols(websocket: WebSocket) -> None:
        await stream(websocket, [s for s in websocket.query_params.get("symbols", "").split(",") if s])

    return router


_ERRORS = {400: doc.ERROR, 404: doc.ERROR}
_MS = Annotated[int, Query(ge=0, le=2**53, description="ms since the epoch (UTC)")]


def market_stats_router(ctx: HttpContext) -> APIRouter:
    """Ticker, timed trades, ``/depth`` and candles (REST), and their WebSocket channels (``market_channels``)."""
    router = APIRouter(tags=["market data"])
    gateway, json = ctx.gateway, json_response

    @router.get(
        "/ticker", summary="Every symbol's ticker (last, best bid/ask, 24 h figures)", responses=doc.responses(doc.ref("Tickers"), {})
    )
    async def get_tickers() -> Response:
        at = now_ms()
        return json({"tickers": [ticker_view(gateway, i, at) for i in gateway.instruments]})

    @router.get("/ticker/{symbol}", summary="One symbol's ticker", responses=doc.responses(doc.ref("Ticker"), _ERRORS))
    async def get_ticker(symbol: Symbol) -> Response:
        return json(ticker_view(gateway, instrument_of(gateway, symbol), now_ms()))

    @router.get(
        "/trades/{symbol}", summary="Recent trades with their times, oldest first", responses=doc.responses(doc.ref("Trades"), _ERRORS)
    )
    async def get_trades(
        symbol: Symbol,
        limit: Annotated[int, Query(ge=1, le=MAX_TRADES_QUERY)] = 100,
        since: Annotated[
            int | None, Query(ge=0, le=2**63 - 1, description="only trades with a larger trade id (the first `limit`)")
        ] = None,
    ) -> Response:
        instrument = instrument_of(gateway, symbol)
        return json({"trades": trades_view(gateway, instrument, limit, since)})  # anonymous: no traders or order ids

    @router.get("/depth/{symbol}", summary="Level-2 depth, best level first (as /book)", responses=doc.responses(doc.ref("Book"), _ERRORS))
    async def get_depth(symbol: Symbol, limit: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = DEFAULT_DEPTH) -> Response:
        return json(depth_view(gateway, instrument_of(gateway, symbol), limit))

    @router.get("/candles/{symbol}", summary="OHLCV candles, oldest first", responses=doc.responses(doc.ref("Candles"), _ERRORS))
    async def get_candles(
        symbol: Symbol,
        interval: Annotated[str, Query(max_length=8, description="1m, 5m, 15m, 1h or 1d")] = "1m",
        start: _MS = 0,
        end: _MS = 2**53,
        limit: Annotated[int, Query(ge=1, le=MAX_CANDLES_QUERY)] = 500,
    ) -> Response:
        instrument = instrument_of(gateway, symbol)
        rows = candles_view(gateway, instrument, interval, start, end, limit)
        return json({"symbol": symbol, "interval": interval, "candles": rows})

    for channel in ("ticker", "trades", "depth", "candles"):
        router.add_api_websocket_route(f"/ws/{channel}/{{symbol}}", _channel_route(ctx, channel))
    return router


def _channel_route(ctx: HttpContext, channel: str) -> Callable[[WebSocket, str], Awaitable[None]]:
    async def route(websocket: WebSocket, symbol: str) -> None:
        await serve_channel(ctx.gateway, websocket, channel, symbol)

    return route
