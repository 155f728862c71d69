"""Market-data messages: what a subscriber receives (plain values, no I/O).

Produced by the gateway's ``MarketDataHub`` and encoded by the codecs; they
live here so the codec does not depend on the asyncio side of the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import BookDelta, BookDepth, TradeExecuted


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    symbol: str
    md_seq: int
    depth: BookDepth  # depth.seq is the engine sequence number it reflects


@dataclass(frozen=True, slots=True)
class MarketUpdate:
    """One sequenced change. The hub creates it once and hands the same object to every subscriber, so each
    wire encoding is made once and shared (``encoded``: ``transports.codec.market_bytes``)."""

    symbol: str
    md_seq: int
    event: BookDelta | TradeExecuted
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Gap:
    symbol: str
    last_md_seq: int  # the last update delivered before the gap
    dropped: int


MarketData = BookSnapshot | MarketUpdate | Gap
