"""A trader's private REST beside ``routes_orders``: an order by client order id, its fills, cancel all.

``routes_orders`` already answers the trader's open orders (``GET /orders``,
optionally by symbol), one order by exchange id (``GET /orders/{order_id}``)
and ``POST /orders/mass-cancel``; this group adds, for trading tools (the web
screen, the ccxt class)::

    GET    /orders/client/{client_order_id}   one order by the id the trader gave it
    GET    /fills?symbol=&since=&limit=       the trader's own fills, oldest first (since: a trade id, exclusive)
    DELETE /orders?symbol=                    cancel all open orders (in one symbol or all): a mass cancel

Invariants: every route acts as the trader of ``HttpContext.trader_of`` (the
one identity seam) and reads only that trader's orders and fills
(``transports.core.private_queries``); every parameter is bounded (a bad one
is 400 MALFORMED_MESSAGE, an unknown symbol 404 UNKNOWN_SYMBOL, an unknown
order 404 UNKNOWN_ORDER).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from engine import CancelReason, MassCancel
from transports.codec.json_views import encode_fill, encode_order_view
from transports.core.limits import MAX_TEXT, MAX_TRADES_QUERY
from transports.core.private_queries import TimedFill, order_by_client_id, trader_fills
from transports.http import openapi as doc
from transports.http.context import HttpContext, json_response

_ERRORS = {400: doc.ERROR, 401: doc.ERROR, 404: doc.ERROR}
ClientOrderId = Annotated[str, Path(min_length=1, max_length=MAX_TEXT, description="the id the trader gave the order")]
SymbolFilter = Annotated[str, Query(max_length=32, description="only this symbol (empty: every symbol)")]


def private_router(ctx: HttpContext) -> APIRouter:
    router = APIRouter(tags=["orders"])
    gateway, trader_of, json = ctx.gateway, ctx.trader_of, json_response

    @router.get(
        "/orders/client/{client_order_id}",
        summary="One of the trader's orders, by the client order id it was given",
        responses=doc.responses(doc.ref("Order"), _ERRORS),
        openapi_extra=doc.with_trader(),
    )
    async def get_order_by_client_id(
        request: Request, client_order_id: Annotated[str, Path(min_length=1, max_length=MAX_TEXT)]
    ) -> Response:
        view = order_by_client_id(gateway, trader_of(request), client_order_id)
        instrument = gateway.instrument(view.symbol)
        assert instrument is not None  # an order's symbol is listed
        return json(encode_order_view(view, instrument))

    @router.get(
        "/fills",
        summary="The trader's own fills (my trades), oldest first, with a trade id above `since`",
        description="Read from the engine's recent-trades history of each symbol; page with the last trade id seen.",
        responses=doc.responses(doc.ref("Fills"), _ERRORS),
        openapi_extra=doc.with_trader(),
    )
    async def get_fills(
        request: Request,
        symbol: SymbolFilter = "",
        since: Annotated[int, Query(ge=0, le=2**63 - 1, description="a trade id: only fills of later trades")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_TRADES_QUERY)] = 100,
    ) -> Response:
        fills = trader_fills(gateway, trader_of(request), symbol, since, limit)
        return json({"fills": [_timed_fill(ctx, item) for item in fills]})

    @router.delete(
        "/orders",
        summary="Cancel all of the trader's open orders (in one symbol, or all): a mass cancel",
        responses=doc.responses(doc.ref("CommandReply"), {400: doc.ERROR, 401: doc.ERROR, 404: doc.ERROR, 503: doc.ERROR}),
        openapi_extra=doc.with_trader(),
    )
    async def cancel_all(request: Request, symbol: SymbolFilter = "") -> Response:
        trader = trader_of(request)
        if symbol:
            ctx.instrument_or_404(symbol)
        return await ctx.apply_one(MassCancel(trader, symbol, CancelReason.MASS_CANCEL, 0))

    return router


def _timed_fill(ctx: HttpContext, item: TimedFill) -> dict[str, Any]:
    instrument = ctx.gateway.instrument(item.fill.symbol)
    assert instrument is not None  # a traded symbol is listed
    return {**encode_fill(item.fill, instrument), "time": item.time_ms}
