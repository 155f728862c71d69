"""Bad input is ``MalformedMessage`` with a stable reason, on both wires, and nothing else ever escapes.

Each table below breaks one field of a valid command at a time and names the
reason a client gets; the fuzz tests throw arbitrary JSON values and arbitrary
bytes at the decoders.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ExchangeError, Instrument, MalformedMessage, RejectReason
from tests.codec.strategies import FUZZ
from transports.codec import json_codec, proto_codec
from transports.codec.proto_codec import pb

BTC = Instrument.create("BTC-USD", "0.01", "0.0001", price_band_bps=1000, reference_price="30000.00")
LOOKUP = {"BTC-USD": BTC}.get
M = RejectReason.MALFORMED_MESSAGE
PRICE = RejectReason.INVALID_PRICE
QTY = RejectReason.INVALID_QUANTITY
SYMBOL = RejectReason.UNKNOWN_SYMBOL
INSTRUMENT = RejectReason.INVALID_INSTRUMENT
MISSING = object()

LONG = "x" * 65
BAD_PRICES = ["abc", "100.001", "-5.00", "NaN", "Infinity", "1e30", "1e27", "", " ", "1,00", "0x10", "9" * 70]
BAD_QTYS = ["abc", "0.00001", "-1", "NaN", "1e25", "", "1/2"]


def reason_of(fn: Any, *args: Any, **kwargs: Any) -> RejectReason:
    with pytest.raises(MalformedMessage) as info:
        fn(*args, **kwargs)
    return info.value.reason


# ------------------------------------------------------------------ JSON
JSON_PLACE = {
    "type": "place", "trader": "alice", "client_order_id": "a-1", "symbol": "BTC-USD", "side": "buy", "order_type": "limit",
    "price": "30000.00", "qty": "0.5000", "tif": "gtc", "post_only": False, "stp": "cancel_newest",
}  # fmt: skip
JSON_STOP = {**JSON_PLACE, "order_type": "stop_limit", "stop_price": "29990.00", "post_only": MISSING}
JSON_CANCEL = {"type": "cancel", "trader": "alice", "order_id": 7}
JSON_REPLACE = {"type": "replace", "trader": "alice", "order_id": 7, "symbol": "BTC-USD", "price": "30001.00"}
JSON_ADD = {"type": "add_instrument", "symbol": "ETH-USD", "tick_size": "0.01", "lot_size": "0.001", "min_qty": "0.001"}

JSON_CASES: list[tuple[dict[str, Any], str, Any, RejectReason]] = [
    (JSON_PLACE, "type", "bogus", M),
    (JSON_PLACE, "type", 5, M),
    (JSON_PLACE, "trader", MISSING, M),
    (JSON_PLACE, "trader", 5, M),
    (JSON_PLACE, "trader", LONG, M),
    (JSON_PLACE, "client_order_id", 5, M),
    (JSON_PLACE, "client_order_id", LONG, M),
    (JSON_PLACE, "symbol", MISSING, M),
    (JSON_PLACE, "symbol", ["BTC-USD"], M),
    (JSON_PLACE, "symbol", "NOPE", SYMBOL),
    (JSON_PLACE, "side", MISSING, M),
    (JSON_PLACE, "side", "up", M),
    (JSON_PLACE, "side", 1, M),
    (JSON_PLACE, "order_type", "iceberg", M),
    (JSON_PLACE, "tif", "day", M),
    (JSON_PLACE, "stp", "never", M),
    (JSON_PLACE, "post_only", "yes", M),
    (JSON_PLACE, "qty", MISSING, M),
    (JSON_PLACE, "qty", 0.5, QTY),
    (JSON_PLACE, "qty", 5, QTY),
    *[(JSON_PLACE, "qty", bad, QTY) for bad in BAD_QTYS],
    (JSON_PLACE, "price", 30000.5, PRICE),
    *[(JSON_PLACE, "price", bad, PRICE) for bad in BAD_PRICES],
    (JSON_STOP, "stop_price", 1, PRICE),
    (JSON_STOP, "stop_price", "29999.999", PRICE),
    (JSON_PLACE, "surprise", 1, M),
    (JSON_CANCEL, "order_id", MISSING, M),
    (JSON_CANCEL, "order_id", "abc", M),
    (JSON_CANCEL, "order_id", -1, M),
    (JSON_CANCEL, "order_id", 0, M),
    (JSON_CANCEL, "order_id", 2**63, M),
    (JSON_CANCEL, "order_id", True, M),
    (JSON_CANCEL, "order_id", 1.5, M),
    (JSON_CANCEL, "trader", MISSING, M),
    (JSON_CANCEL, "price", "1.00", M),
    (JSON_REPLACE, "price", MISSING, M),
    (JSON_REPLACE, "price", "abc", PRICE),
    (JSON_REPLACE, "qty", "0.00001", QTY),
    (JSON_REPLACE, "symbol", MISSING, M),
    (JSON_REPLACE, "symbol", "NOPE", SYMBOL),
    (JSON_REPLACE, "order_id", MISSING, M),
    (JSON_ADD, "symbol", MISSING, INSTRUMENT),
    (JSON_ADD, "symbol", "has space", INSTRUMENT),
    (JSON_ADD, "tick_size", MISSING, INSTRUMENT),
    (JSON_ADD, "tick_size", "abc", INSTRUMENT),
    (JSON_ADD, "tick_size", "0", INSTRUMENT),
    (JSON_ADD, "lot_size", "-1", INSTRUMENT),
    (JSON_ADD, "min_qty", "0.0001", INSTRUMENT),
    (JSON_ADD, "max_qty", "1e29", INSTRUMENT),
    (JSON_ADD, "reference_price", "1e40", INSTRUMENT),
    (JSON_ADD, "price_band_bps", -1, INSTRUMENT),
    (JSON_ADD, "price_band_bps", "10", INSTRUMENT),
    (JSON_ADD, "surprise", 1, M),
]


def _with(base: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = {k: v for k, v in base.items() if v is not MISSING}
    if value is MISSING:
        out.pop(field, None)
    else:
        out[field] = value
    return out


def test_the_valid_json_bases_decode() -> None:
    for base in (JSON_PLACE, JSON_STOP, JSON_CANCEL, JSON_REPLACE, JSON_ADD):
        json_codec.decode_command(_with(base, "type", base["type"]), LOOKUP)


@pytest.mark.parametrize(("base", "field", "value", "reason"), JSON_CASES, ids=lambda v: repr(v)[:24])
def test_json_field_wrong_in_turn(base: dict[str, Any], field: str, value: Any, reason: RejectReason) -> None:
    assert reason_of(json_codec.decode_command, _with(base, field, value), LOOKUP) is reason


@pytest.mark.parametrize("data", [b"", b"{", b"[1,", b"\xff", b'{"a":1}x', b"NaN"])
def test_json_bytes_that_do_not_parse(data: bytes) -> None:
    assert reason_of(json_codec.loads, data) is M


@pytest.mark.parametrize("data", [None, 1, "place", [], [JSON_PLACE]])
def test_json_a_command_is_an_object(data: Any) -> None:
    assert reason_of(json_codec.decode_command, data, LOOKUP) is M


def test_json_a_batch_is_all_or_nothing() -> None:
    assert reason_of(json_codec.decode_commands, [JSON_PLACE, _with(JSON_PLACE, "price", "1.001")], LOOKUP) is PRICE
    assert reason_of(json_codec.decode_commands, JSON_PLACE, LOOKUP) is M


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = sorted({*JSON_PLACE, *JSON_CANCEL, *JSON_REPLACE, *JSON_ADD, "max_qty", "reference_price", "price_band_bps"})
TYPES = ["place", "cancel", "replace", "mass_cancel", "add_instrument"]
decimal_texts = st.one_of(st.from_regex(r"\A[+-]?[0-9]{0,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,3})?\Z"), st.sampled_from(BAD_PRICES))
command_like = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(FIELDS), st.one_of(json_values, decimal_texts, st.sampled_from(["BTC-USD", "buy", "sell"]))),
)


@settings(FUZZ, max_examples=200)
@given(st.one_of(json_values, command_like))
def test_json_decoding_raises_nothing_but_malformed_message(data: Any) -> None:
    try:
        json_codec.decode_command(data, LOOKUP)
        json_codec.decode_commands([data], LOOKUP, trader="alice")
    except MalformedMessage as exc:
        assert isinstance(exc.reason, RejectReason)


@FUZZ
@given(st.binary(max_size=64))
def test_json_arbitrary_bytes_raise_nothing_but_malformed_message(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        json_codec.decode_command(json_codec.loads(data), LOOKUP)


# ---------------------------------------------------------------- protobuf
def place(**fields: Any) -> pb.Command:
    base = {"trader": "alice", "client_order_id": "a-1", "symbol": "BTC-USD", "side": 1, "qty": "0.5000", "price": "30000.00"}
    return pb.Command(place=pb.PlaceOrder(**{**base, **fields}))


def cancel(**fields: Any) -> pb.Command:
    return pb.Command(cancel=pb.CancelOrder(**{"trader": "alice", "order_id": 7, **fields}))


def replace(**fields: Any) -> pb.Command:
    return pb.Command(replace=pb.ReplaceOrder(**{"trader": "alice", "order_id": 7, "symbol": "BTC-USD", "new_price": "30001.00", **fields}))


def add(**fields: Any) -> pb.Command:
    base = {"symbol": "ETH-USD", "tick_size": "0.01", "lot_size": "0.001"}
    return pb.Command(add_instrument=pb.AddInstrument(instrument=pb.Instrument(**{**base, **fields})))


PROTO_CASES: list[tuple[pb.Command, RejectReason]] = [
    (place(trader=""), M),
    (place(trader=LONG), M),
    (place(client_order_id=LONG), M),
    (place(symbol=""), M),
    (place(symbol="NOPE"), SYMBOL),
    (place(symbol=LONG), M),
    (place(side=0), M),
    (place(side=3), M),
    (place(side=-1), M),
    (place(order_type=9), M),
    (place(tif=4), M),
    (place(stp=5), M),
    (place(qty=""), M),
    *[(place(qty=bad), QTY) for bad in BAD_QTYS if bad],
    *[(place(price=bad), PRICE) for bad in BAD_PRICES if bad],
    (place(order_type=4, stop_price="29999.999"), PRICE),
    (cancel(order_id=0), M),
    (cancel(order_id=2**63), M),
    (cancel(trader=""), M),
    (cancel(client_order_id=LONG), M),
    (replace(new_price=""), M),
    (replace(new_price="abc"), PRICE),
    (replace(new_qty="0.00001"), QTY),
    (replace(symbol=""), M),
    (replace(symbol="NOPE"), SYMBOL),
    (replace(order_id=0), M),
    (pb.Command(mass_cancel=pb.MassCancel()), M),
    (pb.Command(mass_cancel=pb.MassCancel(trader="alice", symbol=LONG)), M),
    (pb.Command(add_instrument=pb.AddInstrument()), INSTRUMENT),
    (add(symbol=""), INSTRUMENT),
    (add(tick_size="abc"), INSTRUMENT),
    (add(tick_size=""), INSTRUMENT),
    (add(lot_size="-1"), INSTRUMENT),
    (add(min_qty="0.0001"), INSTRUMENT),
    (add(max_qty="1e29"), INSTRUMENT),
    (add(reference_price="1e40"), INSTRUMENT),
    (pb.Command(), M),
]


def test_the_valid_proto_bases_decode() -> None:
    for base in (place(), cancel(), replace(), add(), pb.Command(mass_cancel=pb.MassCancel(trader="alice"))):
        proto_codec.decode_command(base, LOOKUP)
        proto_codec.decode_command(base.SerializeToString(), LOOKUP)


@pytest.mark.parametrize(("command", "reason"), PROTO_CASES, ids=lambda v: str(v).replace("\n", " ")[:40])
def test_proto_field_wrong_in_turn(command: pb.Command, reason: RejectReason) -> None:
    assert reason_of(proto_codec.decode_command, command, LOOKUP) is reason
    assert reason_of(proto_codec.decode_command, command.SerializeToString(), LOOKUP) is reason


@pytest.mark.parametrize("data", [b"\xff\xff", b"\x0a\x05abc", b"\x0a\x02\x0a\xff", b"\x0a\x03\x0a\x01\xff", pb.Event(), "text", 5])
def test_proto_input_that_is_not_a_command(data: Any) -> None:
    assert reason_of(proto_codec.decode_command, data, LOOKUP) is M


def test_proto_a_batch_is_all_or_nothing() -> None:
    batch = pb.CommandBatch(commands=[place(), place(price="1.001")])
    assert reason_of(proto_codec.decode_commands, batch, LOOKUP) is PRICE
    assert reason_of(proto_codec.decode_commands, b"\x0a\x01", LOOKUP) is M


def test_proto_events_need_a_kind_a_known_symbol_and_exact_decimals() -> None:
    delta = pb.BookDelta(symbol="BTC-USD", side=pb.SIDE_BUY, price="30000.00", qty="1.0000", order_count=1)
    proto_codec.decode_event(pb.Event(seq=1, book_delta=delta), LOOKUP)
    assert reason_of(proto_codec.decode_event, pb.Event(seq=1), LOOKUP) is M
    bad_side = pb.BookDelta(symbol="BTC-USD", price="30000.00")
    bad_side.side = 9  # type: ignore[assignment]  # an open enum keeps numbers it does not know
    assert reason_of(proto_codec.decode_event, pb.Event(seq=1, book_delta=bad_side), LOOKUP) is M
    unknown = pb.BookDelta(symbol="NOPE", side=pb.SIDE_BUY, price="1")
    assert reason_of(proto_codec.decode_event, pb.Event(seq=1, book_delta=unknown), LOOKUP) is SYMBOL
    inexact = pb.BookDelta(symbol="BTC-USD", side=pb.SIDE_BUY, price="1.001")
    assert reason_of(proto_codec.decode_event, pb.Event(seq=1, book_delta=inexact), LOOKUP) is PRICE
    assert reason_of(proto_codec.decode_event, pb.Event(seq=1, instrument_added=pb.InstrumentAdded()), LOOKUP) is M
    assert reason_of(proto_codec.decode_market_data, pb.MarketDataMessage(), LOOKUP) is M
    assert reason_of(proto_codec.decode_market_data, pb.MarketDataMessage(update=pb.MarketUpdate(md_seq=1)), LOOKUP) is M


def test_encoding_needs_the_instrument_of_a_symbol_with_prices() -> None:
    from engine import BookDelta, OrderRejected, Side

    assert reason_of(proto_codec.encode_event, BookDelta(1, "NOPE", Side.BUY, 1, 1, 1), LOOKUP) is SYMBOL
    rejected = OrderRejected(1, "alice", "", "NOPE", RejectReason.UNKNOWN_SYMBOL, "unknown symbol 'NOPE'")
    assert proto_codec.decode_event(proto_codec.encode_event(rejected, LOOKUP), LOOKUP) == rejected


def _replies_or_their_error(data: bytes) -> object:
    """A ReplyBatch that carries an Error raises that error (Overloaded, ...) by design: not a decoding failure."""
    try:
        return proto_codec.decode_replies(data, LOOKUP)
    except MalformedMessage:
        raise
    except ExchangeError as exc:
        assert pb.ReplyBatch.FromString(data).HasField("error")
        return exc


DECODERS = [
    lambda b: proto_codec.decode_command(b, LOOKUP),
    lambda b: proto_codec.decode_commands(b, LOOKUP, trader="alice"),
    lambda b: proto_codec.decode_event(b, LOOKUP),
    _replies_or_their_error,
    lambda b: proto_codec.decode_market_data(b, LOOKUP),
    lambda b: proto_codec.decode_order_status(b, LOOKUP),
    lambda b: proto_codec.decode_book(b, LOOKUP),
    proto_codec.decode_instruments,
    proto_codec.decode_stats,
]
VALID = [
    place().SerializeToString(),
    replace(new_qty="1.0000").SerializeToString(),
    add(min_qty="0.001", reference_price="10.00").SerializeToString(),
    pb.CommandBatch(commands=[place(), cancel()], batch_id=9).SerializeToString(),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@FUZZ
@given(st.one_of(st.binary(max_size=80), mutated()))
def test_proto_decoding_raises_nothing_but_malformed_message(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except MalformedMessage as exc:
            assert isinstance(exc.reason, RejectReason)


proto_text = st.one_of(st.text(max_size=70), st.sampled_from(["", "BTC-USD", "30000.00", "0.5000", *BAD_PRICES]))
enum_numbers = st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(0, 5))
proto_places = st.builds(
    pb.PlaceOrder,
    trader=proto_text,
    client_order_id=proto_text,
    symbol=proto_text,
    side=enum_numbers,
    qty=proto_text,
    price=proto_text,
    order_type=enum_numbers,
    tif=enum_numbers,
    post_only=st.booleans(),
    stop_price=proto_text,
    stp=enum_numbers,
)
proto_replaces = st.builds(
    pb.ReplaceOrder,
    trader=proto_text,
    order_id=st.integers(0, 2**64 - 1),
    client_order_id=proto_text,
    symbol=proto_text,
    new_price=proto_text,
    new_qty=proto_text,
)
proto_instruments = st.builds(
    lambda i: pb.AddInstrument(instrument=i),
    st.builds(
        pb.Instrument,
        symbol=proto_text,
        tick_size=proto_text,
        lot_size=proto_text,
        min_qty=proto_text,
        max_qty=proto_text,
        price_band_bps=st.integers(0, 2**64 - 1),
        reference_price=proto_text,
    ),
)


@FUZZ
@given(st.one_of(proto_places, proto_replaces, proto_instruments))
def test_proto_fields_with_arbitrary_values_raise_nothing_but_malformed_message(message: Any) -> None:
    try:
        proto_codec.decode_command(message, LOOKUP)
    except MalformedMessage as exc:
        assert isinstance(exc.reason, RejectReason)
