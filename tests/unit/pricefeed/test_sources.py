"""Price sources: the seeded walk, file replay, and the Kraken/Binance tickers against recorded responses.

The ticker tests serve recorded JSON bodies (the real API shapes, captured
from api.kraken.com and api.binance.com) through ``httpx.MockTransport``: the
source's real HTTP client code parses them. "Network absent" is a transport
that raises ``httpx.ConnectError`` like a machine without a route does.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest

from pricefeed.sources import (
    BadSourceData,
    BinanceTicker,
    FileReplay,
    KrakenTicker,
    RandomWalk,
    SourceError,
    SourceExhausted,
    SourceUnavailable,
    make_source,
)
from pricefeed.update import Quote

# Recorded from GET https://api.kraken.com/0/public/Ticker?pair=XBTUSD,ETHUSD (fields trimmed to those of one record).
KRAKEN_TICKER = """{"error":[],"result":{
 "XETHZUSD":{"a":["3051.51000","3","3.000"],"b":["3051.50000","12","12.000"],"c":["3051.51000","0.01639108"],
   "v":["1521.25412466","6279.67017591"],"p":["3032.05297","3034.12048"],"t":[4573,21336],
   "l":["2990.02000","2985.00000"],"h":["3066.40000","3080.00000"],"o":"3010.68000"},
 "XXBTZUSD":{"a":["97120.10000","1","1.000"],"b":["97120.00000","2","2.000"],"c":["97120.10000","0.00030000"],
   "v":["621.44551962","2399.84125338"],"p":["96739.38227","96590.17617"],"t":[19856,66301],
   "l":["96113.60000","95500.00000"],"h":["97450.00000","97450.00000"],"o":"96489.80000"}}}"""

# Recorded from GET https://api.binance.com/api/v3/ticker/24hr?symbols=["BTCUSDT","ETHUSDT"] (trimmed).
BINANCE_24HR = """[
 {"symbol":"BTCUSDT","priceChange":"712.01000000","priceChangePercent":"0.738","weightedAvgPrice":"96712.31840216",
  "prevClosePrice":"96407.99000000","lastPrice":"97120.00000000","lastQty":"0.00052000","bidPrice":"97119.99000000",
  "bidQty":"4.35818000","askPrice":"97120.00000000","askQty":"1.21044000","openPrice":"96407.99000000",
  "highPrice":"97450.00000000","lowPrice":"95510.00000000","volume":"17350.09441000","quoteVolume":"1677977745.05300990",
  "openTime":1732142400000,"closeTime":1732228799999,"firstId":4165020031,"lastId":4168441155,"count":3421125},
 {"symbol":"ETHUSDT","priceChange":"42.12000000","priceChangePercent":"1.399","weightedAvgPrice":"3033.86091352",
  "prevClosePrice":"3009.39000000","lastPrice":"3051.52000000","lastQty":"0.01800000","bidPrice":"3051.51000000",
  "bidQty":"36.62630000","askPrice":"3051.52000000","askQty":"18.11100000","openPrice":"3009.40000000",
  "highPrice":"3080.00000000","lowPrice":"2985.00000000","volume":"482176.93280000","quoteVolume":"1462862434.65773200",
  "openTime":1732142400000,"closeTime":1732228799999,"firstId":1742416431,"lastId":1744178433,"count":1762003}]"""


def served(body: str, seen: list[httpx.Request] | None = None, status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=body.encode(), headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# ------------------------------------------------------------------ random walk
def test_random_walk_is_deterministic_for_a_seed_and_exact():
    async def three(seed: int) -> list[list[Quote]]:
        walk = RandomWalk(seed)
        return [await walk.quotes(["BTC-USD", "ETH-USD"]) for _ in range(3)]

    first, again, other = run(three(7)), run(three(7)), run(three(8))
    assert first == again
    assert first != other
    for quotes in first:
        for q in quotes:
            assert isinstance(q.last, Decimal) and q.last == q.last.quantize(Decimal("0.01"))
            assert q.bid < q.last < q.ask


def test_random_walk_moves_at_most_step_bps_per_step():
    walk = RandomWalk(3, step_bps=10)
    previous = Decimal("30000.00")
    for _ in range(50):
        (quote,) = run(walk.quotes(["BTC-USD"]))
        assert abs(quote.last - previous) <= previous * Decimal("0.0010") + Decimal("0.01")
        previous = quote.last


# ------------------------------------------------------------------ replay
def test_csv_replay_yields_rows_in_order_then_is_exhausted(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("pair,price,bid,ask\nBTC-USD,30000.10,30000.00,30000.20\nETH-USD,2000.5,,\n")
    replay = FileReplay(path)
    assert run(replay.quotes([])) == [Quote("BTC-USD", Decimal("30000.00"), Decimal("30000.20"), Decimal("30000.10"))]
    assert run(replay.quotes([])) == [Quote("ETH-USD", Decimal("2000.5"), Decimal("2000.5"), Decimal("2000.5"))]
    with pytest.raises(SourceExhausted):
        run(replay.quotes([]))


def test_jsonl_replay_filters_pairs_and_loops(tmp_path):
    path = tmp_path / "prices.jsonl"
    path.write_text('{"pair": "BTC-USD", "price": "1.5"}\n{"pair": "ETH-USD", "price": "2"}\n')
    replay = FileReplay(path, loop=True)
    got = [run(replay.quotes(["ETH-USD"]))[0].last for _ in range(3)]
    assert got == [Decimal("2")] * 3


def test_replay_refuses_float_prices_and_missing_files(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"pair": "BTC-USD", "price": 1.5}\n')
    with pytest.raises(BadSourceData, match="decimal string"):
        FileReplay(path)
    with pytest.raises(SourceError, match="does not exist"):
        FileReplay(tmp_path / "missing.csv")


# ------------------------------------------------------------------ kraken
def test_kraken_recorded_ticker_gives_exact_bid_ask_last():
    seen: list[httpx.Request] = []
    source = KrakenTicker(transport=served(KRAKEN_TICKER, seen))
    quotes = run(source.quotes(["BTC-USD", "ETH-USD"]))
    assert quotes == [
        Quote("BTC-USD", Decimal("97120.00000"), Decimal("97120.10000"), Decimal("97120.10000")),
        Quote("ETH-USD", Decimal("3051.50000"), Decimal("3051.51000"), Decimal("3051.51000")),
    ]
    assert seen[0].url.path == "/0/public/Ticker"
    assert seen[0].url.params["pair"] == "XBTUSD,ETHUSD"


def test_kraken_api_error_is_bad_data():
    source = KrakenTicker(transport=served('{"error":["EQuery:Unknown asset pair"]}'))
    with pytest.raises(BadSourceData, match="Unknown asset pair"):
        run(source.quotes(["BTC-USD"]))


# ------------------------------------------------------------------ binance
def test_binance_recorded_24hr_ticker_gives_exact_bid_ask_last():
    seen: list[httpx.Request] = []
    source = BinanceTicker(transport=served(BINANCE_24HR, seen))
    quotes = run(source.quotes(["BTC-USD", "ETH-USD"]))
    assert quotes == [
        Quote("BTC-USD", Decimal("97119.99"), Decimal("97120.00"), Decimal("97120.00")),
        Quote("ETH-USD", Decimal("3051.51"), Decimal("3051.52"), Decimal("3051.52")),
    ]
    assert json.loads(seen[0].url.params["symbols"]) == ["BTCUSDT", "ETHUSDT"]


def test_binance_missing_symbol_is_bad_data():
    source = BinanceTicker(transport=served(BINANCE_24HR))
    with pytest.raises(BadSourceData, match="SOL-USD"):
        run(source.quotes(["SOL-USD"]))


# ------------------------------------------------------------------ network absent, retries
def test_network_absent_is_a_clear_error_after_bounded_retries():
    attempts: list[httpx.Request] = []

    def unreachable(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("[Errno 101] Network is unreachable", request=request)

    source = KrakenTicker(transport=httpx.MockTransport(unreachable), retries=2, backoff_s=0.01)
    with pytest.raises(SourceUnavailable, match=r"unreachable after 3 attempts .*Network is unreachable"):
        run(source.quotes(["BTC-USD"]))
    assert len(attempts) == 3


def test_a_transient_server_error_is_retried_then_succeeds():
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, content=BINANCE_24HR.encode())])
    source = BinanceTicker(transport=httpx.MockTransport(lambda request: next(answers)), retries=2, backoff_s=0.01)
    assert [q.pair for q in run(source.quotes(["BTC-USD", "ETH-USD"]))] == ["BTC-USD", "ETH-USD"]


def test_unknown_source_name_is_refused():
    with pytest.raises(SourceError, match="unknown source"):
        make_source("bloomberg")
    with pytest.raises(SourceError, match="--file"):
        make_source("replay")
