"""The web trading screen at ``/``, its live Transports panel, and the transport comparison report at ``/reports``.

Served by turbo-dex itself, with nothing fetched from another host::

    GET /                          the screen (screen/static/index.html)
    GET /screen/...                its script and style sheet
    GET /screen/vendor/...         TradingView's lightweight-charts, installed from npm by `make setup`
                                   (screen/package-lock.json pins it; scripts/mk/screen.mk runs `npm ci`)
    GET /favicon.ico               the API docs' icon (browsers ask every page for it)
    GET /reports                   reports/transport-comparison.html (measured history, charts inline)
    GET /reports/files/{name}      the files of reports/ (its JSON, PNG charts, screenshots under screens/)
    GET /stats/transports          per-transport figures since the previous call (``TransportPanel``)
    WS  /ws/stats?interval_ms=N    the same, pushed every N ms (200 to 10,000; default 1,000)

The screen reads public data over the existing market-data channels
(``/ws/depth|trades|candles|ticker/{symbol}``) and the panel over ``/ws/stats``;
what a trader does goes through the REST routes with the headers the
screen's one identity function builds (``authHeaders`` in screen.js). A browser
cannot set headers on a WebSocket, so the trader's open orders and fills are
re-read over REST when the symbol's market data or the trader's own action
says they may have changed.

Invariants: nothing here changes the engine or a counter (the panel only
reads); a missing asset (npm not run) is a 404, never a page from elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, HTMLResponse, Response

from engine import ExchangeError
from transports.codec.json_codec import dumps
from transports.core.transport_panel import TransportPanel
from transports.http import openapi as doc
from transports.http.context import HttpContext, json_response
from transports.http.doc_pages import ASSETS as DOC_ASSETS
from transports.http.market_channels import int_param
from transports.http.websockets import refuse

SCREEN = Path(__file__).with_name("screen")
STATIC = SCREEN / "static"
VENDOR = SCREEN / "node_modules" / "lightweight-charts" / "dist"
REPORTS = Path(__file__).resolve().parents[2] / "reports"
REPORT = REPORTS / "transport-comparison.html"

_NO_REPORT = """<!doctype html><html><head><meta charset="utf-8"><title>No report yet</title></head>
<body><h1>No transport comparison report here</h1><p>Run <code>make bench</code> to measure and write
<code>reports/transport-comparison.html</code>; the live figures are on the <a href="/">screen</a>.</p></body></html>"""


def add_screen(app: FastAPI, ctx: HttpContext) -> None:
    """Mount the screen's assets and the reports, and add the routes of ``screen_router``."""
    app.mount("/screen/vendor", StaticFiles(directory=VENDOR, check_dir=False), name="screen-vendor")
    app.mount("/screen", StaticFiles(directory=STATIC), name="screen")
    app.mount("/reports/files", StaticFiles(directory=REPORTS, check_dir=False), name="reports")
    app.include_router(screen_router(ctx))


def screen_router(ctx: HttpContext) -> APIRouter:
    router = APIRouter()
    gateway = ctx.gateway
    shared = TransportPanel(gateway)  # REST callers share one window: each call reports since the previous one

    @router.get("/", include_in_schema=False)
    async def screen() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @router.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:  # asked by browsers on every page (the report's too): the docs' icon
        return FileResponse(DOC_ASSETS / "favicon.png", media_type="image/png")

    @router.get("/reports", include_in_schema=False)
    async def report() -> Response:
        if not REPORT.is_file():
            return HTMLResponse(_NO_REPORT, status_code=404)
        return FileResponse(REPORT, media_type="text/html")

    @router.get(
        "/stats/transports",
        summary="Per-transport orders/s, commands/s, p50/p99 latency, rejects and queue depth since the previous call",
        responses=doc.responses(doc.ref("TransportPanel"), {}),
        tags=["operations"],
    )
    async def transports() -> Response:
        return json_response(shared.sample())

    @router.websocket("/ws/stats")
    async def ws_stats(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            interval_ms = int_param(dict(websocket.query_params), "interval_ms", 1000, 200, 10_000)
        except ExchangeError as exc:
            await refuse(websocket, exc)
            return
        panel = TransportPanel(gateway)
        reader = asyncio.create_task(_until_closed(websocket))
        try:
            while not reader.done():
                await asyncio.wait([reader], timeout=interval_ms / 1000)
                if not reader.done():
                    await websocket.send_text(dumps(panel.sample()).decode())
        except (WebSocketDisconnect, RuntimeError):
            pass  # the viewer went away
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    return router


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the viewer sends until it leaves."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
