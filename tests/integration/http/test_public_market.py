"""Public market data over a live server: ticker, timed trades, depth, candles, their errors and WebSocket channels."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.integration.http.conftest import LiveServer
from tests.integration.http.helpers import SYMBOL, assert_error, place
from transports.core.candles import INTERVALS
from transports.core.gateway import Gateway
from transports.http.context import HttpContext
from transports.http.routes_market import market_stats_router
from transports.http.settings import HttpServerSettings

ETH = "ETH-USD"


def cross(http: httpx.Client, price: str, qty: str, symbol: str = SYMBOL) -> None:
    """One trade of ``qty`` at ``price``: alice rests a sell, bob lifts it."""
    assert place(http, "alice", "sell", price, qty, symbol).status_code == 200
    assert place(http, "bob", "buy", price, qty, symbol).status_code == 200


def recompute(trades: list[dict[str, Any]], width: int) -> list[list[Any]]:
    """OHLCV rows from GET /trades' timed trades, the naive way (decimal strings compared as numbers)."""
    buckets: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in trades:
        buckets[t["time"] - t["time"] % width].append(t)
    rows = []
    for start in sorted(buckets):
        prices = [Decimal(t["price"]) for t in buckets[start]]
        volume = sum((Decimal(t["qty"]) for t in buckets[start]), Decimal(0))
        rows.append([start, prices[0], max(prices), min(prices), prices[-1], volume, len(prices)])
    return rows


def as_numbers(rows: list[list[Any]]) -> list[list[Any]]:
    return [[r[0], *(Decimal(x) for x in r[1:6]), r[6]] for r in rows]


def test_ticker_shows_last_best_bid_ask_and_24h_figures(http: httpx.Client) -> None:
    cross(http, "30000.00", "0.5")
    cross(http, "30300.00", "0.25")
    place(http, "carol", "buy", "29900.00", "1")
    place(http, "dave", "sell", "30400.00", "2")
    ticker = http.get(f"/ticker/{SYMBOL}").json()
    assert ticker["symbol"] == SYMBOL and ticker["time"] > 1_600_000_000_000
    assert (ticker["last"], ticker["bid"], ticker["bid_qty"], ticker["ask"], ticker["ask_qty"]) == (
        "30300.00",
        "29900.00",
        "1.0000",
        "30400.00",
        "2.0000",
    )
    assert (ticker["open"], ticker["high"], ticker["low"], ticker["volume"], ticker["trades"]) == (
        "30000.00",
        "30300.00",
        "30000.00",
        "0.7500",
        2,
    )
    assert (ticker["change"], ticker["change_percent"]) == ("300.00", "1.00")
    everyone = http.get("/ticker").json()["tickers"]
    assert [t["symbol"] for t in everyone] == [i["symbol"] for i in http.get("/instruments").json()["instruments"]]
    quiet = next(t for t in everyone if t["symbol"] == ETH)
    assert (quiet["last"], quiet["bid"], quiet["open"], quiet["volume"], quiet["change"]) == (None, None, None, "0.000", None)


def test_trades_carry_their_time_and_page_forward_with_since(http: httpx.Client) -> None:
    for i in range(5):
        cross(http, f"{30000 + i}.00", "0.1")
    trades = http.get(f"/trades/{SYMBOL}").json()["trades"]
    ids = [t["trade_id"] for t in trades]
    assert len(ids) == 5 and ids == sorted(ids)
    assert all(t["time"] > 1_600_000_000_000 for t in trades) and [t["time"] for t in trades] == sorted(t["time"] for t in trades)
    assert "trader" not in json.dumps(trades)  # public: anonymous
    page = http.get(f"/trades/{SYMBOL}", params={"since": ids[1], "limit": 2}).json()["trades"]
    assert [t["trade_id"] for t in page] == ids[2:4]
    assert http.get(f"/trades/{SYMBOL}", params={"since": ids[-1]}).json()["trades"] == []


def test_depth_is_the_book_with_a_limit(http: httpx.Client) -> None:
    for i in range(5):
        place(http, "alice", "buy", f"{29000 + i}.00", "1")
    depth = http.get(f"/depth/{SYMBOL}", params={"limit": 2}).json()
    assert [lv[0] for lv in depth["bids"]] == ["29004.00", "29003.00"] and depth["asks"] == []
    assert depth["md_seq"] >= 5
    book = http.get(f"/book/{SYMBOL}", params={"depth": 2}).json()
    assert {**depth, "md_seq": 0} == {**book, "md_seq": 0}


def test_candles_equal_a_recomputation_from_the_trade_history(http: httpx.Client) -> None:
    for i in range(40):
        cross(http, f"{30000 + (i * 37) % 200}.00", f"0.{1 + i % 9}")
    trades = http.get(f"/trades/{SYMBOL}", params={"limit": 1000}).json()["trades"]
    assert len(trades) == 40
    for interval, width in INTERVALS.items():
        data = http.get(f"/candles/{SYMBOL}", params={"interval": interval}).json()
        assert (data["symbol"], data["interval"]) == (SYMBOL, interval)
        assert as_numbers(data["candles"]) == recompute(trades, width), interval
    first = http.get(f"/candles/{SYMBOL}").json()["candles"][0][0]
    assert http.get(f"/candles/{SYMBOL}", params={"start": first + 1}).json()["candles"] == [
        c for c in http.get(f"/candles/{SYMBOL}").json()["candles"] if c[0] >= first + 1
    ]
    assert http.get(f"/candles/{ETH}").json()["candles"] == []


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/ticker/DOGE-USD", 404, "UNKNOWN_SYMBOL"),
        ("/trades/DOGE-USD", 404, "UNKNOWN_SYMBOL"),
        ("/depth/DOGE-USD", 404, "UNKNOWN_SYMBOL"),
        ("/candles/DOGE-USD", 404, "UNKNOWN_SYMBOL"),
        ("/candles/BTC-USD?interval=2m", 400, "MALFORMED_MESSAGE"),
        ("/candles/BTC-USD?interval=1m&start=2000&end=1000", 400, "MALFORMED_MESSAGE"),
        ("/candles/BTC-USD?limit=0", 400, "MALFORMED_MESSAGE"),
        ("/candles/BTC-USD?limit=1441", 400, "MALFORMED_MESSAGE"),
        ("/candles/BTC-USD?start=-1", 400, "MALFORMED_MESSAGE"),
        ("/candles/BTC-USD?end=soon", 400, "MALFORMED_MESSAGE"),
        ("/trades/BTC-USD?limit=1001", 400, "MALFORMED_MESSAGE"),
        ("/trades/BTC-USD?since=-5", 400, "MALFORMED_MESSAGE"),
        ("/depth/BTC-USD?limit=0", 400, "MALFORMED_MESSAGE"),
        ("/depth/BTC-USD?limit=1001", 400, "MALFORMED_MESSAGE"),
    ],
)
def test_bad_market_data_queries_are_refused_with_a_stable_reason(http: httpx.Client, path: str, status: int, reason: str) -> None:
    body = assert_error(http.get(path), status, reason)
    if "interval=2m" in path:
        assert "1m, 5m, 15m, 1h, 1d" in body["message"]
    if "start=2000" in path:
        assert "after end" in body["message"]


def receive(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return data


def channel(server: LiveServer, path: str) -> ClientConnection:
    return connect(server.url.replace("http://", "ws://") + path, open_timeout=5)


def test_websocket_channels_send_the_state_then_each_change(server: LiveServer, http: httpx.Client) -> None:
    cross(http, "30000.00", "0.5")
    with (
        channel(server, f"/ws/ticker/{SYMBOL}") as ticker,
        channel(server, f"/ws/trades/{SYMBOL}?limit=5") as trades,
        channel(server, f"/ws/depth/{SYMBOL}?limit=3") as depth,
        channel(server, f"/ws/candles/{SYMBOL}?interval=1h") as candles,
    ):
        first_ticker, first_trades, first_depth, first_candles = receive(ticker), receive(trades), receive(depth), receive(candles)
        assert (first_ticker["type"], first_ticker["last"], first_ticker["volume"]) == ("ticker", "30000.00", "0.5000")
        assert first_trades["type"] == "trades" and [t["price"] for t in first_trades["trades"]] == ["30000.00"]
        assert (first_depth["type"], first_depth["bids"], first_depth["asks"]) == ("depth", [], [])
        assert first_candles["type"] == "candles" and len(first_candles["candles"]) == 1
        assert first_candles["candles"][0][1:7] == ["30000.00", "30000.00", "30000.00", "30000.00", "0.5000", 1]

        place(http, "carol", "buy", "29950.00", "2")  # a book change only: depth and ticker (best bid) move
        assert receive(depth)["bids"] == [["29950.00", "2.0000", 1]]
        assert receive(ticker)["bid"] == "29950.00"
        cross(http, "30100.00", "0.25")
        fresh = receive(trades)
        while not any(t["price"] == "30100.00" for t in fresh["trades"]):
            fresh = receive(trades)
        assert [t["price"] for t in fresh["trades"]] == ["30100.00"]
        candle = receive(candles)["candles"][-1]
        assert candle[1:7] == ["30000.00", "30100.00", "30000.00", "30100.00", "0.7500", 2]
        last = receive(ticker)
        while last["last"] != "30100.00":
            last = receive(ticker)
        assert (last["volume"], last["high"]) == ("0.7500", "30100.00")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/ws/ticker/DOGE-USD", "UNKNOWN_SYMBOL"),
        ("/ws/candles/BTC-USD?interval=7m", "MALFORMED_MESSAGE"),
        ("/ws/trades/BTC-USD?limit=x", "MALFORMED_MESSAGE"),
    ],
)
def test_a_bad_channel_is_refused_with_an_error_then_closed(server: LiveServer, path: str, reason: str) -> None:
    with channel(server, path) as ws:
        message = receive(ws)
        assert (message["type"], message["reason"]) == ("error", reason)


def test_docs_http_md_names_every_market_data_route_and_channel() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "http.md").read_text()
    paths = {getattr(r, "path", "") for r in market_stats_router(HttpContext(Gateway(), HttpServerSettings())).routes}
    assert len(paths) == 9  # /ticker, /ticker/{symbol}, /trades, /depth, /candles and four channels
    for path in paths:
        assert f"`{path}" in text or f"`GET {path}" in text, path
