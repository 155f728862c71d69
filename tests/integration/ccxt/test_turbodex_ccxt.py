"""The ccxt exchange class against a live turbo-dex, with the real ccxt package: every unified method, sync and async,
and bad input raising ccxt's own exception classes."""

from __future__ import annotations

import asyncio

import ccxt
import httpx
import pytest

from engine import RejectReason
from tests.integration.ccxt.conftest import LiveServer
from traders.turbodex_ccxt import turbodex
from traders.turbodex_ccxt.async_support import turbodex as async_turbodex
from traders.turbodex_ccxt.common import REASON_EXCEPTIONS

SYMBOL = "BTC/USD"  # the server's BTC-USD: tick 0.01, lot 0.0001, min 0.0001


def exchange(server: LiveServer, key: str = "alice") -> turbodex:
    return turbodex({"url": server.url, "apiKey": key})


def test_markets_are_the_servers_instruments_with_tick_and_lot(server: LiveServer) -> None:
    markets = exchange(server).load_markets()
    btc = markets[SYMBOL]
    assert btc["id"] == "BTC-USD" and btc["base"] == "BTC" and btc["quote"] == "USD" and btc["spot"]
    assert btc["precision"]["amount"] == 0.0001 and btc["precision"]["price"] == 0.01
    assert btc["limits"]["amount"]["min"] == 0.0001
    assert {m["id"] for m in markets.values()} == {i["symbol"] for i in httpx.get(server.url + "/instruments").json()["instruments"]}


def test_orders_book_ticker_trades_candles_and_my_trades(server: LiveServer) -> None:
    alice, bob = exchange(server, "alice"), exchange(server, "bob")
    resting = alice.create_order(SYMBOL, "limit", "sell", "0.5", "30010.00", {"clientOrderId": "a-1"})
    assert resting["status"] == "open" and resting["amount"] == 0.5 and resting["filled"] == 0 and resting["clientOrderId"] == "a-1"

    book = bob.fetch_order_book(SYMBOL, 5)
    assert book["asks"][0] == [30010.0, 0.5, 1] and book["bids"] == [] and book["symbol"] == SYMBOL  # [price, amount, orders]

    taken = bob.create_order(SYMBOL, "market", "buy", "0.2")
    assert taken["status"] == "closed" and taken["filled"] == 0.2 and taken["average"] == 30010.0

    order = alice.fetch_order(resting["id"], SYMBOL)
    assert order["status"] == "open" and order["filled"] == 0.2 and order["remaining"] == 0.3 and order["price"] == 30010.0
    assert alice.fetch_order("", SYMBOL, {"clientOrderId": "a-1"})["id"] == resting["id"]
    assert [o["id"] for o in alice.fetch_open_orders(SYMBOL)] == [resting["id"]]
    assert bob.fetch_open_orders() == []

    ticker = bob.fetch_ticker(SYMBOL)
    assert ticker["last"] == 30010.0 and ticker["ask"] == 30010.0 and ticker["baseVolume"] == 0.2

    (trade,) = bob.fetch_trades(SYMBOL)
    assert trade["price"] == 30010.0 and trade["amount"] == 0.2 and trade["side"] == "buy" and trade["timestamp"] > 0

    (candle,) = bob.fetch_ohlcv(SYMBOL, "1m")
    assert candle[1:] == [30010.0, 30010.0, 30010.0, 30010.0, 0.2]
    assert candle[0] == trade["timestamp"] - trade["timestamp"] % 60_000
    assert bob.fetch_ohlcv(SYMBOL, "1h", since=candle[0] + 3_600_000) == []

    (mine,) = alice.fetch_my_trades(SYMBOL)
    assert mine["order"] == resting["id"] and mine["side"] == "sell" and mine["takerOrMaker"] == "maker" and mine["amount"] == 0.2
    assert bob.fetch_my_trades()[0]["takerOrMaker"] == "taker"
    assert alice.fetch_my_trades(SYMBOL, params={"fromId": mine["id"]}) == []

    cancelled = alice.cancel_order(resting["id"], SYMBOL)
    assert cancelled["status"] == "canceled" and cancelled["id"] == resting["id"]
    assert alice.fetch_order(resting["id"])["status"] == "canceled"
    assert alice.fetch_open_orders() == []


def test_time_in_force_post_only_and_stop_orders(server: LiveServer) -> None:
    alice, bob = exchange(server, "alice"), exchange(server, "bob")
    alice.create_order(SYMBOL, "limit", "sell", "0.1", "30000.00")
    ioc = bob.create_order(SYMBOL, "limit", "buy", "0.3", "30000.00", {"timeInForce": "IOC"})
    assert ioc["status"] == "canceled" and ioc["filled"] == 0.1 and ioc["timeInForce"] == "IOC"
    alice.create_order(SYMBOL, "limit", "sell", "0.1", "30000.00")
    fok = bob.create_order(SYMBOL, "limit", "buy", "1", "30000.00", {"timeInForce": "FOK"})  # cannot fill whole: nothing
    assert fok["status"] == "canceled" and fok["filled"] == 0
    assert bob.fetch_order_book(SYMBOL)["asks"][0][:2] == [30000.0, 0.1]
    alice.create_order(SYMBOL, "limit", "sell", "0.1", "30005.00")
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        bob.create_order(SYMBOL, "limit", "buy", "0.1", "30005.00", {"postOnly": True})
    stop = bob.create_order(SYMBOL, "market", "buy", "0.1", None, {"triggerPrice": "30100.00"})
    assert stop["status"] == "open" and stop["triggerPrice"] == 30100.0
    assert bob.fetch_order(stop["id"])["info"]["status"] == "pending_trigger"
    assert len(bob.cancel_all_orders(SYMBOL)) == 1


def test_bad_input_raises_ccxts_own_exception_classes(server: LiveServer) -> None:
    alice = exchange(server)
    with pytest.raises(ccxt.BadSymbol):
        alice.fetch_order_book("NOPE/USD")
    with pytest.raises(ccxt.BadSymbol):
        alice.create_order("NOPE/USD", "limit", "buy", "1", "1")
    with pytest.raises(ccxt.InvalidOrder, match=r"INVALID_QUANTITY|QUANTITY_BELOW_MIN"):
        alice.create_order(SYMBOL, "limit", "buy", "0.00005", "30000.00")  # under the lot (0.0001)
    with pytest.raises(ccxt.InvalidOrder, match="INVALID_PRICE"):
        alice.create_order(SYMBOL, "limit", "buy", "0.1", "30000.001")  # off the tick
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_OUT_OF_BAND"):
        alice.create_order(SYMBOL, "limit", "buy", "0.1", "1.00")
    with pytest.raises(ccxt.OrderNotFound):
        alice.cancel_order("999999", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        alice.fetch_order("999999", SYMBOL)
    with pytest.raises(ccxt.AuthenticationError):
        turbodex({"url": server.url}).fetch_open_orders()  # no key: refused before any request
    with pytest.raises(ccxt.BadRequest):
        alice.fetch_my_trades(SYMBOL, limit=5000, params={"limit": 5000})


def test_the_async_class_makes_the_same_requests(server: LiveServer) -> None:
    async def run() -> None:
        alice = async_turbodex({"url": server.url, "apiKey": "alice"})
        try:
            order = await alice.create_order(SYMBOL, "limit", "buy", "0.25", "29990.00")
            assert order["status"] == "open"
            book = await alice.fetch_order_book(SYMBOL)
            assert book["bids"][0][:2] == [29990.0, 0.25]
            assert [o["id"] for o in await alice.fetch_open_orders(SYMBOL)] == [order["id"]]
            assert (await alice.fetch_order(order["id"]))["remaining"] == 0.25
            assert (await alice.fetch_ticker(SYMBOL))["bid"] == 29990.0
            assert await alice.fetch_trades(SYMBOL) == [] and await alice.fetch_ohlcv(SYMBOL) == []
            assert await alice.fetch_my_trades() == []
            assert (await alice.cancel_order(order["id"]))["status"] == "canceled"
            with pytest.raises(ccxt.BadSymbol):
                await alice.fetch_ticker("NOPE/USD")
            with pytest.raises(ccxt.InvalidOrder):
                await alice.create_order(SYMBOL, "limit", "buy", "0.00001", "29990.00")
        finally:
            await alice.close()

    asyncio.run(run())


def test_every_reason_code_has_a_ccxt_exception_class() -> None:
    assert set(REASON_EXCEPTIONS) == {reason.name for reason in RejectReason}  # a new reason needs its class here
    assert all(issubclass(kind, ccxt.BaseError) for kind in REASON_EXCEPTIONS.values())
