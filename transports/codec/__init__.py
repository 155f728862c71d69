"""The one codec: commands and events to and from the wire, as pure functions.

Every transport encodes and decodes through here; none defines its own order
format. Decoding failures raise ``engine.MalformedMessage`` (or
``InvalidDecimal`` for an inexact price/quantity); both carry a stable
``RejectReason`` that every server turns into a clear reply.

The names below are the JSON codec's; the protobuf codec mirrors them in its
own namespace (``from transports.codec import proto_codec``), and both convert
decimal strings through ``decimals.converter``.
"""

from transports.codec import proto_codec
from transports.codec.json_codec import (
    InstrumentLookup,
    decode_command,
    decode_commands,
    decode_event,
    dumps,
    encode_command,
    encode_event,
    encode_events,
    error_reply,
    loads,
)

__all__ = [
    "InstrumentLookup",
    "decode_command",
    "decode_commands",
    "decode_event",
    "dumps",
    "encode_command",
    "encode_event",
    "encode_events",
    "error_reply",
    "loads",
    "proto_codec",
]
