"""The price update wire format: decimal strings, never floats; strictly increasing seq per pair."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pricefeed.update import BadPriceUpdate, PriceUpdate, Sequencer


def test_round_trip_keeps_decimals_exact():
    update = PriceUpdate("BTC-USD", 7, Decimal("30000.10"), Decimal("30000.00"), Decimal("30000.20"), "random", 123)
    body = update.to_json()
    assert b'"price":"30000.10"' in body
    assert PriceUpdate.from_json(body) == update


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"not json", "not JSON"),
        (b'{"pair":"BTC-USD","seq":1,"price":30000.1,"bid":"1","ask":"1","published_ns":1}', "decimal string"),
        (b'{"pair":"BTC-USD","seq":1,"price":"-1","bid":"1","ask":"1","published_ns":1}', "positive"),
        (b'{"pair":"BTC-USD","price":"1","bid":"1","ask":"1","published_ns":1}', "missing field"),
        (b'{"pair":"","seq":1,"price":"1","bid":"1","ask":"1","published_ns":1}', "pair"),
        (b"[1,2]", "JSON object"),
    ],
)
def test_bad_updates_are_refused_with_a_reason(body: bytes, problem: str):
    with pytest.raises(BadPriceUpdate, match=problem):
        PriceUpdate.from_json(body)


def test_sequence_increases_strictly_per_pair_and_restarts_above_the_clock():
    seq = Sequencer(start=100)
    assert [seq.next("BTC-USD"), seq.next("BTC-USD"), seq.next("ETH-USD")] == [100, 101, 100]
    clocked = Sequencer()
    first = clocked.next("BTC-USD")
    assert first > 1_700_000_000_000  # milliseconds since the epoch: a restarted feed never reuses a seq
    assert clocked.next("BTC-USD") > first


def test_a_body_with_only_the_price_and_ts_ns_is_read_at_that_price():
    # A producer that sends no quotes and no published_ns (the older price format): bid and ask are the price.
    body = b'{"pair":"ETH-USD","price":"2000.50","ts_ns":99,"seq":3,"source":"synthetic"}'
    ours = PriceUpdate.from_json(body)
    assert (ours.pair, ours.seq, ours.price, ours.bid, ours.ask, ours.published_ns) == (
        "ETH-USD",
        3,
        Decimal("2000.50"),
        Decimal("2000.50"),
        Decimal("2000.50"),
        99,
    )
