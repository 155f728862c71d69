"""The web trading screen in headless Debian chromium (Playwright): it loads clean, shows what happens on the book
(orders from gRPC and from its own form), cancels, and draws the candles the REST endpoint returns.

Each test is bounded (pytest-timeout); a screenshot of each view goes to reports/screens/ (linked from the README).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from engine import PlaceOrder, Side
from engine.types import OrderType, TimeInForce
from tests.integration.screen.conftest import SCREENS, Exchange, ScreenPage
from transports.grpc.client import GrpcClient
from transports.instruments import DEFAULT_INSTRUMENTS

BTC = DEFAULT_INSTRUMENTS[0]  # BTC-USD: tick 0.01, lot 0.0001, band 10% around 30000.00
pytestmark = pytest.mark.timeout(90)


def shot(screen: ScreenPage, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    screen.page.screenshot(path=str(SCREENS / name), full_page=True)


def place_over_grpc(loop: asyncio.AbstractEventLoop, exchange: Exchange, trader: str, side: Side, price: str, qty: str) -> None:
    async def run() -> None:
        client = GrpcClient(trader, exchange.grpc)
        await client.connect()
        try:
            order = PlaceOrder(
                trader, "", BTC.symbol, side, BTC.parse_qty(qty), BTC.parse_price(price), OrderType.LIMIT, TimeInForce.GTC, False, 0
            )
            (events,) = await client.submit([order])
            assert type(events[0]).__name__ == "OrderAccepted", events
        finally:
            await client.close()

    asyncio.run_coroutine_threadsafe(run(), loop).result(10)  # Playwright's sync API holds this thread's event loop


def test_the_page_loads_with_no_console_errors_on_a_laptop_and_a_phone(screen: ScreenPage, browser: Browser, exchange: Exchange) -> None:
    page = screen.page
    assert page.locator("#symbol option").all_inner_texts() == [i.symbol for i in DEFAULT_INSTRUMENTS]
    page.wait_for_function("window.dexScreen.candleSeries !== null")
    assert screen.errors == []
    shot(screen, "screen-desktop.png")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        mobile = phone.new_page()
        errors: list[str] = []
        mobile.on("pageerror", lambda error: errors.append(str(error)))
        mobile.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        mobile.goto(exchange.http + "/#BTC-USD")
        mobile.wait_for_selector("body[data-ready='1']", timeout=10_000)
        width = mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
        assert errors == []
        mobile.screenshot(path=str(SCREENS / "screen-phone.png"), full_page=True)
    finally:
        phone.close()


def test_the_ladder_shows_an_order_placed_over_grpc_within_a_second(
    screen: ScreenPage, exchange: Exchange, side_loop: asyncio.AbstractEventLoop
) -> None:
    place_over_grpc(side_loop, exchange, "grpc-trader", Side.BUY, "29911.00", "0.4200")
    screen.page.wait_for_selector("#bids tr[data-price='29911.00']", timeout=1000)
    row = screen.page.locator("#bids tr[data-price='29911.00'] td").all_inner_texts()
    assert row == ["29911.00", "0.4200", "1"]
    assert screen.errors == []


def test_an_order_from_the_form_appears_in_the_book_and_in_my_orders_and_cancel_removes_it(screen: ScreenPage, exchange: Exchange) -> None:
    page = screen.page
    page.fill("#key", "web-trader")
    page.click("#key-form button")
    page.wait_for_selector("#order-form:not([hidden])")
    page.check("input[name=side][value=sell]")
    page.fill("input[name=price]", "30123.45")
    page.fill("input[name=qty]", "0.0100")
    page.fill("input[name=client_order_id]", "web-1")
    page.click("#place")
    page.wait_for_selector("#asks tr[data-price='30123.45']")
    page.wait_for_selector("#my-orders tr[data-client-order-id='web-1']")
    assert "accepted" in page.inner_text("#order-result")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440, "an order row widens the page"
    mine = httpx.get(exchange.http + "/orders/client/web-1", headers={"X-Trader": "web-trader"}).json()
    assert mine["price"] == "30123.45" and mine["remaining"] == "0.0100" and mine["side"] == "sell"
    shot(screen, "screen-trading.png")

    page.click("#my-orders tr[data-client-order-id='web-1'] button[data-cancel]")
    page.wait_for_selector("#my-orders tr[data-client-order-id='web-1']", state="detached")
    page.wait_for_selector("#asks tr[data-price='30123.45']", state="detached")
    assert httpx.get(exchange.http + "/orders/client/web-1", headers={"X-Trader": "web-trader"}).json()["status"] == "cancelled"
    assert screen.errors == []


def test_the_candle_chart_shows_the_candles_the_rest_endpoint_returns(screen: ScreenPage, exchange: Exchange) -> None:
    with httpx.Client(base_url=exchange.http, timeout=10) as http:
        for price, qty in (("30050.00", "0.1000"), ("30060.00", "0.2000"), ("30040.00", "0.3000")):
            maker = {"symbol": BTC.symbol, "side": "sell", "price": price, "qty": qty}
            assert http.post("/orders", json=maker, headers={"X-Trader": "mm"}).status_code == 200
            taker = {"symbol": BTC.symbol, "side": "buy", "order_type": "market", "qty": qty}
            assert http.post("/orders", json=taker, headers={"X-Trader": "taker"}).status_code == 200
        rest = http.get(f"/candles/{BTC.symbol}", params={"interval": "1m"}).json()["candles"]
    assert rest and sum(Decimal(row[5]) for row in rest) >= Decimal("0.6000")
    # The chart plots numbers; the REST rows are decimal strings: each as the number the browser parses from it.
    expected = [
        {"time": row[0] // 1000, "open": float(row[1]), "high": float(row[2]), "low": float(row[3]), "close": float(row[4])} for row in rest
    ]
    page = screen.page
    page.wait_for_function(
        f"document.getElementById('candles').dataset.count === '{len(rest)}'"
        f" && window.dexScreen.candleSeries.data().at(-1).close === {expected[-1]['close']}"
    )
    drawn: list[dict[str, Any]] = page.evaluate(
        "window.dexScreen.candleSeries.data().map(({time, open, high, low, close}) => ({time, open, high, low, close}))"
    )
    assert drawn == expected
    page.wait_for_selector("#trades tr[data-trade]")
    shot(screen, "screen-candles.png")
    assert screen.errors == []


def test_the_transports_panel_and_the_reports_page(screen: ScreenPage, exchange: Exchange, side_loop: asyncio.AbstractEventLoop) -> None:
    page = screen.page
    place_over_grpc(side_loop, exchange, "grpc-panel", Side.BUY, "29800.00", "0.0100")
    page.wait_for_selector("#transport-rows tr[data-transport='grpc']", timeout=5000)
    cells = page.locator("#transport-rows tr[data-transport='grpc'] td").all_inner_texts()
    assert cells[0] == "grpc" and len(cells) == 9
    page.locator("#transports-view").screenshot(path=str(SCREENS / "screen-transports.png"))
    page.goto(exchange.http + "/reports")
    assert "Transport comparison" in page.inner_text("h1")
    page.screenshot(path=str(SCREENS / "screen-reports.png"))
    assert screen.errors == []


def place_from_form(screen: ScreenPage, kind: str, side: str, qty: str, price: str = "", stop: str = "") -> str:
    """Fill the entry form, place, and return the outcome line the screen shows."""
    page = screen.page
    page.select_option("#kind", kind)
    page.check(f"input[name=side][value={side}]")
    if kind != "market":  # the price row is hidden for a market order; empty for a stop means stop-market
        page.fill("input[name=price]", price)
    if kind == "stop":
        page.fill("input[name=stop_price]", stop)
    page.fill("input[name=qty]", qty)
    page.evaluate("document.getElementById('order-result').textContent = ''")
    page.click("#place")
    page.wait_for_function("document.getElementById('order-result').textContent !== ''")
    return page.inner_text("#order-result")


def test_the_forms_order_kinds_reach_the_engine_as_chosen(screen: ScreenPage, exchange: Exchange) -> None:
    page = screen.page
    page.fill("#key", "kinds-trader")
    page.click("#key-form button")
    page.wait_for_selector("#order-form:not([hidden])")
    with httpx.Client(base_url=exchange.http, timeout=10) as http:
        resting = {"symbol": BTC.symbol, "side": "sell", "price": "30200.00", "qty": "0.0100"}
        assert http.post("/orders", json=resting, headers={"X-Trader": "kinds-maker"}).status_code == 200
    assert "POST_ONLY_WOULD_TAKE" in place_from_form(screen, "post_only", "buy", "0.0100", price="30200.00")
    assert "FOK_NOT_FILLED" in place_from_form(screen, "fok", "buy", "0.0500", price="30200.00")
    ioc = place_from_form(screen, "ioc", "buy", "0.0300", price="30200.00")
    assert "1 fill(s)" in ioc and "IOC_REMAINDER" in ioc
    stop = place_from_form(screen, "stop", "sell", "0.0100", stop="29000.00")
    assert stop.startswith("accepted")
    page.wait_for_selector("#my-orders tr td:has-text('stop_market')")
    page.wait_for_selector("#my-fills tr[data-fill]")  # the IOC's fill, as taker
    assert page.locator("#my-fills tr[data-fill] td").nth(4).inner_text() == "taker"
    page.click("#cancel-all")
    page.wait_for_selector("#my-orders tr", state="detached")
    # The browser logs the refused post-only's HTTP status (409) itself; the screen showed the reason, nothing else failed.
    assert screen.errors == ["Failed to load resource: the server responded with a status of 409 (Conflict)"]


def test_the_api_docs_render_offline_in_the_browser(screen: ScreenPage, exchange: Exchange) -> None:
    page = screen.page
    page.goto(exchange.http + "/docs")
    page.wait_for_selector(".swagger-ui .info .title")  # rendered by the bundle the server serves: not a blank page
    assert "turbo-dex" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("text=/fills")
    assert screen.errors == []
