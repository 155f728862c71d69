"""The deterministic replica: the input stream applied, in stream order, to a pure ``Engine``.

``apply_input`` is the whole business function of the durable path: one input
message (a ``CommandBatch`` with its ``Dex-Trader`` header) in, one result
(a ``ReplyBatch``) out. It depends only on the engine's state and the input,
so every node that applies the same stream prefix holds the same state
(``state_hash``) and computes the same result for every input; a fresh
replay of the stream (``replay``) reproduces both.

Invariants: every input gets exactly one result, even input that does not
decode or is over a limit of docs/limits.md, checked from its bytes before
it is parsed (a refused ``ReplyBatch`` with the reason); ``add_instrument`` is
refused on this path (the instruments are fixed at start by ``--symbols``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from google.protobuf.message import DecodeError

from engine import AddInstrument, Engine, Event, ExchangeError, Instrument, MalformedMessage, PlaceOrder, RejectReason, TradeExecuted
from transports.codec.proto_codec import decode_commands, encode_refused, encode_replies, pb
from transports.codec.wire_count import varint_field
from transports.core.limits import MAX_TRADER_LENGTH, LimitExceeded, Limits
from transports.core.requests import check_proto_batch
from transports.nats.settings import TRADER_HEADER

_LIMITS = Limits()  # the same limits as every wire (docs/limits.md)
_BATCH_ID = pb.CommandBatch.DESCRIPTOR.fields_by_name["batch_id"].number


class OrderReplica:
    """One engine fed by the input stream; counts what ``Server Stats`` shows."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.engine = Engine()
        for instrument in instruments:
            self.engine.handle(AddInstrument(instrument))
        self.applied_seq = 0  # the last input stream sequence applied
        self.orders = 0  # place commands applied
        self.trades = 0  # engine trades (TradeExecuted events), each counted once
        self.accepted = 0

    def state_hash(self) -> str:
        return self.engine.state_hash()

    def apply(self, seq: int, data: bytes, headers: Mapping[str, str] | None) -> pb.ReplyBatch:
        """Apply input ``seq`` (must be after ``applied_seq``); its result."""
        if seq <= self.applied_seq:
            raise ValueError(f"input {seq} is not after {self.applied_seq}: the stream is applied in order, once")
        self.applied_seq = seq
        batch_id = 0
        try:
            try:
                check_proto_batch(data, _LIMITS)  # bytes and command count, before anything is built
            except LimitExceeded as exc:
                return encode_refused(exc, varint_field(data, _BATCH_ID, 2 * _LIMITS.max_batch))
            batch = pb.CommandBatch.FromString(data)
            batch_id = batch.batch_id
            trader = ((headers or {}).get(TRADER_HEADER) or "").strip()
            if not trader or len(trader) > MAX_TRADER_LENGTH:
                raise ExchangeError(f"an order message needs a {TRADER_HEADER} header", RejectReason.UNAUTHORIZED)
            if not batch.commands:
                raise MalformedMessage("an empty batch")
            commands = decode_commands(batch, self.engine.instrument, trader)
            if any(type(c) is AddInstrument for c in commands):
                raise ExchangeError("add_instrument is not accepted on the durable path", RejectReason.UNAUTHORIZED)
        except DecodeError:
            return encode_refused(MalformedMessage("an order message must be a serialized CommandBatch"), batch_id)
        except ExchangeError as exc:
            return encode_refused(exc, batch_id)
        handle = self.engine.handle
        replies: list[list[Event]] = []
        for command in commands:
            events = handle(command)
            if type(command) is PlaceOrder:
                self.orders += 1
            for event in events:
                if type(event) is TradeExecuted:
                    self.trades += 1
            replies.append(events)
        return encode_replies(replies, self.engine.instrument, batch_id)


def replay(instruments: Iterable[Instrument], inputs: Iterable[tuple[int, bytes, Mapping[str, str] | None]]) -> OrderReplica:
    """A fresh replica fed ``inputs`` (seq, data, headers) in order: what every node must equal."""
    replica = OrderReplica(instruments)
    for seq, data, headers in inputs:
        replica.apply(seq, data, headers)
    return replica
