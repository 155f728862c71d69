"""Public market data over HTTP: depth, recent trades, instruments, and the WebSocket market-data stream.

Public data is anonymous: no trader names, client order ids or remaining
quantities (``PublicTrade``). A stream starts with a snapshot and continues
with sequenced updates; a subscriber that falls behind gets a gap and a fresh
snapshot (``transports.core.marketdata``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect
from starlette.responses import Response

from engine import ExchangeError, MalformedMessage, RejectReason
from transports.codec.json_views import encode_depth, encode_instruments, encode_public_trade
from transports.core.marketdata import PublicTrade
from transports.http import openapi as doc
from transports.http.context import HttpContext, json_response
from transports.http.market_data import market_data_text
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

    @router.get(
        "/trades/{symbol}",
        summary="Recent trades, oldest first",
        responses=doc.responses(doc.ref("Trades"), {400: doc.ERROR, 404: doc.ERROR}),
        tags=["market data"],
    )
    async def get_trades(symbol: Symbol, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
        instrument = lookup(symbol)
        if instrument is None:
            raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)
        public = [encode_public_trade(PublicTrade.of(t), instrument) for t in gateway.recent_trades(symbol, limit)]
        return json({"trades": public})  # anonymous: no traders, order ids or remaining quantities

    @router.get("/instruments", summary="Listed instruments", responses=doc.responses(doc.ref("Instruments"), {}), tags=["market data"])
    async def get_instruments() -> Response:
        return json({"instruments": encode_instruments(gateway.instruments)})

    async def stream(websocket: WebSocket, symbols: list[str]) -> None:
        await websocket.accept()
        if not symbols:
            await refuse(websocket, MalformedMessage("name the symbols: /ws/marketdata/{symbol} or /ws/marketdata?symbols=A,B"))
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
            async for item in sub:
                await websocket.send_text(market_data_text(item, lookup))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away; nothing to tell it
        finally:
            watcher.cancel()
            gateway.unsubscribe(sub)

    @router.websocket("/ws/marketdata/{symbol}")
    async def ws_symbol(websocket: WebSocket, symbol: str) -> None:
        await stream(websocket, [symbol])

    @router.websocket("/ws/marketdata")
    async def ws_symbols(websocket: WebSocket) -> None:
        await stream(websocket, [s for s in websocket.query_params.get("symbols", "").split(",") if s])

    return router
