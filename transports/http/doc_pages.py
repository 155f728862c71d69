"""The API reference pages, served by the server itself: they work on a machine without internet.

``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their JavaScript and CSS
from ``/static/docs/``, files installed with the server (the pinned PyPI
package ``fastapi-offline`` ships the Swagger UI and ReDoc bundles; ``make
setup`` installs it). ``/`` is the web trading screen (``routes_screen``), which links here.

Invariant: no page refers to another host (no CDN, no Google fonts, no
Swagger validator).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
STATIC = "/static/docs"


def add_doc_pages(app: FastAPI) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and the assets under ``STATIC`` (none in the schema)."""
    app.mount(STATIC, StaticFiles(directory=ASSETS), name="doc-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{base}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{base}{oauth2_redirect}",
            swagger_js_url=f"{base}{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{base}{STATIC}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # the default validator is a public web service
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=f"{base}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{STATIC}/favicon.png",
            with_google_fonts=False,
        )
