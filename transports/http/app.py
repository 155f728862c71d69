"""The turbo-dex HTTP API: decode, submit to the gateway, encode. Nothing else.

``create_app(gateway, settings)`` builds the FastAPI app for a gateway that
someone else starts and stops (``server.py`` for the ``turbo-dex`` command, a
test fixture, or a process serving several transports over one gateway).

Invariants:

* The order path reads the raw body and decodes it with the codec in one
  pass (``json_codec.loads`` + ``decode_command(s)``); no pydantic model
  touches an order. ``openapi.py`` documents the bodies for /docs only.
* Identity: ``X-Trader`` names the acting trader and every command is bound
  to it by the codec, so a request can only act on that trader's orders.
  The header is trusted: this is identity, not authentication.
* ``add_instrument`` is refused (403 UNAUTHORIZED) unless the server allows
  admin commands.
* Every failure is the error body ``{"type":"error","reason","code","message"}``
  with the status of ``transports.codec.status`` (see ``errors.py``).
  A single-command endpoint answers an engine reject with the command's
  events and the reject's status; a batch always answers 200 with one reply
  per command, rejects included.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.openapi.utils import get_openapi
from starlette.requests import HTTPConnection
from starlette.responses import Response

from engine import AddInstrument, CancelOrder, Command, ExchangeError, MalformedMessage, OrderRejected, Overloaded, RejectReason
from transports.codec import lean
from transports.codec.json_codec import decode_command, decode_commands, dumps, encode_event, error_reply, loads
from transports.codec.json_views import encode_depth, encode_fill, encode_instruments, encode_order_view, encode_public_trade
from transports.codec.status import http_status
from transports.core.fills import FillSubscription
from transports.core.gateway import Gateway
from transports.core.limits import Limits
from transports.core.marketdata import PublicTrade, Subscription
from transports.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from transports.core.metrics import metrics_registry, render
from transports.core.requests import RequestHandler, check_trader
from transports.core.sessions import json_grace
from transports.http import openapi as doc
from transports.http.doc_pages import add_doc_pages
from transports.http.errors import PayloadTooLarge, Unidentified, install_error_handlers
from transports.http.legacy import LegacyApi, add_legacy_routes, is_legacy_batch
from transports.http.market_data import market_data_text
from transports.http.settings import TRADER_HEADER, HttpServerSettings

TRANSPORT = "http"
JSON = "application/json"
PROTOBUF = "application/x-protobuf"
_POLICY_VIOLATION = 1008

_DESCRIPTION = """\
One matching engine behind a thin HTTP API. Prices and quantities are decimal
strings, exact on the instrument's tick and lot (docs/json-format.md).

**Identity, not authentication.** The `X-Trader` header names the acting
trader; the server binds every command to it, so a request acts only on that
trader's orders. The server trusts the header: put real authentication in
front of it before exposing it beyond a trusted network.

Market data: WebSocket `/ws/marketdata/{symbol}` or `/ws/marketdata?symbols=A,B`
(a snapshot, then sequenced updates; see docs/http.md).
"""

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
Symbol = Annotated[str, Path(min_length=1, max_length=32)]


def create_app(gateway: Gateway, settings: HttpServerSettings | None = None) -> FastAPI:
    """The API for ``gateway`` (started and stopped by the caller)."""
    settings = settings if settings is not None else HttpServerSettings()
    app = FastAPI(title="turbo-dex", version="1", description=_DESCRIPTION, docs_url=None, redoc_url=None)
    add_doc_pages(app)  # /docs, /redoc and / with assets served locally
    install_error_handlers(app, lambda reason, limit: gateway.stats.refused("http", reason, limit))
    registry = metrics_registry(gateway)
    lookup = gateway.instrument
    submit = gateway.submit
    allow_admin = settings.allow_admin
    max_batch = min(settings.max_batch, gateway.config.buffer)
    max_body = settings.body_limit

    # ----------------------------------------------------------- helpers
    def trader_of(request: HTTPConnection) -> str:
        # Starlette reads header bytes as Latin-1 (losslessly): the name is those bytes read as UTF-8, as on every wire.
        raw = request.headers.get(TRADER_HEADER, "").encode("latin-1")
        if not raw.strip():
            raise Unidentified("the X-Trader header is required: it names the acting trader")
        return check_trader(raw)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if length.isdigit() and int(length) > max_body:
                raise PayloadTooLarge(f"body larger than {max_body} bytes")
            return await request.body()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge(f"body larger than {max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_object(request: Request, kind: str) -> dict[str, Any]:
        """The body as a command object of ``kind`` (``type`` may be omitted); an empty body is ``{}``."""
        raw = await read_body(request)
        data = loads(raw) if raw.strip() else {}
        if not isinstance(data, dict):
            raise MalformedMessage("the body must be a JSON object")
        if data.get("type", kind) != kind:
            raise MalformedMessage(f"this endpoint takes a {kind!r} command, not {data['type']!r}")
        return {**data, "type": kind}

    def check_admin(command: Command) -> None:
        if not allow_admin and type(command) is AddInstrument:
            raise ExchangeError("add_instrument over HTTP needs a server started with --allow-admin", RejectReason.UNAUTHORIZED)

    async def apply_one(command: Command) -> Response:
        check_admin(command)
        events = (await submit([command], TRANSPORT))[0]
        status = 200
        if events:
            first = events[0]
            if type(first) is OrderRejected:
                assert isinstance(first, OrderRejected)
                status = http_status(first.reason)
        return Response(dumps({"events": [encode_event(e, lookup) for e in events]}), status_code=status, media_type=JSON)

    def json(data: Any) -> Response:
        return Response(dumps(data), media_type=JSON)

    def instrument_or_404(symbol: str) -> None:
        if lookup(symbol) is None:
            raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)

    requests = RequestHandler(gateway, TRANSPORT, Limits(max_batch=settings.max_batch), allow_admin)

    legacy = LegacyApi(gateway, trader_of, read_body, max_batch)
    add_legacy_routes(app, legacy)

    # ---------------------------------------------------------- commands
    @app.post(
        "/orders",
        summary="Send one command (type defaults to place)",
        responses=doc.responses(doc.ref("CommandReply"), _COMMAND_ERRORS),
        openapi_extra=doc.with_trader(doc.body(doc.ref("Command"))),
        tags=["orders"],
    )
    async def post_order(request: Request) -> Response:
        trader = trader_of(request)
        return await apply_one(decode_command(loads(await read_body(request)), lookup, trader))

    @app.post(
        "/orders/lean",
        summary="Lean order entry: a protobuf OrderBatch in, an OutcomeBatch out (docs/wire-schema.md)",
        description="What our own clients send: integer ticks and lots in columns. A refused batch is an OutcomeBatch with an Error.",
        responses={200: {"content": {PROTOBUF: {}}, "description": "an exchange.v1.OutcomeBatch"}, 413: doc.ERROR},
        openapi_extra=doc.with_trader(),
        tags=["orders"],
    )
    async def post_lean(request: Request) -> Response:
        raw = request.headers.get(TRADER_HEADER, "").encode("latin-1")
        try:
            trader = check_trader(raw) if raw.strip() else None
        except ExchangeError as exc:  # answered in the lean form, like every other refusal of this route
            requests.refused(exc)
            return Response(lean.encode_refusal(exc, 0), media_type=PROTOBUF)
        data = await read_body(request)
        return Response(await requests.orders(data, trader), media_type=PROTOBUF)

    @app.post(
        "/orders/batch",
        summary="Send a batch of commands, applied in order; one reply per command",
        responses=doc.responses(
            doc.ref("BatchReply"), {400: doc.ERROR, 401: doc.ERROR, 403: doc.ERROR, 404: doc.ERROR, 413: doc.ERROR, 503: doc.ERROR}
        ),
        openapi_extra=doc.with_trader(doc.body({"type": "array", "items": doc.ref("Command"), "maxItems": max_batch})),
        tags=["orders"],
    )
    async def post_batch(request: Request) -> Response:
        trader = trader_of(request)
        raw = await read_body(request)
        requests.check_json_batch(raw)  # bytes, and the values parsing would build, counted before it does
        data = loads(raw)
        if is_legacy_batch(data):  # the old shape (docs/http.md, "Legacy routes")
            return await legacy.batch(raw, trader)
        if isinstance(data, list) and len(data) > max_batch:
            raise PayloadTooLarge(f"a batch holds at most {max_batch} commands, got {len(data)}", "max_batch")
        commands = decode_commands(data, lookup, trader)
        if not allow_admin:
            for command in commands:
                check_admin(command)
        replies = await submit(commands, TRANSPORT) if commands else []
        enc = encode_event
        return Response(dumps({"replies": [{"events": [enc(e, lookup) for e in events]} for events in replies]}), media_type=JSON)

    @app.post(
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

    @app.post(
        "/cancel-on-disconnect",
        summary="Arm cancel on disconnect (0 disarms); repeat it within the grace as the heartbeat",
        description="When no request arrives within grace_ms, every open order of the trader is cancelled (docs/sessions.md).",
        responses=doc.responses(doc.ref("CancelOnDisconnect"), {400: doc.ERROR, 401: doc.ERROR, 413: doc.ERROR}),
        openapi_extra=doc.with_trader(doc.body(doc.ref("CancelOnDisconnect"))),
        tags=["orders"],
    )
    async def cancel_on_disconnect(request: Request) -> Response:
        trader = trader_of(request)
        grace_ms = requests.arm_session(trader, json_grace(await read_object(request, "cancel_on_disconnect")))
        return json({"type": "cancel_on_disconnect", "grace_ms": grace_ms})

    @app.delete(
        "/orders/{order_id}",
        summary="Cancel one of the trader's orders",
        responses=doc.responses(doc.ref("CommandReply"), {400: doc.ERROR, 401: doc.ERROR, 404: doc.COMMAND_OUTCOME, 503: doc.ERROR}),
        openapi_extra=doc.with_trader(),
        tags=["orders"],
    )
    async def cancel_order(request: Request, order_id: OrderId, request_id: RequestId = 0) -> Response:
        return await apply_one(CancelOrder(trader_of(request), order_id, request_id=request_id))

    @app.post(
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
    @app.get(
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

    @app.get(
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

    @app.get(
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

    @app.get(
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

    @app.get("/instruments", summary="Listed instruments", responses=doc.responses(doc.ref("Instruments"), {}), tags=["market data"])
    async def get_instruments() -> Response:
        return json({"instruments": encode_instruments(gateway.instruments)})

    # --------------------------------------------------------- operations
    @app.get("/stats", summary="Gateway counters", responses=doc.responses(doc.ref("Stats"), {}), tags=["operations"])
    async def get_stats() -> Response:
        return json(gateway.stats_dict())

    @app.get("/health", summary="Liveness", responses=doc.responses(doc.ref("Health"), {}), tags=["operations"])
    async def get_health() -> Response:
        return json({"status": "ok", "engine_seq": gateway.engine.seq, "queue_depth": gateway.queue_depth})

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses=doc.responses({"type": "string"}, {}, ok_media="text/plain"),
        tags=["operations"],
    )
    async def get_metrics() -> Response:
        return Response(render(registry), media_type=METRICS_CONTENT_TYPE)

    # -------------------------------------------------------- market data
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
        watcher = asyncio.create_task(_close_on_disconnect(websocket, sub))
        try:
            async for item in sub:
                await websocket.send_text(market_data_text(item, lookup))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away; nothing to tell it
        finally:
            watcher.cancel()
            gateway.unsubscribe(sub)

    @app.websocket("/ws/marketdata/{symbol}")
    async def ws_symbol(websocket: WebSocket, symbol: str) -> None:
        await stream(websocket, [symbol])

    @app.websocket("/ws/marketdata")
    async def ws_symbols(websocket: WebSocket) -> None:
        await stream(websocket, [s for s in websocket.query_params.get("symbols", "").split(",") if s])

    @app.websocket("/ws/fills")
    async def ws_fills(websocket: WebSocket) -> None:
        """The X-Trader's own fills, as maker and as taker (private: ``transports.core.fills``)."""
        await websocket.accept()
        try:
            sub = gateway.subscribe_fills(trader_of(websocket))
        except ExchangeError as exc:
            await refuse(websocket, exc)
            return
        watcher = asyncio.create_task(_close_on_disconnect(websocket, sub))
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

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = doc.finish(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _replace_body() -> doc.Schema:
    schema = dict(doc.COMPONENTS["ReplaceCommand"])
    schema.pop("anyOf")  # the path names the order
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k != "client_order_id"}
    schema["required"] = ["symbol"]
    schema["anyOf"] = [{"required": ["price"]}, {"required": ["qty"]}]
    return schema


async def refuse(websocket: WebSocket, error: ExchangeError) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(dumps(error_reply(error)).decode())
        await websocket.close(_POLICY_VIOLATION, error.reason.name)


async def _close_on_disconnect(websocket: WebSocket, sub: Subscription | FillSubscription) -> None:
    """Read (and ignore) what the client sends; when it leaves, end the subscription so the sender stops."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        sub.close()
