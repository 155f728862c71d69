"""Small helpers shared by the HTTP tests: place an order, read a book, pick events out of a reply."""

from __future__ import annotations

from typing import Any

import httpx

SYMBOL = "BTC-USD"  # tick 0.01, lot 0.0001, 10% band around 30000.00

Level = tuple[str, str, int]


def place(http: httpx.Client, trader: str, side: str, price: str | None, qty: str, symbol: str = SYMBOL, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {"symbol": symbol, "side": side, "qty": qty, **fields}
    if price is not None:
        body["price"] = price
    return http.post("/orders", json=body, headers={"X-Trader": trader})


def events(response: httpx.Response, kind: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = response.json()["events"]
    return [e for e in out if kind is None or e["type"] == kind]


def order_id(response: httpx.Response) -> int:
    (accepted,) = events(response, "accepted")
    return int(accepted["order_id"])


def book(http: httpx.Client, symbol: str = SYMBOL, depth: int = 1000) -> dict[str, Any]:
    response = http.get(f"/book/{symbol}", params={"depth": depth})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def levels(data: dict[str, Any]) -> tuple[list[Level], list[Level]]:
    return [tuple(lv) for lv in data["bids"]], [tuple(lv) for lv in data["asks"]]


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The response is our error body with ``reason`` and HTTP ``status``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["type"] == "error", body
    assert body["reason"] == reason, body
    assert isinstance(body["code"], int) and isinstance(body["message"], str) and body["message"]
    assert set(body) == {"type", "reason", "code", "message"}
    return body
