"""The turbo-dex HTTP API: decode, submit to the gateway, encode. Nothing else.

``create_app(gateway, settings)`` builds the FastAPI app for a gateway that
someone else starts and stops (``server.py`` for the ``turbo-dex`` command, a
test fixture, or a process serving several transports over one gateway). It
composes the route groups, each a router over one shared ``HttpContext``:
``routes_orders`` (commands, the trader's orders and fills),
``routes_private`` (an order by client order id, the trader's fills, cancel all),
``routes_market`` (public market data), ``routes_operations`` (stats,
health, metrics), the legacy routes (``legacy.py``), the offline API docs and
the web trading screen with the reports (``routes_screen``).

Invariants:

* The order path reads the raw body and decodes it with the codec in one
  pass (``json_codec.loads`` + ``decode_command(s)``); no pydantic model
  touches an order. ``openapi.py`` documents the bodies for /docs only.
* Identity: with ``settings.auth`` (``--auth keys``) every private request
  is signed with an API key (``signed.py``: ``SignedRequests`` keeps each
  request's proof, ``HttpContext.acting`` verifies it); with ``--auth off``
  (loopback only) ``X-Trader`` names the acting trader and is trusted. Either
  way every command is bound to that trader by the codec, so a request can
  only act on that trader's orders. Market data and operations stay public.
* ``add_instrument`` is refused (403 UNAUTHORIZED) unless the request may
  administer (a key with the admin role; ``--allow-admin`` with auth off).
* Every failure is the error body ``{"type":"error","reason","code","message"}``
  with the status of ``transports.codec.status`` (see ``errors.py``).
  A single-command endpoint answers an engine reject with the command's
  events and the reject's status; a batch always answers 200 with one reply
  per command, rejects included.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from transports.core.gateway import Gateway
from transports.http import openapi as doc
from transports.http.context import HttpContext
from transports.http.doc_pages import add_doc_pages
from transports.http.errors import install_error_handlers
from transports.http.legacy import LegacyApi, add_legacy_routes
from transports.http.routes_market import market_router, market_stats_router
from transports.http.routes_operations import operations_router
from transports.http.routes_orders import orders_router
from transports.http.routes_private import private_router
from transports.http.routes_screen import add_screen
from transports.http.settings import HttpServerSettings
from transports.http.signed import SignedRequests

_DESCRIPTION = """\
One matching engine behind a thin HTTP API. Prices and quantities are decimal
strings, exact on the instrument's tick and lot (docs/json-format.md).

**Authentication.** A server started with `--auth keys` takes signed requests:
`DEX-KEY`, `DEX-TIMESTAMP`, `DEX-WINDOW` and `DEX-SIGNATURE` headers over the
method, path, query and body (Ed25519 or HMAC-SHA256, as Binance and Kraken
sign theirs; docs/security.md). A missing or bad signature is 401
`UNAUTHENTICATED`, a key over its limits 429 `RATE_LIMITED`, a key without
the role 403 `UNAUTHORIZED`. With `--auth off` (loopback only) the `X-Trader`
header names the acting trader and is trusted. Either way the server binds
every command to that trader, so a request acts only on its own orders.

Market data (public, no identity): `/ticker`, `/trades/{symbol}`, `/depth/{symbol}`,
`/candles/{symbol}`; WebSocket `/ws/marketdata/{symbol}` or `/ws/marketdata?symbols=A,B`
(a snapshot, then sequenced updates) and the channels `/ws/ticker|trades|depth|candles/{symbol}`
(see docs/http.md).
"""


def create_app(gateway: Gateway, settings: HttpServerSettings | None = None) -> FastAPI:
    """The API for ``gateway`` (started and stopped by the caller)."""
    ctx = HttpContext(gateway, settings if settings is not None else HttpServerSettings())
    app = FastAPI(title="turbo-dex", version="1", description=_DESCRIPTION, docs_url=None, redoc_url=None)
    add_doc_pages(app)  # /docs and /redoc with assets served locally
    install_error_handlers(app, lambda reason, limit: gateway.stats.refused("http", reason, limit))
    legacy = LegacyApi(gateway, ctx.trader_of, ctx.read_body, ctx.max_batch)
    add_legacy_routes(app, legacy)
    app.include_router(orders_router(ctx, legacy))
    app.include_router(private_router(ctx))
    app.include_router(market_router(ctx))
    app.include_router(market_stats_router(ctx))
    app.include_router(operations_router(ctx))
    add_screen(app, ctx)  # / (the web trading screen), /reports, /stats/transports, /ws/stats

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = doc.finish(schema, signed=ctx.settings.auth is not None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if ctx.settings.auth is not None:
        app.add_middleware(SignedRequests, authenticator=ctx.settings.auth, body_limit=ctx.settings.body_limit)
    return app
