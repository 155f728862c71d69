"""Market data on the WebSocket: one JSON text message per ``MarketData`` item, or with ``?batch=1`` an array of them.

::

    {"type": "snapshot", "symbol", "md_seq", "seq", "bids": [[price, qty, count], ...], "asks": [...], "last_price"}
    {"type": "update", "symbol", "md_seq", "applied_mono_ns", "event": {a book_delta as json_codec.encode_event, or a public trade}}
    {"type": "gap", "symbol", "last_md_seq", "dropped"}
    {"type": "error", "reason", "code", "message"}          (then the server closes the socket)

Per symbol, ``md_seq`` of the updates after a snapshot is the snapshot's + 1,
+ 2, ... with no holes; a ``gap`` (the subscriber fell behind and its queue
was dropped) is always followed by a fresh snapshot. A trade is public, so
anonymous (``json_views.encode_public_trade``: no traders, order ids, client
order ids or remaining quantities). A snapshot holds at most
50 levels a side (``MarketDataHub``): deltas to deeper levels keep a local
book exact only down to that depth.

Batched (``/ws/marketdata?symbols=A&batch=1``): every message is a JSON array
of the items above, in order, holding everything that waited for the
subscriber when it was written (1 to ``MAX_MARKET_BATCH``). A subscriber that
keeps up gets arrays of one; one that lags catches up in a few messages
instead of one message per update, as gRPC's ``MarketDataBatched`` does.
An error is never batched: it is the object above, then the close.
"""

from __future__ import annotations

from typing import Any

from engine import BookDelta, Instrument, MalformedMessage
from transports.codec.json_codec import InstrumentLookup, decode_event, dumps, encode_event
from transports.codec.json_views import decode_depth, decode_public_trade, encode_depth, encode_public_trade
from transports.core.marketdata import BookSnapshot, Gap, MarketData, MarketEvent, MarketUpdate, PublicTrade


def market_data_text(item: MarketData, instruments: InstrumentLookup) -> str:
    """The WebSocket text of ``item``; an update's is made once and shared by every subscriber."""
    return market_data_json(item, instruments).decode()


def market_data_batch_text(items: list[MarketData], instruments: InstrumentLookup) -> str:
    """The WebSocket text of ``items`` as one batched message: a JSON array, in order."""
    return (b"[" + b",".join([market_data_json(item, instruments) for item in items]) + b"]").decode()


def market_data_json(item: MarketData, instruments: InstrumentLookup) -> bytes:
    """``item``'s JSON; an update's is made once and shared by every subscriber."""
    if type(item) is MarketUpdate:
        cached = item.encoded.get("json")
        if cached is None:
            cached = item.encoded["json"] = dumps(encode_market_data(item, instruments))
        return cached
    return dumps(encode_market_data(item, instruments))


def encode_market_data(item: MarketData, instruments: InstrumentLookup) -> dict[str, Any]:
    if type(item) is MarketUpdate:
        event = item.event
        if isinstance(event, PublicTrade):
            body = encode_public_trade(event, _instrument(instruments, event.symbol))
        else:
            body = encode_event(event, instruments)
        return {"type": "update", "symbol": item.symbol, "md_seq": item.md_seq, "applied_mono_ns": item.applied_mono_ns, "event": body}
    if type(item) is BookSnapshot:
        instrument = _instrument(instruments, item.symbol)
        depth = encode_depth(item.depth, instrument, item.md_seq)
        return {"type": "snapshot", **depth}
    assert isinstance(item, Gap)
    return {"type": "gap", "symbol": item.symbol, "last_md_seq": item.last_md_seq, "dropped": item.dropped}


def decode_market_data(data: Any, instruments: InstrumentLookup) -> MarketData:
    """Inverse of ``encode_market_data`` (an ``error`` message is the caller's to handle)."""
    if not isinstance(data, dict):
        raise MalformedMessage("a market-data message must be a JSON object")
    kind = data.get("type")
    try:
        if kind == "update":
            body = data["event"]
            event: MarketEvent
            if isinstance(body, dict) and body.get("type") == "trade":
                event = decode_public_trade(body, _instrument(instruments, str(body.get("symbol"))))
            else:
                delta = decode_event(body, instruments)
                if not isinstance(delta, BookDelta):
                    raise MalformedMessage(f"not a market-data event: {type(delta).__name__}")
                event = delta
            return MarketUpdate(str(data["symbol"]), int(data["md_seq"]), event, int(data.get("applied_mono_ns", 0)))
        if kind == "snapshot":
            symbol = str(data["symbol"])
            return BookSnapshot(symbol, int(data["md_seq"]), decode_depth(data, _instrument(instruments, symbol)))
        if kind == "gap":
            return Gap(str(data["symbol"]), int(data["last_md_seq"]), int(data["dropped"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"not a market-data message: {exc!r}") from None
    raise MalformedMessage(f"unknown market-data message type {kind!r}")


def _instrument(instruments: InstrumentLookup, symbol: str) -> Instrument:
    instrument = instruments(symbol)
    if instrument is None:
        raise MalformedMessage(f"unknown symbol {symbol!r}")
    return instrument
