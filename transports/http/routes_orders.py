"""Order entry and the trader's own orders over HTTP: one route per command, the lean route, batches, queries, fills.

Every route binds its commands to the acting trader (``HttpContext.acting``:
the key a signature proves, or with ``--auth off`` the X-Trader name), so a
request acts on and reads only that trader's orders, and only an admin key
may add an instrument. A single-command
route answers an engine reject with the command's events and the reject's
status; a batch always answers 200 with one reply per command, rejects
included; the lean route answers every refusal in the lean form.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, WebSocket, WebSocketDisconnect
from starlette.responses import Response

from engine import CancelOrder, ExchangeError, MalformedMessage, Overloaded, RejectReason
from transports.codec import lean
from transports.codec.json_codec import decode_command, decode_commands, dumps, encode_event, loads
from transports.codec.json_views import encode_fill, encode_order_view
from transports.core.sessions import json_grace
from transports.http import openapi as doc
from transports.http.context import JSON, PROTOBUF, TRANSPORT, HttpContext, json_response
from transports.http.errors import PayloadTooLarge, Unidentified
from transports.http.legacy import LegacyApi, is_legacy_batch
from transports.http.websockets import close_on_disconnect, refuse

_COMMAND_ERRORS = {
    400: doc.COMMAND_OUTCOME,
    401: doc.ERROR,
    403: doc.ERROR,
    404: doc.COMMAND_OUTCOME,
    409: doc.COMMAND_OUTCOME,
    413: doc.ERROR,
    422: doc.COMMAND_OUTCOME,
    503: doc.ERROR,
}

OrderId = Annotated[int, Path(ge=1, le=2**63 - 1, description="exchange order id")]
RequestId = Annotated[
    int, Query(ge=0, le=2**63 - 1, description="0 = none; a retry inside the de-duplication window is answered with the first answer")
]


def orders_router(ctx: HttpContext, legacy: LegacyApi) -> APIRouter:
    """Commands, the trader's order queries and its private fills stream."""
    router = APIRouter()
    gateway, requests, max_batch = ctx.gateway, ctx.requests, ctx.max_batch
    lookup, submit, json = gateway.instrument, gateway.submit, json_response
    trader_of, read_body, read_object, apply_one = ctx.trader_of, ctx.read_body, ctx.read_object, ctx.apply_one
    check_admin, instrument_or_404, acting_of, who = ctx.check_admin, ctx.instrument_or_404, ctx.acting, requests.acting

    # ---------------------------------------------------------- commands
    @router.post(
        "/orders",
        summary="Send one command (type defaults to place)",
        responses=doc.responses(doc.ref("CommandReply"), _COMMAND_ERRORS),
        openapi_extra=doc.with_trader(doc.body(doc.ref("Command"))),
        tags=["orders"],
    )
    async def post_order(request: Request) -> Response:
        trader, admin = who(acting_of(request))
        return await apply_one(decode_command(loads(await read_body(request)), lookup, trader), admin=admin)

    @router.post(
        "/orders/lean",
        summary="Lean order entry: a protobuf OrderBatch in, an OutcomeBatch out (docs/wire-schema.md)",
        description="What our own clients send: integer ticks and lots in columns. A refused batch is an OutcomeBatch with an Error.",
        responses={200: {"content": {PROTOBUF: {}}, "description": "an exchange.v1.OutcomeBatch"}, 413: doc.ERROR},
        openapi_extra=doc.with_trader(),
        tags=["orders"],
    )
    async def post_lean(request: Request) -> Response:
        try:  # the handler admits a principal against its key's limits itself
            trader = acting_of(request, admit=False)
        except Unidentified:
            trader = None  # the handler refuses it in the lean form, after the batch's id is read
        except PayloadTooLarge:
            raise  # 413, as read_body answers it without a key
        except ExchangeError as exc:  # answered in the lean form, like every other refusal of this route
            requests.refused(exc)
            return Response(lean.encode_refusal(exc, 0), media_type=PROTOBUF)
        data = await read_body(request)
        return Response(await requests.orders(data, trader), media_type=PROTOBUF)

    @router.post(
        "/orders/batch",
        summary="Send a batch of commands, applied in order; one reply per command",
        responses=doc.responses(
            doc.ref("BatchReply"), {400: doc.ERROR, 401: doc.ERROR, 403: doc.ERROR, 404: doc.ERROR, 413: doc.ERROR, 503: doc.ERROR}
        ),
        openapi_extra=doc.with_trader(doc.body({"type": "array", "items": doc.ref("Command"), "maxItems": max_batch})),
        tags=["orders"],
    )
    async def post_batch(request: Request) -> Response:
        trader, admin = who(acting_of(request))
        raw = await read_body(request)
        requests.check_json_batch(raw)  # bytes, and the values parsing would build, counted before it does
        data = loads(raw)
        if is_legacy_batch(data):  # the old shape (docs/http.md, "Legacy routes")
            return await legacy.batch(raw, trader)
        if isinstance(data, list) and len(data) > max_batch:
            raise PayloadTooLarge(f"a batch holds at most {max_batch} commands, got {len(data)}", "max_batch")
        commands = decode_commands(data, lookup, trader)
        if not admin:
            for command in commands:
                check_admin(command, admin)
        replies = await submit(commands, TRANSPORT) if commands else []
        enc = encode_event
        return Response(dumps({"replies": [{"events": [enc(e, lookup) for e in events]} for events in replies]}), media_type=JSON)

    @router.post(
        "/orders/mass-cancel",
        summary="Cancel all of the trader's open orders, in one symbol or all",
        responses=doc.responses(doc.ref("CommandReply"), {400: doc.ERROR, 401: doc.ERROR, 413: doc.ERROR, 503: doc.ERROR}),
        openapi_extra=doc.with_trader(
            doc.body(
                {"type": "object", "properties": {"symbol": doc.COMPONENTS["MassCancelCommand"]["properties"]["symbol"]}},
                required=False,
                description="optional; omit the symbol (or the body) to cancel in every symbol",
            )
        ),
        tags=["orders"],
    )
    async def mass_cancel(request: Request) -> Response:
        trader = trader_of(request)
        return await apply_one(decode_command(await read_object(request, "mass_cancel"), lookup, trader))

    @router.post(
        "/cancel-on-disconnect",
        summary="Arm cancel on disconnect (0 disarms); repeat it within the grace as the heartbeat",
        description="When no request arrives within grace_ms, every open order of the trader is cancelled (docs/sessions.md).",
        responses=doc.responses(doc.ref("CancelOnDisconnect"), {400: doc.ERROR, 401: doc.ERROR, 413: doc.ERROR}),
        openapi_extra=doc.with_trader(doc.body(doc.ref("CancelOnDisconnect"))),
        tags=["orders"],
    )
    async def cancel_on_disconnect(request: Request) -> Response:
        acting = acting_of(request)
        grace_ms = requests.arm_session(acting, json_grace(await read_object(request, "cancel_on_disconnect")))
        return json({"type": "cancel_on_disconnect", "grace_ms": grace_ms})

    @router.delete(
        "/orders/{order_id}",
        summary="Cancel one of the trader's orders",
        responses=doc.responses(doc.ref("CommandReply"), {400: doc.ERROR, 401: doc.ERROR, 404: doc.COMMAND_OUTCOME, 503: doc.ERROR}),
        openapi_extra=doc.with_trader(),
        tags=["orders"],
    )
    async def cancel_order(request: Request, order_id: OrderId, request_id: RequestId = 0) -> Response:
        return await apply_one(CancelOrder(trader_of(request), order_id, request_id=request_id))

    @router.post(
        "/orders/{order_id}/replace",
        summary="Change a resting order's price and/or quantity",
        responses=doc.responses(doc.ref("CommandReply"), _COMMAND_ERRORS),
        openapi_extra=doc.with_trader(doc.body(_replace_body())),
        tags=["orders"],
    )
    async def replace_order(request: Request, order_id: OrderId) -> Response:
        trader = trader_of(request)
        data = await read_object(request, "replace")
        if data.setdefault("order_id", order_id) != order_id:
            raise MalformedMessage("order_id in the body differs from the one in the path")
        return await apply_one(decode_command(data, lookup, trader))

    # ----------------------------------------------------------- queries
    @router.get(
        "/orders/{order_id}",
        summary="Status of one of the trader's orders",
        responses=doc.responses(doc.ref("Order"), {400: doc.ERROR, 401: doc.ERROR, 404: doc.ERROR}),
        openapi_extra=doc.with_trader(),
        tags=["orders"],
    )
    async def get_order(request: Request, order_id: OrderId) -> Response:
        trader = trader_of(request)
        view = gateway.order_status(trader, order_id)
        instrument = lookup(view.symbol) if view is not None else None
        if view is None or instrument is None:
            raise MalformedMessage(f"no order {order_id} of trader {trader!r}", RejectReason.UNKNOWN_ORDER)
        return json(encode_order_view(view, instrument))

    @router.get(
        "/orders",
        summary="The trader's open orders, oldest first",
        responses=doc.responses(doc.ref("Orders"), {400: doc.ERROR, 401: doc.ERROR, 404: doc.ERROR}),
        openapi_extra=doc.with_trader(),
        tags=["orders"],
    )
    async def get_orders(request: Request, symbol: Annotated[str, Query(max_length=32)] = "") -> Response:
        trader = trader_of(request)
        if symbol:
            instrument_or_404(symbol)
        views = gateway.open_orders(trader, symbol)
        out = []
        for view in views:
            instrument = lookup(view.symbol)
            assert instrument is not None  # an open order's symbol is listed
            out.append(encode_order_view(view, instrument))
        return json({"orders": out})

    @router.websocket("/ws/fills")
    async def ws_fills(websocket: WebSocket) -> None:
        """The acting trader's own fills, as maker and as taker (private: ``transports.core.fills``); signed on upgrade."""
        await websocket.accept()
        try:
            sub = gateway.subscribe_fills(trader_of(websocket))
        except ExchangeError as exc:
            await refuse(websocket, exc)
            return
        watcher = asyncio.create_task(close_on_disconnect(websocket, sub))
        try:
            async for fill in sub:
                instrument = lookup(fill.symbol)
                assert instrument is not None  # a traded symbol is listed
                await websocket.send_text(dumps(encode_fill(fill, instrument)).decode())
            if sub.overflowed:
                await refuse(websocket, Overloaded("this fills stream fell behind: re-read your orders' status and subscribe again"))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away; nothing to tell it
        finally:
            watcher.cancel()
            gateway.unsubscribe_fills(sub)

    return router


def _replace_body() -> doc.Schema:
    schema = dict(doc.COMPONENTS["ReplaceCommand"])
    schema.pop("anyOf")  # the path names the order
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k != "client_order_id"}
    schema["required"] = ["symbol"]
    schema["anyOf"] = [{"required": ["price"]}, {"required": ["qty"]}]
    return schema
