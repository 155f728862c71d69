"""A trader's private REST: an order by client order id, its own fills since a trade id, cancel all; nobody else's."""

from __future__ import annotations

import httpx

from tests.integration.http.helpers import SYMBOL, assert_error, book, events, order_id, place


def test_an_order_is_found_by_its_client_order_id_only_by_its_own_trader(http: httpx.Client) -> None:
    placed = order_id(place(http, "alice", "buy", "29990.00", "0.5000", client_order_id="a-1"))
    response = http.get("/orders/client/a-1", headers={"X-Trader": "alice"})
    assert response.status_code == 200, response.text
    assert response.json()["order_id"] == placed and response.json()["remaining"] == "0.5000"
    assert_error(http.get("/orders/client/a-1", headers={"X-Trader": "bob"}), 404, "UNKNOWN_ORDER")
    assert_error(http.get("/orders/client/a-1"), 401, "UNAUTHORIZED")


def test_fills_are_the_traders_own_side_oldest_first_and_page_by_trade_id(http: httpx.Client) -> None:
    for price in ("30000.00", "30001.00", "30002.00"):
        place(http, "maker", "sell", price, "0.1000")
    taken = place(http, "taker", "buy", "30002.00", "0.3000")
    trade_ids = [e["trade_id"] for e in events(taken, "trade")]
    assert len(trade_ids) == 3

    maker = http.get("/fills", params={"symbol": SYMBOL}, headers={"X-Trader": "maker"}).json()["fills"]
    assert [f["trade_id"] for f in maker] == trade_ids
    assert all(f["maker"] and f["side"] == "sell" and f["qty"] == "0.1000" and f["time"] > 0 for f in maker)
    taker = http.get("/fills", headers={"X-Trader": "taker"}).json()["fills"]
    assert [(f["price"], f["side"], f["maker"]) for f in taker] == [
        ("30000.00", "buy", False),
        ("30001.00", "buy", False),
        ("30002.00", "buy", False),
    ]
    assert all("trader" not in key for f in taker for key in f)  # nobody's name, the counterparty's least

    page = http.get("/fills", params={"since": trade_ids[0], "limit": 1}, headers={"X-Trader": "taker"}).json()["fills"]
    assert [f["trade_id"] for f in page] == [trade_ids[1]]
    assert http.get("/fills", headers={"X-Trader": "nobody"}).json() == {"fills": []}


def test_fills_queries_are_bounded_and_checked(http: httpx.Client) -> None:
    trader = {"X-Trader": "alice"}
    assert_error(http.get("/fills", params={"limit": 1001}, headers=trader), 400, "MALFORMED_MESSAGE")
    assert_error(http.get("/fills", params={"limit": 0}, headers=trader), 400, "MALFORMED_MESSAGE")
    assert_error(http.get("/fills", params={"symbol": "NOPE-USD"}, headers=trader), 404, "UNKNOWN_SYMBOL")
    assert_error(http.get("/fills"), 401, "UNAUTHORIZED")


def test_cancel_all_cancels_only_the_traders_orders_in_the_symbol_asked(http: httpx.Client) -> None:
    place(http, "alice", "buy", "29990.00", "0.1000")
    place(http, "alice", "buy", "29980.00", "0.1000")
    place(http, "alice", "buy", "1990.00", "0.1000", symbol="ETH-USD")
    place(http, "bob", "buy", "29970.00", "0.1000")
    response = http.delete("/orders", params={"symbol": SYMBOL}, headers={"X-Trader": "alice"})
    assert response.status_code == 200, response.text
    assert len(events(response, "cancelled")) == 2
    assert [lv[0] for lv in book(http)["bids"]] == ["29970.00"]
    assert len(http.get("/orders", headers={"X-Trader": "alice"}).json()["orders"]) == 1  # ETH-USD stays
    assert len(events(http.delete("/orders", headers={"X-Trader": "alice"}), "cancelled")) == 1
    assert http.get("/orders", headers={"X-Trader": "alice"}).json() == {"orders": []}
    assert_error(http.delete("/orders", params={"symbol": "NOPE-USD"}, headers={"X-Trader": "alice"}), 404, "UNKNOWN_SYMBOL")


def test_the_private_routes_are_in_the_openapi_document(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert "get" in paths["/orders/client/{client_order_id}"] and "get" in paths["/fills"] and "delete" in paths["/orders"]
    assert paths["/fills"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Fills"}
