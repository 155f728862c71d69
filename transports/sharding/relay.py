"""A shard's market data to its fronts: one binary frame per applied group, integers only.

Why not the public ``MarketDataMessage``: it carries prices as decimal
strings for people and foreign tools, one message per update. Between our own
processes a group's trades and book deltas travel as fixed-size integer
records (ticks, lots, sequence numbers), packed and unpacked by ``struct`` in
C, so neither the shard nor the front builds a message per update.

Frame layout (little-endian)::

    head     applied_mono_ns u64, symbols u16, trades u32, deltas u32
    symbols  md_seq_before u64, name length u8, name UTF-8     (x symbols)
    trades   symbol u16, seq u64, trade_id u64, price i64, qty i64, aggressor u8   (x trades)
    deltas   symbol u16, seq u64, side u8, price i64, qty i64, order_count u32   (x deltas)

Invariants: each symbol's ``md_seq_before`` is its market-data sequence
before this group; the group's updates follow it in the order the shard's hub
numbers them (its trades first, then its deltas), so a front numbers them the
same and a front whose ``md_seq`` differs knows it missed a group.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Final

from engine import BookDelta, TradeExecuted

HEAD: Final = struct.Struct("<QHII")
SYMBOL: Final = struct.Struct("<QB")
TRADE: Final = struct.Struct("<HQQqqB")
DELTA: Final = struct.Struct("<HQBqqI")

TradeRecord = tuple[int, int, int, int, int, int]  # symbol index, seq, trade id, price, qty, aggressor side
DeltaRecord = tuple[int, int, int, int, int, int]  # symbol index, seq, side, price, qty, order count


def encode_group(trades: list[TradeExecuted], deltas: Iterable[BookDelta], md_seq: Mapping[str, int], applied_mono_ns: int) -> bytes:
    """The frame of one group, ``md_seq`` being the shard hub's sequences before it is published."""
    index: dict[str, int] = {}
    body = bytearray()
    for trade in trades:
        symbol = index.setdefault(trade.symbol, len(index))
        body += TRADE.pack(symbol, trade.seq, trade.trade_id, trade.price, trade.qty, int(trade.aggressor_side))
    count = 0
    for delta in deltas:
        symbol = index.setdefault(delta.symbol, len(index))
        body += DELTA.pack(symbol, delta.seq, int(delta.side), delta.price, delta.qty, delta.order_count)
        count += 1
    head = bytearray(HEAD.pack(applied_mono_ns, len(index), len(trades), count))
    for name in index:
        encoded = name.encode()
        head += SYMBOL.pack(md_seq.get(name, 0), len(encoded)) + encoded
    return bytes(head + body)


def decode_group(frame: bytes) -> tuple[int, list[tuple[str, int]], list[TradeRecord], list[DeltaRecord]]:
    """(applied_mono_ns, [(symbol, md_seq before)], trade records, delta records); ``ValueError`` if malformed."""
    try:
        applied, count, trades, deltas = HEAD.unpack_from(frame)
        offset = HEAD.size
        symbols = []
        for _ in range(count):
            before, length = SYMBOL.unpack_from(frame, offset)
            offset += SYMBOL.size
            symbols.append((frame[offset : offset + length].decode(), before))
            offset += length
        end = offset + trades * TRADE.size
        trade_records = list(TRADE.iter_unpack(frame[offset:end]))
        delta_records = list(DELTA.iter_unpack(frame[end : end + deltas * DELTA.size]))
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"not a market-data group: {exc}") from None
    if len(delta_records) != deltas or end + deltas * DELTA.size != len(frame):
        raise ValueError("a market-data group of the wrong length")
    return applied, symbols, trade_records, delta_records
