"""Counting a batch's elements from its bytes agrees with the parsers, and stops at the limit."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import MalformedMessage
from transports.codec.proto_codec import pb
from transports.codec.wire_count import count_field, field_exceeds, json_separators, varint_field

COMMANDS = pb.CommandBatch.DESCRIPTOR.fields_by_name["commands"].number
BATCH_ID = pb.CommandBatch.DESCRIPTOR.fields_by_name["batch_id"].number

texts = st.text(max_size=12)
commands = st.one_of(
    st.builds(lambda s, q, c: pb.Command(place=pb.PlaceOrder(symbol=s, qty=q, client_order_id=c)), texts, texts, texts),
    st.builds(lambda i, c: pb.Command(cancel=pb.CancelOrder(order_id=i, client_order_id=c)), st.integers(0, 2**64 - 1), texts),
    st.just(pb.Command()),
)


@given(st.lists(commands, max_size=40), st.integers(0, 2**64 - 1))
def test_the_count_and_the_batch_id_read_from_the_bytes_are_the_parsers(items: list[pb.Command], batch_id: int) -> None:
    data = pb.CommandBatch(commands=items, batch_id=batch_id).SerializeToString()
    assert count_field(data, COMMANDS, 1000) == len(pb.CommandBatch.FromString(data).commands) == len(items)
    assert varint_field(data, BATCH_ID, 100) == batch_id


def test_the_count_stops_at_the_first_command_over_the_limit() -> None:
    data = b"\x0a\x00" * 3_000_000  # three million empty commands in 6 MB
    assert count_field(data, COMMANDS, 10_000) == 10_001
    assert field_exceeds(data, COMMANDS, 10_000)
    assert not field_exceeds(data[: 2 * 10_000], COMMANDS, 10_000)


def test_a_refused_batch_id_is_read_past_a_few_commands_but_never_through_a_flood() -> None:
    assert varint_field(b"\x0a\x00" * 10_001 + b"\x10\x07", BATCH_ID, 20_000) == 7
    assert varint_field(b"\x0a\x00" * 3_000_000 + b"\x10\x07", BATCH_ID, 20_000) == 0  # gives up: nothing more read


@pytest.mark.parametrize("data", [b"\x0a\x05abc", b"\x0a", b"\x0b\x00", b"\xff" * 11])
def test_bytes_that_are_not_a_message_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        count_field(data, COMMANDS, 10)


keys = st.text(alphabet=st.sampled_from('k,[{"\\'), max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet=st.sampled_from('ab,[{}]"\\:'), max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_json_separators_bound_the_values_parsing_builds(value: object) -> None:
    data = orjson.dumps(value)
    # Outside strings, every value but the first of a container follows a comma, and every first one a [ or {.
    assert json_separators(data, 10**9) + 1 >= _values(orjson.loads(data))
    assert json_separators(data, 1) <= 2


def _values(value: object) -> int:
    if isinstance(value, list):
        return 1 + sum(_values(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(_values(v) for v in value.values())
    return 1


def test_commas_inside_strings_do_not_count_and_a_flood_of_values_stops_at_the_limit() -> None:
    commands = orjson.dumps([{"type": "place", "client_order_id": "a,b,[c],{d}" * 5}] * 100)
    assert json_separators(commands, 300) == 300  # per command: its brace, its comma, the comma after it (but one); the [
    flood = b"[" + b"{}," * 2_000_000 + b"{}]"
    assert json_separators(flood, 130_001) == 130_002
