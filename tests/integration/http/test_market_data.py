"""WebSocket market data: a snapshot plus the deltas after it rebuild exactly the book GET /book shows."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.integration.http.conftest import LiveServer, StartServer
from tests.integration.http.helpers import SYMBOL, book, levels, order_id, place
from transports.core.gateway import GatewayConfig

ALICE = {"X-Trader": "alice"}


class LocalBook:
    """A subscriber's copy of one symbol's book, kept from snapshot + updates, checking md_seq has no holes."""

    def __init__(self) -> None:
        self.bids: dict[str, tuple[str, int]] = {}
        self.asks: dict[str, tuple[str, int]] = {}
        self.md_seq = -1
        self.last_price: str | None = None
        self.gaps = 0
        self.trades: list[dict[str, Any]] = []

    def apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "snapshot":
            self.bids = {p: (q, c) for p, q, c in message["bids"]}
            self.asks = {p: (q, c) for p, q, c in message["asks"]}
            self.md_seq = message["md_seq"]
            self.last_price = message["last_price"]
        elif kind == "gap":
            self.gaps += 1
            self.md_seq = -1  # only a snapshot can follow
        else:
            assert kind == "update", message
            assert self.md_seq >= 0, "an update arrived after a gap without a snapshot"
            assert message["md_seq"] == self.md_seq + 1, (message["md_seq"], self.md_seq)
            self.md_seq = message["md_seq"]
            event = message["event"]
            if event["type"] == "trade":
                self.last_price = event["price"]
                self.trades.append(event)
            else:
                assert event["type"] == "book_delta"
                side = self.bids if event["side"] == "buy" else self.asks
                if Decimal(event["qty"]) == 0:
                    side.pop(event["price"], None)
                else:
                    side[event["price"]] = (event["qty"], event["order_count"])

    def levels(self) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
        bids = sorted(self.bids.items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda kv: Decimal(kv[0]))
        return [(p, q, c) for p, (q, c) in bids], [(p, q, c) for p, (q, c) in asks]


def ws_url(server: LiveServer, path: str) -> str:
    return "ws" + server.url.removeprefix("http") + path


def receive(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return data


def catch_up(ws: ClientConnection, local: LocalBook, http: httpx.Client, symbol: str = SYMBOL) -> dict[str, Any]:
    """Read messages until the local book is at the server's current md_seq; return GET /book."""
    current = book(http, symbol)
    while local.md_seq != current["md_seq"]:
        local.apply(receive(ws))
    return current


def test_snapshot_then_deltas_reproduce_the_book(http: httpx.Client, server: LiveServer) -> None:
    place(http, "alice", "sell", "30010.00", "1")
    place(http, "alice", "sell", "30020.00", "2")
    place(http, "bob", "buy", "29990.00", "1.5")
    with connect(ws_url(server, f"/ws/marketdata/{SYMBOL}")) as ws:
        local = LocalBook()
        first = receive(ws)
        assert first["type"] == "snapshot" and first["symbol"] == SYMBOL
        local.apply(first)
        assert local.levels() == levels(book(http))

        # Trades, partial fills, cancels, replaces and a batch, then compare.
        resting = order_id(place(http, "carol", "buy", "29980.00", "3"))
        place(http, "dave", "buy", "30015.00", "1.5")  # takes 30010 fully, rests 0.5 at 30015
        http.post(f"/orders/{resting}/replace", json={"symbol": SYMBOL, "price": "29995.00"}, headers={"X-Trader": "carol"})
        batch = [{"symbol": SYMBOL, "side": "sell", "price": f"{30030 + i}.00", "qty": "0.1"} for i in range(20)]
        batch.append({"symbol": SYMBOL, "side": "sell", "price": "29990.00", "qty": "4"})  # sweeps the bids
        assert http.post("/orders/batch", json=batch, headers=ALICE).status_code == 200
        http.delete(f"/orders/{resting}", headers={"X-Trader": "carol"})

        current = catch_up(ws, local, http)
        assert local.levels() == levels(current)
        assert local.last_price == current["last_price"]
        assert [t["trade_id"] for t in local.trades] == [t["trade_id"] for t in http.get(f"/trades/{SYMBOL}").json()["trades"]]
        assert local.gaps == 0


def test_several_symbols_on_one_socket(http: httpx.Client, server: LiveServer) -> None:
    with connect(ws_url(server, "/ws/marketdata?symbols=BTC-USD,ETH-USD")) as ws:
        books = {"BTC-USD": LocalBook(), "ETH-USD": LocalBook()}
        for _ in range(2):
            message = receive(ws)
            assert message["type"] == "snapshot"
            books[message["symbol"]].apply(message)
        place(http, "alice", "buy", "29000.00", "1")
        place(http, "alice", "sell", "2100.00", "1", symbol="ETH-USD")
        targets = {s: book(http, s)["md_seq"] for s in books}
        while any(books[s].md_seq != targets[s] for s in books):
            message = receive(ws)
            books[message["symbol"]].apply(message)
        for symbol, local in books.items():
            assert local.levels() == levels(book(http, symbol))


def test_a_subscriber_that_falls_behind_gets_a_gap_then_a_fresh_snapshot(start_server: StartServer) -> None:
    server = start_server(gateway=GatewayConfig(md_queue=4))
    with httpx.Client(base_url=server.url) as http, connect(ws_url(server, f"/ws/marketdata/{SYMBOL}")) as ws:
        local = LocalBook()
        local.apply(receive(ws))
        # One batch publishes 30 deltas at once: more than the subscriber's queue holds.
        batch = [{"symbol": SYMBOL, "side": "buy", "price": f"{29000 + i}.00", "qty": "0.1"} for i in range(30)]
        assert http.post("/orders/batch", json=batch, headers=ALICE).status_code == 200
        current = catch_up(ws, local, http)
        assert local.gaps >= 1
        assert local.levels() == levels(current)
        assert http.get("/stats").json()["market_data_gaps"] >= 1
        # The stream goes on normally after the gap.
        place(http, "bob", "sell", "29029.00", "0.1")
        current = catch_up(ws, local, http)
        assert local.levels() == levels(current)


def test_batched_messages_carry_what_waited_in_order_and_reproduce_the_book(http: httpx.Client, server: LiveServer) -> None:
    """``?batch=1``: every message is an array; a burst that waited arrives as one message, nothing lost or reordered."""
    place(http, "alice", "sell", "30010.00", "1")
    with connect(ws_url(server, f"/ws/marketdata?symbols={SYMBOL}&batch=1")) as ws:
        local = LocalBook()
        first = json.loads(ws.recv(timeout=10))
        assert isinstance(first, list) and [m["type"] for m in first] == ["snapshot"]
        local.apply(first[0])
        burst = [{"symbol": SYMBOL, "side": "buy", "price": f"{29000 + i}.00", "qty": "0.1"} for i in range(20)]
        assert http.post("/orders/batch", json=burst, headers=ALICE).status_code == 200
        target = book(http)["md_seq"]
        sizes = []
        while local.md_seq != target:
            message = json.loads(ws.recv(timeout=10))
            assert isinstance(message, list) and message, message
            sizes.append(len(message))
            for item in message:
                local.apply(item)  # LocalBook asserts each md_seq follows the last
        assert sum(sizes) == 20 and len(sizes) < 20  # the burst came in fewer messages than updates
        assert local.levels() == levels(book(http)) and local.gaps == 0


TOO_MANY = "/ws/marketdata?symbols=" + ",".join(f"S{i}" for i in range(65))  # over max_snapshot_symbols (docs/limits.md)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/ws/marketdata/DOGE-USD", "UNKNOWN_SYMBOL"),
        ("/ws/marketdata", "MALFORMED_MESSAGE"),
        (TOO_MANY, "LIMIT_EXCEEDED"),
        (f"/ws/marketdata/{SYMBOL}?batch=yes", "MALFORMED_MESSAGE"),
    ],
)
def test_a_bad_subscription_gets_an_error_message_and_a_close(server: LiveServer, path: str, reason: str) -> None:
    with connect(ws_url(server, path)) as ws:
        message = receive(ws)
        assert message["type"] == "error" and message["reason"] == reason
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_subscribers_are_released_when_they_disconnect(http: httpx.Client, server: LiveServer) -> None:
    with connect(ws_url(server, f"/ws/marketdata/{SYMBOL}")) as ws:
        receive(ws)
        assert http.get("/stats").json()["market_data_subscribers"] == 1
    for _ in range(100):
        if http.get("/stats").json()["market_data_subscribers"] == 0:
            break
        time.sleep(0.02)
    assert http.get("/stats").json()["market_data_subscribers"] == 0
