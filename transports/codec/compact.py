"""Compact command records for the journal: integers in ticks and lots, no instrument needed.

A record is a JSON array whose first element names the command. It is an
internal format (journal files, replication), never a client-facing wire:
clients speak decimal strings through ``json_codec`` or ``proto_codec``.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine import (
    AddInstrument,
    CancelOrder,
    Command,
    Instrument,
    MalformedMessage,
    MassCancel,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)


def encode_compact(command: Command) -> bytes:
    if isinstance(command, PlaceOrder):
        row: list[Any] = [
            "P",
            command.trader,
            command.client_order_id,
            command.symbol,
            int(command.side),
            command.qty,
            command.price,
            int(command.order_type),
            int(command.tif),
            command.post_only,
            command.stop_price,
            int(command.stp),
        ]
    elif isinstance(command, CancelOrder):
        row = ["C", command.trader, command.order_id, command.client_order_id]
    elif isinstance(command, ReplaceOrder):
        row = ["R", command.trader, command.order_id, command.new_price, command.new_qty, command.symbol, command.client_order_id]
    elif isinstance(command, MassCancel):
        row = ["M", command.trader, command.symbol]
    else:
        row = ["I", command.instrument.to_dict()]
    return orjson.dumps(row)


def decode_compact(data: bytes) -> Command:
    try:
        row = orjson.loads(data)
        kind = row[0]
        if kind == "P":
            return PlaceOrder(
                row[1], row[2], row[3], Side(row[4]), row[5], row[6], OrderType(row[7]), TimeInForce(row[8]), row[9], row[10],
                SelfTradePrevention(row[11]),
            )  # fmt: skip
        if kind == "C":
            return CancelOrder(row[1], row[2], row[3])
        if kind == "R":
            return ReplaceOrder(row[1], row[2], row[3], row[4], row[5], row[6])
        if kind == "M":
            return MassCancel(row[1], row[2])
        if kind == "I":
            return AddInstrument(Instrument.from_dict(row[1]))
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"not a compact command record: {exc!r}") from None
    raise MalformedMessage(f"unknown compact record kind {kind!r}")
