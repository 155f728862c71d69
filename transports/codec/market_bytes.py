"""Market data encoded once: the same protobuf bytes for every subscriber of every transport.

``MarketDataHub`` hands one ``MarketUpdate`` object to all subscribers; the
first publisher or stream that needs it in a wire format encodes it and keeps
the bytes on the update (``MarketUpdate.encoded``), the others reuse them.
A ``Gap`` or a ``BookSnapshot`` is one subscriber's own, so it is encoded
each time. (The WebSocket's JSON text is cached the same way, under its own
key, by ``transports.http.market_data``.)
"""

from __future__ import annotations

from collections.abc import Iterable

from transports.codec.json_codec import InstrumentLookup
from transports.codec.market_messages import MarketData, MarketUpdate
from transports.codec.proto_codec import encode_market_data

PROTOBUF = "pb"
_ITEMS_TAG = b"\x0a"  # MarketDataBatch.items: field 1, length-delimited


def protobuf_bytes(item: MarketData, instruments: InstrumentLookup) -> bytes:
    """The serialized ``MarketDataMessage`` of ``item``, encoded once per update."""
    if isinstance(item, MarketUpdate):
        cached = item.encoded.get(PROTOBUF)
        if cached is None:
            cached = item.encoded[PROTOBUF] = encode_market_data(item, instruments).SerializeToString()
        return cached
    return encode_market_data(item, instruments).SerializeToString()


def protobuf_batch_bytes(items: Iterable[MarketData], instruments: InstrumentLookup) -> bytes:
    """The serialized ``MarketDataBatch`` of ``items``: each item's cached bytes, framed as a repeated field."""
    parts: list[bytes] = []
    for item in items:
        data = protobuf_bytes(item, instruments)
        parts += (_ITEMS_TAG, _varint(len(data)), data)
    return b"".join(parts)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
