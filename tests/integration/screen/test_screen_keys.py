"""The web screen as an authenticated trader against a live ``turbo-dex --auth keys --keys DIR`` process.

What a user with an API key notices in headless chromium: without a key the
order form says it needs one; with a key id and its HMAC secret (or Ed25519
seed) an order from the form rests in the book and in "my orders", is the
key's trader's on the server, fills show in "my fills", and cancel and cancel
all remove orders; the secret is kept in no storage; a wrong secret, or a key
id without a secret, shows the server's refusal and its cause on the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page

from transports.core.keys import Credential, create_key
from transports.http.local import LocalServer
from transports.http.signed import signed_headers

SYMBOL = "BTC-USD"


@dataclass
class KeyedScreen:
    url: str
    alice: Credential  # HMAC-SHA256: what dex-keys create alice --hmac makes
    bob: Credential  # HMAC-SHA256
    carol: Credential  # Ed25519


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedScreen]:
    workdir = tmp_path_factory.mktemp("turbo-dex-screen-keys")
    keys = workdir / "keys"
    alice, bob, carol = create_key(keys, "alice", scheme="hmac"), create_key(keys, "bob", scheme="hmac"), create_key(keys, "carol")
    server = LocalServer(workdir, ("--auth", "keys", "--keys", str(keys), "--log-level", "warning")).start()
    try:
        yield KeyedScreen(server.url, alice, bob, carol)
    finally:
        assert server.stop() == 0, server.log_tail()


@pytest.fixture
def page(browser: Browser, keyed: KeyedScreen) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    thrown: list[str] = []  # uncaught script errors (a refused request's 401 is logged by chromium itself, not thrown)
    opened.on("pageerror", lambda error: thrown.append(str(error)))
    opened.goto(keyed.url + "/#" + SYMBOL)
    opened.wait_for_selector("body[data-ready='1']")
    try:
        yield opened
        assert thrown == []
    finally:
        context.close()


def signed_get(keyed: KeyedScreen, credential: Credential, path: str, query: str = "") -> httpx.Response:
    headers = signed_headers(credential, "GET", path, query, b"")
    return httpx.get(keyed.url + path + (f"?{query}" if query else ""), headers=headers, timeout=10)


def enter_key(page: Page, credential: Credential, secret: str | None = None, scheme: str = "hmac") -> None:
    page.fill("#key", credential.key_id)
    page.fill("#secret", credential.private_key if secret is None else secret)
    page.select_option("#scheme", scheme)
    page.click("#key-form button")


def place(page: Page, side: str, price: str, qty: str, client_order_id: str) -> str:
    page.select_option("#kind", "limit")
    page.check(f"input[name=side][value={side}]")
    page.fill("input[name=price]", price)
    page.fill("input[name=qty]", qty)
    page.fill("input[name=client_order_id]", client_order_id)
    page.evaluate("document.getElementById('order-result').textContent = ''")
    page.click("#place")
    page.wait_for_function("document.getElementById('order-result').textContent !== ''")
    return page.inner_text("#order-result")


def test_without_a_key_the_order_form_says_it_needs_one(page: Page) -> None:
    assert page.is_hidden("#order-form") and page.is_hidden("#cancel-all")
    assert "API key" in page.inner_text("#locked") and "secret" in page.inner_text("#locked")
    assert page.inner_text("#key-state") == "market data only"


def test_an_hmac_key_places_from_the_form_sees_it_in_the_book_and_my_orders_and_cancels_it(page: Page, keyed: KeyedScreen) -> None:
    enter_key(page, keyed.alice)
    page.wait_for_selector("#order-form:not([hidden])")
    assert page.inner_text("#key-state") == f"signing as {keyed.alice.key_id} (HMAC-SHA256)"
    assert page.input_value("#secret") == ""  # the secret left the input for a non-extractable CryptoKey
    stored = page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert keyed.alice.private_key not in stored

    assert place(page, "sell", "30123.45", "0.0100", "web-key-1").startswith("accepted")
    page.wait_for_selector("#asks tr[data-price='30123.45']")
    page.wait_for_selector("#my-orders tr[data-client-order-id='web-key-1']")
    mine = signed_get(keyed, keyed.alice, "/orders/client/web-key-1").json()  # alice's order on the server
    assert (mine["price"], mine["remaining"], mine["side"], mine["status"]) == ("30123.45", "0.0100", "sell", "new")

    page.click("#my-orders tr[data-client-order-id='web-key-1'] button[data-cancel]")
    page.wait_for_selector("#my-orders tr[data-client-order-id='web-key-1']", state="detached")
    page.wait_for_selector("#asks tr[data-price='30123.45']", state="detached")
    assert signed_get(keyed, keyed.alice, "/orders/client/web-key-1").json()["status"] == "cancelled"


def test_my_fills_and_cancel_all_are_signed_too(page: Page, keyed: KeyedScreen) -> None:
    body = json.dumps({"symbol": SYMBOL, "side": "sell", "price": "30300.00", "qty": "0.0200", "client_order_id": "bob-rest"}).encode()
    resting = httpx.post(keyed.url + "/orders", content=body, headers=signed_headers(keyed.bob, "POST", "/orders", "", body), timeout=10)
    assert resting.status_code == 200, resting.text
    enter_key(page, keyed.alice)
    page.wait_for_selector("#order-form:not([hidden])")
    taken = place(page, "buy", "30300.00", "0.0050", "web-key-take")
    assert taken.startswith("accepted") and "1 fill(s)" in taken
    page.wait_for_selector("#my-fills tr[data-fill]")
    assert page.locator("#my-fills tr[data-fill] td").all_inner_texts()[1:] == ["buy", "30300.00", "0.0050", "taker"]

    for n, price in enumerate(("29000.00", "29001.00")):
        assert place(page, "buy", price, "0.0100", f"web-key-all-{n}").startswith("accepted")
    page.wait_for_selector("#my-orders tr[data-client-order-id='web-key-all-1']")
    page.click("#cancel-all")
    page.wait_for_selector("#my-orders tr", state="detached")
    assert page.inner_text("#order-result") == "cancelled 2 order(s)"
    assert signed_get(keyed, keyed.alice, "/orders", f"symbol={SYMBOL}").json()["orders"] == []
    bobs = signed_get(keyed, keyed.bob, "/orders", f"symbol={SYMBOL}").json()["orders"]
    assert [o["client_order_id"] for o in bobs] == ["bob-rest"]  # alice's cancel-all left bob's order in the book


def test_a_wrong_secret_shows_the_refusal_and_its_cause(page: Page, keyed: KeyedScreen) -> None:
    enter_key(page, keyed.alice, secret=keyed.bob.private_key)  # a valid secret, of another key
    page.wait_for_selector("#key-state.bad")
    assert "UNAUTHENTICATED" in page.inner_text("#key-state") and "bad_signature" in page.inner_text("#key-state")
    assert "refused" in page.inner_text("#locked") and "bad_signature" in page.inner_text("#locked")
    assert page.is_hidden("#order-form")

    enter_key(page, keyed.alice, secret="")  # a key id alone is --auth off's trader name: refused here
    page.wait_for_selector("#key-state.bad")
    assert "missing_credentials" in page.inner_text("#key-state") and "needs a signed key" in page.inner_text("#locked")

    enter_key(page, keyed.alice, secret="not base64!")
    page.wait_for_selector("#locked:has-text('cannot sign')")
    assert "private_key (base64)" in page.inner_text("#locked") and page.is_hidden("#order-form")

    enter_key(page, keyed.alice)  # the right secret again: trading resumes
    page.wait_for_selector("#order-form:not([hidden])")
    assert "signing as" in page.inner_text("#key-state")


def test_an_ed25519_key_signs_with_webcrypto(page: Page, keyed: KeyedScreen) -> None:
    enter_key(page, keyed.carol, scheme="ed25519")
    page.wait_for_selector("#order-form:not([hidden])")
    assert place(page, "buy", "28000.00", "0.0100", "web-ed-1").startswith("accepted")
    page.wait_for_selector("#my-orders tr[data-client-order-id='web-ed-1']")
    assert signed_get(keyed, keyed.carol, "/orders/client/web-ed-1").json()["status"] == "new"
    page.click("#cancel-all")
    page.wait_for_selector("#my-orders tr", state="detached")
