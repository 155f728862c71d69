"""Strict values: every value a documented field cannot take is refused, with the documented reason, in every form.

The documented fields and their values are read from docs/json-format.md's
command table, so the decoder and the page cannot drift apart. The same rules
hold for the JSON form (the replayer, HTTP, the WebSocket), the protobuf form
(gRPC and every binary wire) and the lean columns, where proto3 makes 0 mean
"absent" (docs/wire-schema.md): there a given value is one not at its default.
``tests/golden/strict.commands.jsonl`` replays each refused case with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import Instrument, MalformedMessage, OrderType, PlaceOrder, RejectReason, TimeInForce
from tests.codec.strategies import FAST
from transports.codec import json_codec, lean, proto_codec
from transports.codec.proto_codec import pb

DOCS = Path(__file__).resolve().parents[2] / "docs" / "json-format.md"
BTC = Instrument.create("BTC-USD", "0.01", "0.001")
LOOKUP = {"BTC-USD": BTC}.get
M = RejectReason.MALFORMED_MESSAGE
PRICE = RejectReason.INVALID_PRICE
QTY = RejectReason.INVALID_QUANTITY
ORDER = RejectReason.INVALID_ORDER


def documented_commands() -> dict[str, dict[str, list[str]]]:
    """``{type: {field: [documented values, if the page lists them]}}`` from the command table."""
    out: dict[str, dict[str, list[str]]] = {}
    text = DOCS.read_text()
    section = text[text.index("## Commands (input)") : text.index("## Events (output)")]
    for line in section.splitlines():
        row = re.match(r"\| `(\w+)`( \(the default `type`\))? \| (.*) \|$", line)
        if row is None or row.group(1) in ("type",):
            continue
        fields: dict[str, list[str]] = {}
        for name, note in re.findall(r"`(\w+)`\**\s*(\([^)]*\))?", row.group(3)):
            values = re.findall(r"`(\w+)`", note) if "`" in note else []
            fields.setdefault(name, values)
        out[row.group(1)] = {"type": [], **fields}
    return out


COMMANDS = documented_commands()
PLACE = {"type": "place", "trader": "alice", "symbol": "BTC-USD", "side": "buy", "price": "30000.00", "qty": "0.500"}
BASES: dict[str, dict[str, Any]] = {
    "place": PLACE,
    "cancel": {"type": "cancel", "trader": "alice", "order_id": 7},
    "replace": {"type": "replace", "trader": "alice", "order_id": 7, "symbol": "BTC-USD", "qty": "0.250"},
    "mass_cancel": {"type": "mass_cancel", "trader": "alice", "symbol": "BTC-USD"},
    "add_instrument": {"type": "add_instrument", "symbol": "ETH-USD", "tick_size": "0.01", "lot_size": "0.001"},
}


def json_reason(data: Any) -> RejectReason | None:
    try:
        json_codec.decode_command(data, LOOKUP)
    except MalformedMessage as exc:
        return exc.reason
    return None


def proto_reason(command: pb.Command) -> RejectReason | None:
    try:
        proto_codec.decode_command(command.SerializeToString(), LOOKUP)
    except MalformedMessage as exc:
        return exc.reason
    return None


def lean_reason(**columns: Any) -> RejectReason | None:
    fields: dict[str, Any] = {"symbols": ["BTC-USD"], **{k: [v] for k, v in columns.items()}}
    message = pb.OrderBatch(**fields)
    try:
        lean.decode_orders(message, "alice", 100)
    except MalformedMessage as exc:
        return exc.reason
    return None


def test_the_page_documents_every_command_and_its_enums() -> None:
    assert set(COMMANDS) == set(BASES)
    assert COMMANDS["place"]["side"] == ["buy", "sell"]
    assert COMMANDS["place"]["tif"] == ["gtc", "ioc", "fok"]
    for kind, base in BASES.items():
        assert json_reason(base) is None, kind


# ------------------------------------------------------------ field sets
@FAST
@given(st.sampled_from(sorted(BASES)), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=16))
def test_a_command_refuses_every_field_it_does_not_take(kind: str, field: str) -> None:
    data = {**BASES[kind], field: "1"}
    if field in COMMANDS[kind]:
        return
    assert json_reason(data) is M


@pytest.mark.parametrize(("kind", "field"), [("cancel", "symbol"), ("cancel", "price"), ("mass_cancel", "order_id"), ("replace", "side")])
def test_fields_of_other_commands_are_refused(kind: str, field: str) -> None:
    assert json_reason({**BASES[kind], field: BASES["replace"].get(field, "BTC-USD")}) is M


# ----------------------------------------------------------------- enums
ENUM_FIELDS = [(f, v) for f, v in COMMANDS["place"].items() if v]


@FAST
@given(st.sampled_from(ENUM_FIELDS), st.data())
def test_enums_are_case_exact(field_values: tuple[str, list[str]], data: st.DataObject) -> None:
    field, values = field_values
    value = data.draw(st.sampled_from(values))
    for spelling in {value.upper(), value.title(), value.swapcase(), f" {value}", value + "\n"} - {value}:
        assert json_reason({**PLACE, field: spelling}) is M, spelling
    assert json_reason({**PLACE, field: data.draw(st.one_of(st.none(), st.integers(), st.booleans(), st.lists(st.just(value))))}) is M


# ------------------------------------------------------------------- ids
not_an_order_id = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=2**63),
    st.integers(1, 2**63 - 1).map(str),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(1, 9), max_size=2),
)


@FAST
@given(st.sampled_from(["cancel", "replace"]), not_an_order_id)
def test_an_order_id_is_a_positive_json_integer_and_nothing_else(kind: str, value: Any) -> None:
    assert json_reason({**BASES[kind], "order_id": value}) is M


# --------------------------------------------------------- prices and quantities
non_positive = st.one_of(
    st.sampled_from(["0", "0.0", "0.00", "-0", "-0.00", "000"]),
    st.integers(1, 10**9).map(lambda n: f"-{n // 100}.{n % 100:02d}"),
)


@FAST
@given(non_positive, st.sampled_from(["price", "qty"]))
def test_zero_or_a_negative_value_is_refused_wherever_it_is_given(text: str, field: str) -> None:
    reason = PRICE if field == "price" else QTY
    assert json_reason({**PLACE, field: text}) is reason
    assert json_reason({**BASES["replace"], field: text}) is reason
    proto_field = {"price": "new_price", "qty": "new_qty"}[field]
    place: dict[str, Any] = {"trader": "a", "symbol": "BTC-USD", "side": 1, "qty": "0.500", field: text}
    assert proto_reason(pb.Command(place=pb.PlaceOrder(**place))) is reason
    assert proto_reason(pb.Command(replace=pb.ReplaceOrder(trader="a", order_id=7, symbol="BTC-USD", **{proto_field: text}))) is reason


@FAST
@given(non_positive)
def test_a_stop_price_is_positive_too(text: str) -> None:
    assert json_reason({**PLACE, "order_type": "stop_limit", "stop_price": text}) is PRICE


@FAST
@given(st.integers(-(2**63), -1), st.sampled_from(["price", "qty", "stop_price"]), st.sampled_from([lean.PLACE, lean.REPLACE]))
def test_lean_refuses_negative_values(value: int, column: str, kind: int) -> None:
    place = dict(side=1, qty=500, price=3_000_000) if kind == lean.PLACE else dict(order_id=7, qty=100)
    if column == "stop_price":
        place = dict(side=1, qty=500, order_type=4, price=3_000_000)
    assert lean_reason(kind=kind, symbol=1, **{**place, column: value}) is (QTY if column == "qty" else PRICE)


def test_a_lean_replace_changes_something() -> None:
    assert lean_reason(kind=lean.REPLACE, symbol=1, order_id=7) is M
    assert lean_reason(kind=lean.REPLACE, symbol=1, order_id=7, qty=100) is None


# ------------------------------------------- fields the order type does not take
def allowed(order_type: str, tif: str, field: str) -> bool:
    if field == "price":
        return order_type in ("limit", "stop_limit")
    if field == "stop_price":
        return order_type in ("stop_market", "stop_limit")
    return order_type == "limit" and tif == "gtc"  # post_only


TYPES = COMMANDS["place"]["order_type"]
TIFS = COMMANDS["place"]["tif"]


@FAST
@given(
    st.sampled_from(TYPES),
    st.sampled_from(TIFS),
    st.sampled_from(["price", "stop_price", "post_only"]),
    st.sampled_from(["29000.00", "0", "-1.00", "1", True, False]),
)
def test_a_field_the_order_type_does_not_take_is_refused_whatever_its_value(order_type: str, tif: str, field: str, value: Any) -> None:
    data: dict[str, Any] = {**PLACE, "order_type": order_type, "tif": tif}
    data.pop("price")
    if order_type in ("limit", "stop_limit"):
        data["price"] = "30000.00"
    if order_type.startswith("stop"):
        data["stop_price"] = "29900.00"
    if (field == "post_only") != isinstance(value, bool):
        return
    data[field] = value
    if not allowed(order_type, tif, field):
        assert json_reason(data) is ORDER
        if value not in (False, "0"):  # proto3 and lean cannot send a default: it is "absent"
            ot = OrderType[order_type.upper()]
            tf = TimeInForce[tif.upper()]
            fields = {k: v for k, v in data.items() if k in ("price", "stop_price", "post_only")}
            message: dict[str, Any] = {"trader": "a", "symbol": "BTC-USD", "side": 1, "qty": "0.500", "order_type": int(ot), "tif": int(tf)}
            assert proto_reason(pb.Command(place=pb.PlaceOrder(**message, **fields))) is ORDER
            ticks = {k: (3_000_000 if k != "post_only" else v) for k, v in fields.items()}
            assert lean_reason(kind=lean.PLACE, symbol=1, side=1, qty=500, order_type=int(ot), tif=int(tf), **ticks) is ORDER
    elif value in ("0", "-1.00"):
        assert json_reason(data) is PRICE
    else:
        assert json_reason(data) is None


def test_journal_records_are_not_judged_again() -> None:
    """A record holds what the engine received and answered (perhaps a reject): replaying it must answer the same."""
    message = pb.OrderBatch(
        symbols=["BTC-USD"], kind=[lean.PLACE], symbol=[1], side=[1], qty=[500], order_type=[2], price=[100], traders=["a"], trader=[0]
    )
    (command,) = lean.decode_orders(message, None, 100)
    assert isinstance(command, PlaceOrder) and command.price == 100
