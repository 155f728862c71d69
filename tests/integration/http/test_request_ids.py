"""HTTP retries with a request id: a cancel, replace or mass cancel sent twice acts once and is answered alike."""

from __future__ import annotations

import httpx

from tests.integration.http.helpers import SYMBOL, book, events, levels, order_id, place

ALICE = {"X-Trader": "alice"}


def test_a_cancel_retried_with_its_request_id_is_answered_with_the_first_answer(http: httpx.Client) -> None:
    oid = order_id(place(http, "alice", "buy", "29990.00", "1.0"))
    first = http.delete(f"/orders/{oid}", params={"request_id": 7}, headers=ALICE)
    retry = http.delete(f"/orders/{oid}", params={"request_id": 7}, headers=ALICE)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert [e["type"] for e in first.json()["events"]] == ["cancelled", "book_delta"]
    plain = http.delete(f"/orders/{oid}", headers=ALICE)  # without a request id it is a new cancel: the order is gone
    assert plain.status_code == 404


def test_a_replace_and_a_mass_cancel_retried_with_their_request_ids_act_once(http: httpx.Client) -> None:
    oid = order_id(place(http, "alice", "buy", "29990.00", "1.0"))
    body = {"symbol": SYMBOL, "price": "29991.00", "request_id": 8}
    first = http.post(f"/orders/{oid}/replace", json=body, headers=ALICE)
    assert http.post(f"/orders/{oid}/replace", json=body, headers=ALICE).json() == first.json()
    (replaced,) = events(first, "replaced")
    assert replaced["price"] == "29991.00"
    swept = http.post("/orders/mass-cancel", json={"request_id": 9}, headers=ALICE)
    place(http, "alice", "buy", "29980.00", "2.0")  # after the mass cancel: the retry must leave it resting
    assert http.post("/orders/mass-cancel", json={"request_id": 9}, headers=ALICE).json() == swept.json()
    assert levels(book(http)) == ([("29980.00", "2.0000", 1)], [])
    assert http.get("/stats").json()["repeated_requests"] == 2
