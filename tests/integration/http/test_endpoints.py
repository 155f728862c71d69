"""Every endpoint of turbo-dex, through a real uvicorn server, as a trader would use it."""

from __future__ import annotations

import httpx

from tests.integration.http.conftest import LiveServer
from tests.integration.http.helpers import SYMBOL, book, events, levels, order_id, place


def test_a_resting_order_shows_in_the_reply_the_book_its_status_and_the_open_orders(http: httpx.Client) -> None:
    response = place(http, "alice", "sell", "30000.00", "1.5", client_order_id="a-1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    accepted, delta = events(response)
    assert accepted["type"] == "accepted" and accepted["trader"] == "alice" and accepted["client_order_id"] == "a-1"
    assert (accepted["price"], accepted["qty"], accepted["side"], accepted["tif"]) == ("30000.00", "1.5000", "sell", "gtc")
    assert delta == {**delta, "type": "book_delta", "side": "sell", "price": "30000.00", "qty": "1.5000", "order_count": 1}
    assert delta["seq"] == accepted["seq"] + 1

    assert levels(book(http)) == ([], [("30000.00", "1.5000", 1)])

    oid = accepted["order_id"]
    status = http.get(f"/orders/{oid}", headers={"X-Trader": "alice"})
    assert status.status_code == 200
    assert status.json() == {
        "order_id": oid,
        "trader": "alice",
        "client_order_id": "a-1",
        "symbol": SYMBOL,
        "side": "sell",
        "order_type": "limit",
        "tif": "gtc",
        "price": "30000.00",
        "stop_price": None,
        "remaining": "1.5000",
        "filled": "0.0000",
        "status": "new",
    }
    open_orders = http.get("/orders", headers={"X-Trader": "alice"}).json()["orders"]
    assert [o["order_id"] for o in open_orders] == [oid]
    assert http.get("/orders", params={"symbol": "ETH-USD"}, headers={"X-Trader": "alice"}).json() == {"orders": []}


def test_partial_then_full_fill_trades_at_the_makers_price(http: httpx.Client) -> None:
    maker = order_id(place(http, "alice", "sell", "30000.00", "1.0"))

    partial = place(http, "bob", "buy", "30001.00", "0.4")
    (trade,) = events(partial, "trade")
    assert (trade["price"], trade["qty"], trade["maker_order_id"], trade["maker_remaining"]) == ("30000.00", "0.4000", maker, "0.6000")
    assert (trade["taker_trader"], trade["aggressor_side"], trade["taker_remaining"]) == ("bob", "buy", "0.0000")
    status = http.get(f"/orders/{maker}", headers={"X-Trader": "alice"}).json()
    assert (status["status"], status["filled"], status["remaining"]) == ("partially_filled", "0.4000", "0.6000")

    full = place(http, "carol", "buy", "30000.00", "0.6")
    (trade2,) = events(full, "trade")
    assert (trade2["qty"], trade2["maker_remaining"]) == ("0.6000", "0.0000")
    assert http.get(f"/orders/{maker}", headers={"X-Trader": "alice"}).json()["status"] == "filled"

    data = book(http)
    assert levels(data) == ([], [])
    assert data["last_price"] == "30000.00"
    trades = http.get(f"/trades/{SYMBOL}").json()["trades"]
    assert [(t["trade_id"], t["qty"]) for t in trades] == [(trade["trade_id"], "0.4000"), (trade2["trade_id"], "0.6000")]
    # Public, so anonymous: no trader, order id, client order id or remaining quantity.
    assert trades[0] == {
        "type": "trade",
        "seq": trade["seq"],
        "trade_id": trade["trade_id"],
        "symbol": SYMBOL,
        "price": "30000.00",
        "qty": "0.4000",
        "aggressor_side": "buy",
        "time": trades[0]["time"],  # the gateway's wall clock when it applied the trade (ms)
    }
    assert trades[0]["time"] > 1_600_000_000_000
    assert http.get(f"/trades/{SYMBOL}", params={"limit": 1}).json()["trades"] == [trades[-1]]


def test_cancel_removes_the_order_and_a_second_cancel_is_unknown(http: httpx.Client) -> None:
    oid = order_id(place(http, "alice", "buy", "29000.00", "2"))
    response = http.delete(f"/orders/{oid}", headers={"X-Trader": "alice"})
    assert response.status_code == 200
    (cancelled,) = events(response, "cancelled")
    assert (cancelled["order_id"], cancelled["reason"], cancelled["qty"]) == (oid, "USER", "2.0000")
    assert levels(book(http)) == ([], [])
    assert http.get(f"/orders/{oid}", headers={"X-Trader": "alice"}).json()["status"] == "cancelled"

    again = http.delete(f"/orders/{oid}", headers={"X-Trader": "alice"})
    assert again.status_code == 404
    (rejected,) = events(again)
    assert (rejected["type"], rejected["reason"], rejected["code"], rejected["order_id"]) == ("rejected", "UNKNOWN_ORDER", 400, oid)


def test_replace_changes_quantity_in_place_and_price_to_the_back(http: httpx.Client) -> None:
    oid = order_id(place(http, "alice", "buy", "29000.00", "1"))
    smaller = http.post(f"/orders/{oid}/replace", json={"symbol": SYMBOL, "qty": "0.5"}, headers={"X-Trader": "alice"})
    assert smaller.status_code == 200
    (replaced,) = events(smaller, "replaced")
    assert (replaced["qty"], replaced["price"], replaced["priority_kept"]) == ("0.5000", "29000.00", True)

    moved = http.post(f"/orders/{oid}/replace", json={"symbol": SYMBOL, "price": "29100.00"}, headers={"X-Trader": "alice"})
    (replaced,) = events(moved, "replaced")
    assert (replaced["price"], replaced["priority_kept"]) == ("29100.00", False)
    assert levels(book(http)) == ([("29100.00", "0.5000", 1)], [])

    # A new price that crosses the spread trades at once.
    place(http, "bob", "sell", "29500.00", "0.2")
    crossing = http.post(f"/orders/{oid}/replace", json={"symbol": SYMBOL, "price": "29500.00"}, headers={"X-Trader": "alice"})
    (trade,) = events(crossing, "trade")
    assert (trade["price"], trade["qty"], trade["taker_order_id"]) == ("29500.00", "0.2000", oid)


def test_mass_cancel_by_symbol_then_everything(http: httpx.Client) -> None:
    alice = {"X-Trader": "alice"}
    btc = [order_id(place(http, "alice", "buy", f"2900{i}.00", "1")) for i in range(2)]
    eth = order_id(place(http, "alice", "sell", "2100.00", "1", symbol="ETH-USD"))
    bobs = order_id(place(http, "bob", "buy", "29005.00", "1"))

    response = http.post("/orders/mass-cancel", json={"symbol": SYMBOL}, headers=alice)
    assert response.status_code == 200
    cancelled = events(response, "cancelled")
    assert sorted(e["order_id"] for e in cancelled) == btc
    assert {e["reason"] for e in cancelled} == {"MASS_CANCEL"}

    everything = http.post("/orders/mass-cancel", headers=alice)
    assert [e["order_id"] for e in events(everything, "cancelled")] == [eth]
    assert http.get("/orders", headers=alice).json() == {"orders": []}
    assert http.post("/orders/mass-cancel", headers=alice).json() == {"events": []}
    # Bob's order is untouched.
    assert [o["order_id"] for o in http.get("/orders", headers={"X-Trader": "bob"}).json()["orders"]] == [bobs]


def test_a_trader_cannot_see_or_touch_another_traders_orders(http: httpx.Client) -> None:
    oid = order_id(place(http, "alice", "buy", "29000.00", "1", client_order_id="mine"))
    bob = {"X-Trader": "bob"}

    status = http.get(f"/orders/{oid}", headers=bob)
    assert status.status_code == 404 and status.json()["reason"] == "UNKNOWN_ORDER"
    cancel = http.delete(f"/orders/{oid}", headers=bob)
    assert cancel.status_code == 404 and events(cancel)[0]["reason"] == "UNKNOWN_ORDER"
    replace = http.post(f"/orders/{oid}/replace", json={"symbol": SYMBOL, "qty": "0.1"}, headers=bob)
    assert replace.status_code == 404 and events(replace)[0]["reason"] == "UNKNOWN_ORDER"
    # Writing alice's name into the body changes nothing: the header is the trader.
    spoof = http.post("/orders", json={"type": "cancel", "trader": "alice", "order_id": oid}, headers=bob)
    assert spoof.status_code == 404 and events(spoof)[0]["trader"] == "bob"
    by_client_id = http.post("/orders", json={"type": "cancel", "client_order_id": "mine"}, headers=bob)
    assert by_client_id.status_code == 404
    assert http.post("/orders/mass-cancel", headers=bob).json() == {"events": []}
    assert http.get("/orders", headers=bob).json() == {"orders": []}

    assert http.get(f"/orders/{oid}", headers={"X-Trader": "alice"}).json()["status"] == "new"
    assert levels(book(http)) == ([("29000.00", "1.0000", 1)], [])


def test_a_batch_is_applied_in_order_with_one_reply_per_command_rejects_included(http: httpx.Client) -> None:
    batch = [
        {"symbol": SYMBOL, "side": "sell", "price": "30000.00", "qty": "1", "client_order_id": "s1"},
        {"symbol": SYMBOL, "side": "buy", "price": "40000.00", "qty": "1"},  # outside the 10% band
        {"type": "cancel", "order_id": 999_999},
        {"type": "cancel", "client_order_id": "s1"},
    ]
    response = http.post("/orders/batch", json=batch, headers={"X-Trader": "alice"})
    assert response.status_code == 200
    replies = response.json()["replies"]
    assert [[e["type"] for e in r["events"]] for r in replies] == [
        ["accepted", "book_delta"],
        ["rejected"],
        ["rejected"],
        ["cancelled", "book_delta"],
    ]
    assert replies[1]["events"][0]["reason"] == "PRICE_OUT_OF_BAND"
    assert replies[2]["events"][0]["reason"] == "UNKNOWN_ORDER"
    seqs = [e["seq"] for r in replies for e in r["events"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert http.post("/orders/batch", json=[], headers={"X-Trader": "alice"}).json() == {"replies": []}


def test_stats_count_what_the_engine_applied(http: httpx.Client) -> None:
    place(http, "alice", "sell", "30000.00", "1")
    place(http, "bob", "buy", "30000.00", "1")
    place(http, "bob", "buy", "1.00", "1")  # out of band
    stats = http.get("/stats").json()
    assert stats["orders"] == 3 and stats["accepted"] == 2 and stats["trades"] == 1
    assert stats["by_transport"]["http"] == 3
    assert stats["rejected_by_reason"] == {"PRICE_OUT_OF_BAND": 1}
    assert stats["engine_seq"] == http.get("/health").json()["engine_seq"]
    assert stats["queue_depth"] == 0


def test_metrics_expose_gateway_counters_histograms_and_transport_errors(http: httpx.Client) -> None:
    place(http, "alice", "sell", "30000.00", "1")
    place(http, "bob", "buy", "30000.00", "2")
    place(http, "bob", "buy", "1.00", "1")  # rejected by the engine
    http.post("/orders", content=b"{", headers={"X-Trader": "bob"})  # refused before the engine
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in (
        'dex_commands_total{transport="http"} 3.0',
        "dex_orders_total 3.0",
        "dex_trades_total 1.0",
        'dex_rejects_total{reason="PRICE_OUT_OF_BAND",transport="http"} 1.0',
        'dex_transport_errors_total{reason="MALFORMED_MESSAGE",transport="http"} 1.0',
        "dex_gateway_queue_depth 0.0",
        'dex_command_latency_seconds_bucket{le="+Inf",transport="config"} 3.0',  # the 3 default instruments listed at start
        'dex_command_latency_seconds_bucket{le="+Inf",transport="http"} 3.0',  # the 3 orders
        'dex_command_latency_seconds_count{transport="http"} 3.0',
        "dex_journal_fsync_seconds_count 0.0",
    ):
        assert line in text, line
    buckets = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dex_command_latency_seconds_bucket") and 'transport="http"' in line
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 3


def test_health_instruments_and_docs(http: httpx.Client, server: LiveServer) -> None:
    health = http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    instruments = http.get("/instruments").json()["instruments"]
    assert [i["symbol"] for i in instruments] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert instruments[0] == {
        "symbol": "BTC-USD",
        "tick_size": "0.01",
        "lot_size": "0.0001",
        "min_qty": "0.0001",
        "max_qty": "1000.0000",
        "price_band_bps": 1000,
        "reference_price": "30000.00",
    }
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = http.get("/openapi.json").json()
    assert "/orders/batch" in schema["paths"] and "HTTPValidationError" not in schema["components"]["schemas"]


def test_stop_limit_order_reports_its_stop_price(http: httpx.Client) -> None:
    response = place(http, "alice", "sell", "29000.00", "1", order_type="stop_limit", stop_price="29500.00")
    assert response.status_code == 200
    (accepted,) = events(response, "accepted")
    assert (accepted["order_type"], accepted["stop_price"]) == ("stop_limit", "29500.00")
    status = http.get(f"/orders/{accepted['order_id']}", headers={"X-Trader": "alice"}).json()
    assert (status["status"], status["stop_price"]) == ("pending_trigger", "29500.00")
