"""The ccxt class as an authenticated trader against a live ``turbo-dex --auth keys --keys DIR`` process.

What a ccxt user holding a key would notice: with the key id as ``apiKey`` and
the credential's ``private_key`` as ``secret`` (HMAC-SHA256, as ccxt users
expect, or Ed25519), orders, cancels, open orders and fills work, sync and
async; a wrong secret, or no secret, is ccxt's ``AuthenticationError`` from
the server's 401; one trader's valid key cannot cancel another's order.
"""

from __future__ import annotations

import asyncio
import base64

import ccxt
import pytest

from tests.integration.ccxt.conftest import KeyedExchange
from traders.turbodex_ccxt import turbodex
from traders.turbodex_ccxt.async_support import turbodex as async_turbodex
from transports.core.keys import Credential

SYMBOL = "BTC/USD"


def signed(keyed: KeyedExchange, credential: Credential) -> turbodex:
    return turbodex({"url": keyed.url, "apiKey": credential.key_id, "secret": credential.private_key})


def test_an_hmac_key_places_lists_fills_and_cancels(keyed: KeyedExchange) -> None:
    alice, bob = signed(keyed, keyed.alice), signed(keyed, keyed.bob)
    resting = alice.create_order(SYMBOL, "limit", "sell", "0.5", "30010.00", {"clientOrderId": "ccxt-auth-1"})
    assert resting["status"] == "open"
    assert [o["id"] for o in alice.fetch_open_orders(SYMBOL)] == [resting["id"]]
    assert bob.fetch_open_orders(SYMBOL) == []  # each key sees its own trader's orders only

    taken = bob.create_order(SYMBOL, "market", "buy", "0.2")
    assert taken["status"] == "closed" and taken["filled"] == 0.2
    (sold,) = alice.fetch_my_trades(SYMBOL)
    (bought,) = bob.fetch_my_trades(SYMBOL)
    assert (sold["side"], sold["amount"], sold["price"], sold["takerOrMaker"]) == ("sell", 0.2, 30010.0, "maker")
    assert (bought["side"], bought["takerOrMaker"], bought["order"]) == ("buy", "taker", taken["id"])
    assert alice.fetch_order("", SYMBOL, {"clientOrderId": "ccxt-auth-1"})["filled"] == 0.2

    assert alice.cancel_order(resting["id"], SYMBOL)["status"] == "canceled"
    assert alice.fetch_open_orders(SYMBOL) == []
    assert signed(keyed, keyed.alice).fetch_order_book(SYMBOL)["asks"] == []


def test_a_wrong_secret_or_no_secret_is_an_authentication_error(keyed: KeyedExchange) -> None:
    forged = base64.b64encode(b"\x01" * 32).decode()
    wrong = turbodex({"url": keyed.url, "apiKey": keyed.alice.key_id, "secret": forged})
    with pytest.raises(ccxt.AuthenticationError, match="UNAUTHENTICATED: bad_signature"):
        wrong.create_order(SYMBOL, "limit", "buy", "0.1", "29000.00")
    with pytest.raises(ccxt.AuthenticationError, match="UNAUTHENTICATED: missing_credentials"):
        turbodex({"url": keyed.url, "apiKey": keyed.alice.key_id}).fetch_open_orders(SYMBOL)  # a name alone: --auth off only
    with pytest.raises(ccxt.AuthenticationError, match="unknown_key"):
        turbodex({"url": keyed.url, "apiKey": "nobody-000000000000", "secret": forged}).fetch_my_trades(SYMBOL)
    with pytest.raises(ccxt.AuthenticationError, match="private_key"):
        turbodex({"url": keyed.url, "apiKey": keyed.alice.key_id, "secret": "not base64!"}).fetch_open_orders()
    assert signed(keyed, keyed.alice).fetch_open_orders(SYMBOL) == []  # nothing was placed by the refused requests


def test_one_traders_key_cannot_cancel_anothers_order(keyed: KeyedExchange) -> None:
    alice, bob = signed(keyed, keyed.alice), signed(keyed, keyed.bob)
    bobs = bob.create_order(SYMBOL, "limit", "buy", "0.3", "29950.00")
    with pytest.raises(ccxt.OrderNotFound):
        alice.cancel_order(bobs["id"], SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        alice.fetch_order(bobs["id"], SYMBOL)
    assert alice.cancel_all_orders(SYMBOL) == []  # alice's cancel-all leaves bob's order alone
    assert bob.fetch_order_book(SYMBOL)["bids"][0][:2] == [29950.0, 0.3]
    assert [o["id"] for o in bob.fetch_open_orders(SYMBOL)] == [bobs["id"]]
    assert bob.cancel_order(bobs["id"], SYMBOL)["status"] == "canceled"


def test_an_ed25519_key_from_its_credential_file_signs_too(keyed: KeyedExchange) -> None:
    path = keyed.keys / "clients" / f"{keyed.carol.key_id}.json"
    carol = turbodex({"url": keyed.url, "credential": str(path)})
    assert (carol.apiKey, carol.options["keyScheme"]) == (keyed.carol.key_id, "ed25519")
    order = carol.create_order(SYMBOL, "limit", "buy", "0.1", "29900.00")
    assert [o["id"] for o in carol.fetch_open_orders(SYMBOL)] == [order["id"]]
    assert carol.cancel_order(order["id"])["status"] == "canceled"
    as_hmac = turbodex({"url": keyed.url, "apiKey": keyed.carol.key_id, "secret": keyed.carol.private_key})  # the wrong scheme
    with pytest.raises(ccxt.AuthenticationError, match="bad_signature"):
        as_hmac.fetch_open_orders(SYMBOL)


def test_the_async_class_signs_concurrent_identical_requests(keyed: KeyedExchange) -> None:
    async def run() -> None:
        alice = async_turbodex({"url": keyed.url, "apiKey": keyed.alice.key_id, "secret": keyed.alice.private_key})
        wrong = async_turbodex({"url": keyed.url, "apiKey": keyed.alice.key_id, "secret": keyed.bob.private_key})
        try:
            order = await alice.create_order(SYMBOL, "limit", "buy", "0.25", "29990.00")
            # Identical requests at once: distinct timestamps, so none is refused as a replay of another.
            seen = await asyncio.gather(*(alice.fetch_open_orders(SYMBOL) for _ in range(8)))
            assert all([o["id"] for o in orders] == [order["id"]] for orders in seen)
            fills = [t["id"] for t in await alice.fetch_my_trades(SYMBOL)]
            assert fills == [t["id"] for t in signed(keyed, keyed.alice).fetch_my_trades(SYMBOL)]
            assert (await alice.cancel_order(order["id"]))["status"] == "canceled"
            with pytest.raises(ccxt.AuthenticationError):
                await wrong.fetch_open_orders(SYMBOL)
        finally:
            await alice.close()
            await wrong.close()

    asyncio.run(run())
