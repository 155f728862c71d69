"""Everything the engine says or hears survives both wires unchanged: decode(encode(x)) == x.

Random instruments (tick and lot sizes from 1e-10 to 1e3) and values on their
ticks; JSON goes through bytes (``dumps``/``loads``), protobuf through
``SerializeToString``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import AddInstrument, Command, Event, Instrument, InstrumentAdded, MalformedMessage, PlaceOrder, RejectReason, Side
from tests.codec.strategies import FAST, SMALL, commands, depths, events, instruments, json_safe, market_events, names, order_views, symbols
from transports.codec import json_codec, proto_codec
from transports.codec.compact import decode_compact, encode_compact
from transports.codec.json_codec import InstrumentLookup
from transports.core.gateway import Gateway
from transports.core.marketdata import BookSnapshot, Gap, MarketUpdate


def lookup(*listed: Instrument) -> InstrumentLookup:
    return {i.symbol: i for i in listed}.get


@st.composite
def instrument_and(draw: st.DrawFn, make: Any) -> tuple[Instrument, Any]:
    inst = draw(instruments())
    return inst, draw(make(inst))


# ---------------------------------------------------------------- commands
@FAST
@given(instrument_and(commands))
def test_command_round_trip_json_and_proto(case: tuple[Instrument, Command]) -> None:
    inst, command = case
    if not isinstance(command, AddInstrument) or json_safe(command.instrument):
        as_json = json_codec.dumps(json_codec.encode_command(command, lookup(inst)))
        assert json_codec.decode_command(json_codec.loads(as_json), lookup(inst)) == command
    as_proto = proto_codec.encode_command(command, lookup(inst)).SerializeToString()
    assert proto_codec.decode_command(as_proto, lookup(inst)) == command


@SMALL
@given(instruments(), st.data())
def test_batches_round_trip_in_order(inst: Instrument, data: st.DataObject) -> None:
    batch = data.draw(st.lists(commands(inst), max_size=5))
    wire = proto_codec.encode_commands(batch, lookup(inst), batch_id=42).SerializeToString()
    assert proto_codec.decode_commands(wire, lookup(inst)) == batch
    assert proto_codec.pb.CommandBatch.FromString(wire).batch_id == 42
    if all(json_safe(c.instrument) for c in batch if isinstance(c, AddInstrument)):
        as_json = json_codec.loads(json_codec.dumps([json_codec.encode_command(c, lookup(inst)) for c in batch]))
        assert json_codec.decode_commands(as_json, lookup(inst)) == batch


@SMALL
@given(instrument_and(commands), names)
def test_the_connection_trader_overrides_the_field(case: tuple[Instrument, Command], trader: str) -> None:
    inst, command = case
    if isinstance(command, AddInstrument):
        return  # an operator command has no trader
    from_json = json_codec.decode_command(json_codec.encode_command(command, lookup(inst)), lookup(inst), trader=trader)
    from_proto = proto_codec.decode_command(proto_codec.encode_command(command, lookup(inst)), lookup(inst), trader=trader)
    assert from_json == from_proto
    assert not isinstance(from_proto, AddInstrument)
    assert from_proto.trader == trader


@pytest.mark.parametrize("tick", ["10", "0.00000001"])
def test_instruments_with_large_or_tiny_sizes_survive_json_and_the_journal(tick: str) -> None:
    # Instrument.to_dict once wrote str(Decimal) ("1E+1" for a tick of 10), which
    # Instrument.create refuses: such instruments were lost on journal recovery.
    added = AddInstrument(Instrument.create("X", tick, "1"))
    assert proto_codec.decode_command(proto_codec.encode_command(added, lookup()), lookup()) == added  # protobuf is fine
    assert decode_compact(encode_compact(added)) == added
    assert json_codec.decode_command(json_codec.encode_command(added, lookup()), lookup()) == added


def test_a_unary_rpc_request_decodes_without_the_command_envelope() -> None:
    inst = Instrument.create("BTC-USD", "0.01", "0.0001")
    order = PlaceOrder("alice", "a-1", "BTC-USD", Side.BUY, 1500, 3001234)
    place = proto_codec.encode_command(order, lookup(inst)).place
    assert place.price == "30012.34"
    assert place.qty == "0.1500"
    assert proto_codec.decode_command(place, lookup(inst)) == order


# ------------------------------------------------------------------ events
@FAST
@given(instrument_and(events))
def test_event_round_trip_json_and_proto(case: tuple[Instrument, Event]) -> None:
    inst, event = case
    if not isinstance(event, InstrumentAdded) or json_safe(event.instrument):
        as_json = json_codec.dumps(json_codec.encode_event(event, lookup(inst)))
        assert json_codec.decode_event(json_codec.loads(as_json), lookup(inst)) == event
    as_proto = proto_codec.encode_event(event, lookup(inst)).SerializeToString()
    assert proto_codec.decode_event(as_proto, lookup(inst)) == event


@SMALL
@given(instruments(), st.data())
def test_reply_batches_round_trip(inst: Instrument, data: st.DataObject) -> None:
    replies = data.draw(st.lists(st.lists(events(inst), max_size=3), max_size=3))
    wire = proto_codec.encode_replies(replies, lookup(inst), batch_id=7).SerializeToString()
    assert proto_codec.decode_replies(wire, lookup(inst)) == replies


def test_a_refused_batch_decodes_to_its_error() -> None:
    from engine import Overloaded

    wire = proto_codec.encode_refused(Overloaded("queue full"), batch_id=3).SerializeToString()
    try:
        proto_codec.decode_replies(wire, lookup())
    except Overloaded as exc:
        assert exc.reason is RejectReason.OVERLOADED
        assert exc.message == "queue full"
    else:
        raise AssertionError("a refused batch must raise")


@FAST
@given(st.sampled_from(RejectReason), st.text(max_size=40))
def test_error_round_trip_keeps_reason_and_message(reason: RejectReason, message: str) -> None:
    error = proto_codec.decode_error(proto_codec.error_reply(MalformedMessage(message, reason)).SerializeToString())
    assert (error.reason, error.message) == (reason, message)
    assert json_codec.error_reply(error) == {"type": "error", "reason": reason.name, "code": int(reason), "message": message}


# ------------------------------------------- market data, views, instruments
@FAST
@given(instruments(), st.data())
def test_market_data_round_trip(inst: Instrument, data: st.DataObject) -> None:
    item = data.draw(
        st.one_of(
            st.builds(BookSnapshot, st.just(inst.symbol), st.integers(0, 2**63), depths(inst)),
            st.builds(lambda md_seq, e: MarketUpdate(e.symbol, md_seq, e), st.integers(1, 2**63), market_events(inst)),
            st.builds(Gap, symbols, st.integers(0, 2**63), st.integers(0, 2**32)),
        )
    )
    wire = proto_codec.encode_market_data(item, lookup(inst)).SerializeToString()
    assert proto_codec.decode_market_data(wire, lookup(inst)) == item


@FAST
@given(instrument_and(order_views))
def test_order_views_round_trip(case: tuple[Instrument, Any]) -> None:
    inst, view = case
    wire = proto_codec.encode_order_status(view, lookup(inst)).SerializeToString()
    assert proto_codec.decode_order_status(wire, lookup(inst)) == view
    assert proto_codec.decode_order_status(proto_codec.encode_order_status(None, lookup(inst)), lookup(inst)) is None


@FAST
@given(instrument_and(depths))
def test_book_depth_round_trip(case: tuple[Instrument, Any]) -> None:
    inst, depth = case
    assert proto_codec.decode_book(proto_codec.encode_book(depth, lookup(inst)).SerializeToString(), lookup(inst)) == depth


@FAST
@given(st.lists(instruments(), max_size=4))
def test_instrument_lists_round_trip(listed: list[Instrument]) -> None:
    assert proto_codec.decode_instruments(proto_codec.encode_instruments(listed).SerializeToString()) == listed


# ------------------------------------------------------------------- stats
counts = st.integers(0, 2**63)
stats_dicts = st.fixed_dictionaries(
    {
        **{
            name: counts
            for name in (
                "orders", "accepted", "rejected", "trades", "overloaded", "queue_depth", "batches", "fsyncs", "engine_seq",
                "recovered_commands", "market_data_published", "market_data_subscribers", "market_data_gaps", "repeated_requests",
                "process_cpu_us", "peak_rss_bytes", "lean_bytes_in", "lean_bytes_out", "lean_commands",
            )
        },
        **{
            name: st.dictionaries(st.text(min_size=1, max_size=20), counts, max_size=4)
            for name in ("commands", "rejected_by_reason", "cancelled_by_reason", "by_transport", "refused_by_reason", "limits_exceeded")
        },
        **{name: st.fixed_dictionaries({k: counts for k in ("p50", "p90", "p99", "p999", "max")}) for name in ("latency_us", "fsync_us")},
    }
)  # fmt: skip


@FAST
@given(stats_dicts)
def test_stats_round_trip(stats: dict[str, Any]) -> None:
    assert proto_codec.decode_stats(proto_codec.encode_stats(stats).SerializeToString()) == stats


def test_stats_carry_every_counter_of_the_gateway() -> None:
    stats = Gateway().stats_dict()
    assert proto_codec.decode_stats(proto_codec.encode_stats(stats)) == stats
    assert set(proto_codec.pb.Stats.DESCRIPTOR.fields_by_name) == set(stats)
