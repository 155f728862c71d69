"""JSON form of the engine's query views: book depth, order status, instruments, public trades.

The companion of ``json_codec`` (commands and events) for what servers answer
to queries; every JSON transport uses these, none spells its own. Same rules:
prices and quantities are decimal strings formatted by the symbol's
``Instrument`` (``null`` for an absent price), order vocabulary is lower case.

A level is ``[price, qty, order_count]`` (a list, not an object: a snapshot of
50 levels a side is the largest message a market-data subscriber receives).
"""

from __future__ import annotations

from typing import Any

from engine import BookDepth, Instrument, L2Level, MalformedMessage, OrderStatus, OrderType, OrderView, Side, TimeInForce
from transports.codec.market_messages import Candle, Fill, PublicTrade, Ticker, TimedTrade


def _price(instrument: Instrument, ticks: int) -> str | None:
    return instrument.format_price(ticks) if ticks else None


def _levels(instrument: Instrument, levels: list[L2Level]) -> list[list[Any]]:
    fp = instrument.format_price
    fq = instrument.format_qty
    return [[fp(lv.price), fq(lv.qty), lv.order_count] for lv in levels]


def encode_depth(depth: BookDepth, instrument: Instrument, md_seq: int | None = None) -> dict[str, Any]:
    """``{"symbol", "seq", "md_seq"?, "bids": [[price, qty, count], ...], "asks": [...], "last_price"}``."""
    out: dict[str, Any] = {"symbol": depth.symbol, "seq": depth.seq}
    if md_seq is not None:
        out["md_seq"] = md_seq
    out["bids"] = _levels(instrument, depth.bids)
    out["asks"] = _levels(instrument, depth.asks)
    out["last_price"] = _price(instrument, depth.last_price)
    return out


def decode_depth(data: dict[str, Any], instrument: Instrument) -> BookDepth:
    """Inverse of ``encode_depth`` (``md_seq``, if present, is the caller's to read)."""
    try:
        pp = instrument.parse_price
        pq = instrument.parse_qty
        bids = [L2Level(pp(p), pq(q), int(c)) for p, q, c in data["bids"]]
        asks = [L2Level(pp(p), pq(q), int(c)) for p, q, c in data["asks"]]
        last = data.get("last_price")
        return BookDepth(str(data["symbol"]), int(data["seq"]), bids, asks, pp(last) if last is not None else 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"not a book: {exc!r}") from None


def encode_public_trade(trade: PublicTrade, instrument: Instrument) -> dict[str, Any]:
    """``{"type": "trade", "seq", "trade_id", "symbol", "price", "qty", "aggressor_side"}``: no names, no order ids."""
    return {
        "type": "trade",
        "seq": trade.seq,
        "trade_id": trade.trade_id,
        "symbol": trade.symbol,
        "price": instrument.format_price(trade.price),
        "qty": instrument.format_qty(trade.qty),
        "aggressor_side": trade.aggressor_side.name.lower(),
    }


def encode_timed_trade(item: TimedTrade, instrument: Instrument) -> dict[str, Any]:
    """A public trade with ``"time"``: ms since the epoch (UTC) when the gateway applied it (0: unknown)."""
    return {**encode_public_trade(item.trade, instrument), "time": item.time_ms}


def encode_candle(candle: Candle, instrument: Instrument) -> list[Any]:
    """``[start_ms, open, high, low, close, volume, trades]``: a list, as OHLCV rows are everywhere (ccxt's order)."""
    fp = instrument.format_price
    prices = [fp(candle.open), fp(candle.high), fp(candle.low), fp(candle.close)]
    return [candle.start, *prices, instrument.format_qty(candle.volume), candle.trades]


def percent_change(last: int, open_: int) -> str | None:
    """``(last - open) / open`` in percent as a decimal string with two places, rounded half away from zero
    (integer arithmetic: no float ever sees a price); ``None`` without an open price."""
    if open_ <= 0 or last <= 0:
        return None
    hundredths, rest = divmod(abs(last - open_) * 10_000, open_)
    if rest * 2 >= open_:
        hundredths += 1
    sign = "-" if last < open_ and hundredths else ""
    return f"{sign}{hundredths // 100}.{hundredths % 100:02d}"


def encode_ticker(ticker: Ticker, instrument: Instrument) -> dict[str, Any]:
    """``{"symbol", "time", "last", "last_trade_id", "bid", "bid_qty", "ask", "ask_qty", "open", "high", "low",
    "volume", "trades", "change", "change_percent"}``; a price is ``null`` where there is none."""
    fp, fq = instrument.format_price, instrument.format_qty
    change = ticker.last - ticker.open if ticker.last and ticker.open else None
    return {
        "symbol": ticker.symbol,
        "time": ticker.time_ms,
        "last": _price(instrument, ticker.last),
        "last_trade_id": ticker.last_trade_id,
        "bid": _price(instrument, ticker.bid),
        "bid_qty": fq(ticker.bid_qty),
        "ask": _price(instrument, ticker.ask),
        "ask_qty": fq(ticker.ask_qty),
        "open": _price(instrument, ticker.open),
        "high": _price(instrument, ticker.high),
        "low": _price(instrument, ticker.low),
        "volume": fq(ticker.volume),
        "trades": ticker.trades,
        "change": fp(change) if change is not None else None,
        "change_percent": percent_change(ticker.last, ticker.open),
    }


def decode_public_trade(data: dict[str, Any], instrument: Instrument) -> PublicTrade:
    try:
        return PublicTrade(
            int(data["seq"]),
            int(data["trade_id"]),
            str(data["symbol"]),
            instrument.parse_price(data["price"]),
            instrument.parse_qty(data["qty"]),
            Side[str(data["aggressor_side"]).upper()],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"not a trade: {exc!r}") from None


def encode_fill(fill: Fill, instrument: Instrument) -> dict[str, Any]:
    """A trader's own fill on ``/ws/fills``: ``{"type": "fill", "seq", "trade_id", "symbol", "order_id",
    "client_order_id", "side", "price", "qty", "remaining", "maker"}``; never the counterparty."""
    return {
        "type": "fill",
        "seq": fill.seq,
        "trade_id": fill.trade_id,
        "symbol": fill.symbol,
        "order_id": fill.order_id,
        "client_order_id": fill.client_order_id,
        "side": fill.side.name.lower(),
        "price": instrument.format_price(fill.price),
        "qty": instrument.format_qty(fill.qty),
        "remaining": instrument.format_qty(fill.remaining),
        "maker": fill.maker,
    }


def decode_fill(data: dict[str, Any], instrument: Instrument) -> Fill:
    try:
        return Fill(
            int(data["seq"]),
            int(data["trade_id"]),
            str(data["symbol"]),
            int(data["order_id"]),
            str(data["client_order_id"]),
            Side[str(data["side"]).upper()],
            instrument.parse_price(data["price"]),
            instrument.parse_qty(data["qty"]),
            instrument.parse_qty(data["remaining"]),
            bool(data["maker"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"not a fill: {exc!r}") from None


def encode_order_view(view: OrderView, instrument: Instrument) -> dict[str, Any]:
    return {
        "order_id": view.order_id,
        "trader": view.trader,
        "client_order_id": view.client_order_id,
        "symbol": view.symbol,
        "side": view.side.name.lower(),
        "order_type": view.order_type.name.lower(),
        "tif": view.tif.name.lower(),
        "price": _price(instrument, view.price),
        "stop_price": _price(instrument, view.stop_price),
        "remaining": instrument.format_qty(view.remaining),
        "filled": instrument.format_qty(view.filled),
        "status": view.status.name.lower(),
    }


def decode_order_view(data: dict[str, Any], instrument: Instrument) -> OrderView:
    try:
        price = data["price"]
        stop = data["stop_price"]
        return OrderView(
            int(data["order_id"]),
            str(data["trader"]),
            str(data["client_order_id"]),
            str(data["symbol"]),
            Side[str(data["side"]).upper()],
            OrderType[str(data["order_type"]).upper()],
            TimeInForce[str(data["tif"]).upper()],
            instrument.parse_price(price) if price is not None else 0,
            instrument.parse_price(stop) if stop is not None else 0,
            instrument.parse_qty(data["remaining"]),
            instrument.parse_qty(data["filled"]),
            OrderStatus[str(data["status"]).upper()],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(f"not an order: {exc!r}") from None


def encode_instruments(instruments: list[Instrument]) -> list[dict[str, object]]:
    return [i.to_dict() for i in instruments]


def decode_instruments(data: Any) -> list[Instrument]:
    if not isinstance(data, list):
        raise MalformedMessage("instruments must be a JSON array")
    try:
        return [Instrument.from_dict(item) for item in data]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessage(f"not an instrument: {exc!r}") from None
