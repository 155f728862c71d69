"""Market-data messages: what a subscriber receives (plain values, no I/O).

Produced by the gateway's ``MarketDataHub`` and encoded by the codecs; they
live here so the codec does not depend on the asyncio side of the core.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import BookDelta, BookDepth, TradeExecuted


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    symbol: str
    md_seq: int
    depth: BookDepth  # depth.seq is the engine sequence number it reflects


@dataclass(frozen=True, slots=True)
class MarketUpdate:
    symbol: str
    md_seq: int
    event: BookDelta | TradeExecuted


@dataclass(frozen=True, slots=True)
class Gap:
    symbol: str
    last_md_seq: int  # the last update delivered before the gap
    dropped: int


MarketData = BookSnapshot | MarketUpdate | Gap
