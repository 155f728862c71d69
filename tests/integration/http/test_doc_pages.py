"""The API reference works without internet: /docs and /redoc load only assets the server itself serves; / links there."""

from __future__ import annotations

import re

import httpx
import pytest

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
EXPECTED_TYPES = {".js": ("javascript",), ".css": ("text/css",), ".png": ("image/png",)}


def referenced(html: str) -> list[str]:
    return ASSET.findall(html)


@pytest.mark.parametrize(("page", "marker"), [("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc spec-url")])
def test_doc_pages_reference_only_local_assets_that_the_server_serves(http: httpx.Client, page: str, marker: str) -> None:
    response = http.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert marker in html
    assert "://" not in html.replace("'/openapi.json'", ""), "a page must name no other host (CDN, fonts, validator)"
    assets = referenced(html)
    assert assets and all(url.startswith("/static/docs/") for url in assets), assets
    for url in assets:
        asset = http.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert any(t in asset.headers["content-type"] for t in EXPECTED_TYPES[suffix]), (url, asset.headers["content-type"])
        assert len(asset.content) > 1000 or suffix == ".png"


def test_swagger_ui_reads_the_servers_own_openapi_document(http: httpx.Client) -> None:
    html = http.get("/docs").text
    assert "url: '/openapi.json'" in html and '"validatorUrl": null' in html
    assert http.get("/openapi.json").json()["paths"]["/orders"]


def test_the_bundles_are_the_real_libraries(http: httpx.Client) -> None:
    assert b"SwaggerUIBundle" in http.get("/static/docs/swagger-ui-bundle.js").content
    assert b"Redoc" in http.get("/static/docs/redoc.standalone.js").content
    assert b".swagger-ui" in http.get("/static/docs/swagger-ui.css").content


def test_the_root_is_the_trading_screen_and_links_to_the_docs(http: httpx.Client) -> None:
    response = http.get("/", follow_redirects=False)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in response.text and "://" not in response.text, "the screen names no other host"
