"""The old HTTP API keeps working for migrating clients: POST /order, a bare array at /orders/batch, helpful 404s."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.http.conftest import LiveServer
from tests.integration.http.helpers import SYMBOL, assert_error, book, events, place
from transports.http.legacy import DEPRECATED_SINCE, exact_loads, modern_order

ALICE = {"X-Trader": "alice", "Content-Type": "application/json"}


def assert_deprecated(response: httpx.Response, successor: str) -> None:
    assert response.headers["Deprecation"] == DEPRECATED_SINCE
    assert f'<{successor}>; rel="successor-version"' in response.headers["Link"]


def test_post_order_with_json_numbers_answers_the_old_shape(http: httpx.Client) -> None:
    response = http.post("/order", content=b'{"symbol":"BTC-USD","side":"buy","price":29990.10,"quantity":0.5}', headers=ALICE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "accepted" and isinstance(body["id"], int) and body["id"] > 0
    assert_deprecated(response, "/orders")
    assert ["29990.10", "0.5000", 1] in book(http)["bids"]


def test_the_old_order_is_the_same_order_as_the_current_shape(http: httpx.Client) -> None:
    old = http.post("/order", content=b'{"symbol":"BTC-USD","side":"sell","price":30010,"quantity":1}', headers=ALICE)
    new = place(http, "bob", "buy", "30010.00", "0.25")
    assert old.status_code == 200 and new.status_code == 200
    (trade,) = events(new, "trade")
    assert trade["price"] == "30010.00" and trade["qty"] == "0.2500" and trade["maker_order_id"] == old.json()["id"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b'{"symbol":"BTC-USD","side":"buy","price":30000.005,"quantity":1}', 400, "INVALID_PRICE"),
        (b'{"symbol":"BTC-USD","side":"buy","price":30000.00,"quantity":0.00001}', 400, "INVALID_QUANTITY"),
        (b'{"symbol":"BTC-USD","side":"buy","price":1e999999999,"quantity":1}', 400, "INVALID_PRICE"),
        (b'{"symbol":"BTC-USD","side":"buy","price":NaN,"quantity":1}', 400, "MALFORMED_MESSAGE"),
        (b'{"symbol":"BTC-USD","side":"buy","price":30000,"quantity":1,"qty":1}', 400, "MALFORMED_MESSAGE"),
        (b'{"symbol":"BTC-USD","side":"buy","price":30000,"quantity":1,"colour":"red"}', 400, "MALFORMED_MESSAGE"),
        (b'{"symbol":"DOGE-USD","side":"buy","price":1,"quantity":1}', 404, "UNKNOWN_SYMBOL"),
        (b'{"symbol":"BTC-USD","side":"buy","price":90000,"quantity":1}', 422, "PRICE_OUT_OF_BAND"),
        (b"[not json", 400, "MALFORMED_MESSAGE"),
    ],
)
def test_bad_old_orders_keep_the_current_reasons_and_name_the_current_shape(
    http: httpx.Client, body: bytes, status: int, reason: str
) -> None:
    response = http.post("/order", content=body, headers=ALICE)
    error = assert_error(response, status, reason)
    assert_deprecated(response, "/orders")
    if status == 400:
        assert "POST /orders" in error["message"]


def test_a_float_that_binary_floats_would_round_is_read_exactly() -> None:
    # 0.1 + 0.2 style: the text, not the nearest double, reaches the tick conversion
    order = modern_order(exact_loads(b'{"symbol":"BTC-USD","side":"buy","price":30000.29999999999999999,"quantity":0.1}'))
    assert order["price"] == "30000.29999999999999999" and order["qty"] == "0.1"


def test_the_old_route_needs_the_trader_header_like_every_order_route(http: httpx.Client) -> None:
    response = http.post("/order", json={"symbol": SYMBOL, "side": "buy", "price": 29000, "quantity": 1})
    assert_error(response, 401, "UNAUTHORIZED")
    assert "X-Trader" in response.json()["message"]


def test_a_bare_array_of_old_orders_at_orders_batch_answers_the_old_counts(http: httpx.Client) -> None:
    orders = (
        b'[{"symbol":"BTC-USD","side":"buy","price":29000.5,"quantity":1},'
        b'{"symbol":"BTC-USD","side":"buy","price":29001,"qty":2},'
        b'{"symbol":"BTC-USD","side":"buy","price":99000,"quantity":1}]'
    )
    response = http.post("/orders/batch", content=orders, headers=ALICE)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "rejected": 1, "total": 3, "reasons": {"PRICE_OUT_OF_BAND": 1}}
    assert_deprecated(response, "/orders/batch")


def test_an_old_batch_is_decoded_all_or_nothing_and_names_the_bad_order(http: httpx.Client) -> None:
    orders = b'[{"symbol":"BTC-USD","side":"buy","price":29000,"quantity":1},{"symbol":"BTC-USD","side":"buy","price":1.001,"quantity":1}]'
    response = http.post("/orders/batch", content=orders, headers=ALICE)
    error = assert_error(response, 400, "INVALID_PRICE")
    assert error["message"].startswith("order 1: ")
    assert book(http)["bids"] == []


def test_the_current_batch_shape_is_untouched(http: httpx.Client) -> None:
    response = http.post("/orders/batch", json=[{"symbol": SYMBOL, "side": "buy", "price": "29000.00", "qty": "1"}], headers=ALICE)
    assert response.status_code == 200 and "Deprecation" not in response.headers
    assert response.json()["replies"][0]["events"][0]["type"] == "accepted"


@pytest.mark.parametrize(
    ("method", "path", "nearest"),
    [
        ("POST", "/ordr", "POST /order"),
        ("GET", "/instrument", "GET /instruments"),
        ("GET", "/healthz", "GET /health"),
        ("GET", "/book", "GET /book/{symbol}"),
    ],
)
def test_every_404_names_the_nearest_real_route(http: httpx.Client, method: str, path: str, nearest: str) -> None:
    error = assert_error(http.request(method, path, headers=ALICE), 404, "MALFORMED_MESSAGE")
    assert f"nearest route: {nearest} " in error["message"]


def test_an_engine_reject_is_counted_once_and_a_refusal_as_a_transport_error(server: LiveServer, http: httpx.Client) -> None:
    http.post("/order", content=b'{"symbol":"BTC-USD","side":"buy","price":90000,"quantity":1}', headers=ALICE)  # engine reject
    http.post("/order", content=b'{"symbol":"BTC-USD","side":"buy","price":1.001,"quantity":1}', headers=ALICE)  # never reached it
    assert server.gateway is not None
    assert dict(server.gateway.stats.transport_errors) == {("http", "INVALID_PRICE"): 1}
