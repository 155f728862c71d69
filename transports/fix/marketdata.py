"""FIX market data: MarketDataRequest (V) in; snapshots (W), incremental refreshes (X) and rejects (Y) out.

The data is the shared publisher's (``transports.core.marketdata``): a
subscription starts with a ``BookSnapshot`` and continues with sequenced
``MarketUpdate``s. On the FIX wire:

* a snapshot is a W per symbol: bids (269=0) and offers (269=1) with price
  (270), size (271) and NumberOfOrders (346), RptSeq (83) = the snapshot's
  ``md_seq``;
* an update is an X of one entry: a level's new state (279 = 1 change, for a
  new level too; 2 delete when its size is 0) or a trade (269=2, 279 = 0),
  RptSeq = its ``md_seq``;
  a subscriber checks that RptSeq goes up by one per symbol;
* a ``Gap`` (this session fell behind) is sent as nothing: the fresh W that
  follows it has a RptSeq past the last X, which says the same.

The entry types requested (267/269) filter what is sent; with none named, all
three are. Prices and sizes are decimal strings of the instrument's tick and
lot. Depth: 264 = 0 is the full snapshot (its bound: ``MAX_SNAPSHOT_LEVELS``),
N the best N levels; updates are not cut by depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import simplefix

from engine import BookDelta, Instrument, MalformedMessage, Side
from transports.codec.decimals import converter
from transports.codec.market_messages import BookSnapshot, MarketUpdate, PublicTrade
from transports.core.limits import MAX_TEXT
from transports.fix import protocol as p

BID, OFFER, TRADE = "0", "1", "2"
ALL_ENTRY_TYPES = frozenset({BID, OFFER, TRADE})


@dataclass(frozen=True, slots=True)
class MarketDataRequest:
    request_id: str
    kind: str  # 263: "0" snapshot, "1" snapshot + updates, "2" unsubscribe
    depth: int  # 0: full
    entry_types: frozenset[str]
    symbols: list[str] = field(default_factory=list)


def parse_request(message: simplefix.FixMessage, max_symbols: int) -> MarketDataRequest:
    """The request in a V (``MalformedMessage`` for what is missing or unsupported)."""
    request_id = p.text(message, p.MD_REQ_ID) or ""
    if not request_id or len(request_id) > MAX_TEXT:
        raise MalformedMessage("MDReqID (262) is 1 to 64 characters")
    kind = p.text(message, p.SUBSCRIPTION_REQUEST_TYPE) or ""
    if kind not in ("0", "1", "2"):
        raise MalformedMessage("SubscriptionRequestType (263) is 0, 1 or 2")
    depth = p.integer(message, p.MARKET_DEPTH) or 0
    types = frozenset(v.decode(errors="replace") for v in _all(message, p.MD_ENTRY_TYPE)) or ALL_ENTRY_TYPES
    if not types <= ALL_ENTRY_TYPES:
        raise MalformedMessage("MDEntryType (269) is 0 (bid), 1 (offer) or 2 (trade)")
    symbols = [v.decode(errors="replace") for v in _all(message, p.SYMBOL)]
    if kind != "2" and not symbols:
        raise MalformedMessage("name the symbols (146 / 55)")
    if len(symbols) > max_symbols:
        raise MalformedMessage(f"a request names at most {max_symbols} symbols")
    return MarketDataRequest(request_id, kind, depth, types, list(dict.fromkeys(symbols)))


def _all(message: simplefix.FixMessage, tag: int) -> list[bytes]:
    values: list[bytes] = []
    nth = 1
    while (value := message.get(tag, nth)) is not None:
        values.append(value)
        nth += 1
        if nth > 10_000:  # a frame is bounded in bytes already; this bounds the loop whatever the frame holds
            break
    return values


def snapshot_message(request: MarketDataRequest, snapshot: BookSnapshot, instrument: Instrument) -> simplefix.FixMessage:
    conv = converter(instrument)
    out = p.new_message(p.MARKET_DATA_SNAPSHOT)
    out.append_pair(p.MD_REQ_ID, request.request_id)
    out.append_pair(p.SYMBOL, snapshot.symbol)
    out.append_pair(p.RPT_SEQ, snapshot.md_seq)
    depth = snapshot.depth
    limit = request.depth or None
    entries = []
    if BID in request.entry_types:
        entries += [(BID, level) for level in depth.bids[:limit]]
    if OFFER in request.entry_types:
        entries += [(OFFER, level) for level in depth.asks[:limit]]
    out.append_pair(p.NO_MD_ENTRIES, len(entries))
    for entry_type, level in entries:
        out.append_pair(p.MD_ENTRY_TYPE, entry_type)
        out.append_pair(p.MD_ENTRY_PX, conv.format_price(level.price))
        out.append_pair(p.MD_ENTRY_SIZE, conv.format_qty(level.qty))
        out.append_pair(p.NUMBER_OF_ORDERS, level.order_count)
    return out


def update_message(request: MarketDataRequest, update: MarketUpdate, instrument: Instrument) -> simplefix.FixMessage | None:
    """The X of one update (None when the request did not ask for its entry type)."""
    conv = converter(instrument)
    event = update.event
    out = p.new_message(p.MARKET_DATA_INCREMENTAL)
    out.append_pair(p.MD_REQ_ID, request.request_id)
    out.append_pair(p.NO_MD_ENTRIES, 1)
    if isinstance(event, PublicTrade):
        if TRADE not in request.entry_types:
            return None
        out.append_pair(p.MD_UPDATE_ACTION, "0")
        out.append_pair(p.MD_ENTRY_TYPE, TRADE)
        out.append_pair(p.SYMBOL, update.symbol)
        out.append_pair(p.MD_ENTRY_PX, conv.format_price(event.price))
        out.append_pair(p.MD_ENTRY_SIZE, conv.format_qty(event.qty))
        out.append_pair(p.TRD_MATCH_ID, event.trade_id)
        out.append_pair(p.AGGRESSOR_SIDE, p.SIDE_CODES[event.aggressor_side])
        out.append_pair(p.RPT_SEQ, update.md_seq)
        return _stamped(out, update)
    assert isinstance(event, BookDelta)
    entry_type = BID if event.side is Side.BUY else OFFER
    if entry_type not in request.entry_types:
        return None
    out.append_pair(p.MD_UPDATE_ACTION, "2" if event.qty == 0 else "1")
    out.append_pair(p.MD_ENTRY_TYPE, entry_type)
    out.append_pair(p.SYMBOL, update.symbol)
    out.append_pair(p.MD_ENTRY_PX, conv.format_price(event.price))
    out.append_pair(p.MD_ENTRY_SIZE, conv.format_qty(event.qty))
    out.append_pair(p.NUMBER_OF_ORDERS, event.order_count)
    out.append_pair(p.RPT_SEQ, update.md_seq)
    return _stamped(out, update)


def _stamped(out: simplefix.FixMessage, update: MarketUpdate) -> simplefix.FixMessage:
    """The apply time the other wires carry too: a subscriber on this machine measures its delay from it."""
    if update.applied_mono_ns:
        out.append_pair(p.DEX_APPLIED_NS, update.applied_mono_ns)
    return out


def reject_message(request_id: str, reason: str, text: str) -> simplefix.FixMessage:
    """A MarketDataRequestReject (Y): 281 = 0 unknown symbol, 1 duplicate MDReqID, 5 unsupported depth ..."""
    out = p.new_message(p.MARKET_DATA_REQUEST_REJECT)
    out.append_pair(p.MD_REQ_ID, request_id or "NONE")
    out.append_pair(p.MD_REQ_REJ_REASON, reason)
    out.append_pair(p.TEXT, text[:200])
    return out
