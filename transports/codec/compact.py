"""Compact command records for the journal: integers in ticks and lots, no instrument needed.

A record is a JSON array whose first element names the command. It is an
internal format (journal files, replication), never a client-facing wire:
clients speak decimal strings through ``json_codec`` or ``proto_codec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from engine import (
    AddInstrument,
    CancelOrder,
    CancelReason,
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
        if command.request_id:
            row.append(command.request_id)
    elif isinstance(command, ReplaceOrder):
        row = ["R", command.trader, command.order_id, command.new_price, command.new_qty, command.symbol, command.client_order_id]
        if command.request_id:
            row.append(command.request_id)
    elif isinstance(command, MassCancel):
        row = ["M", command.trader, command.symbol]
        if command.reason != CancelReason.MASS_CANCEL or command.request_id:
            row.append(int(command.reason))
        if command.request_id:
            row.append(command.request_id)
    else:
        row = ["I", command.instrument.to_dict()]
    return orjson.dumps(row)


def needs_compact(commands: Sequence[Command]) -> bool:
    """Whether ``commands`` need compact records: a lean ``OrderBatch`` cannot carry an ``add_instrument``, nor
    the reason of a mass cancel the exchange issued itself (cancel on disconnect)."""
    for command in commands:
        kind = type(command)
        if kind is AddInstrument:
            return True
        if kind is MassCancel:
            assert isinstance(command, MassCancel)
            if command.reason != CancelReason.MASS_CANCEL:
                return True
    return False


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
            return CancelOrder(row[1], row[2], row[3], row[4] if len(row) > 4 else 0)
        if kind == "R":
            return ReplaceOrder(row[1], row[2], row[3], row[4], row[5], row[6], row[7] if len(row) > 7 else 0)
        if kind == "M":
            reason = CancelReason(row[3]) if len(row) > 3 else CancelReason.MASS_CANCEL
            return MassCancel(row[1], row[2], reason, row[4] if len(row) > 4 else 0)
        if kind == "I":
            return AddInstrument(Instrument.from_dict(row[1]))
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"not a compact command record: {exc!r}") from None
    raise MalformedMessage(f"unknown compact record kind {kind!r}")
