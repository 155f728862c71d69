"""A trader's private queries, the same on every wire: one order by client order id, and its own fills.

The gateway answers open orders, one order by exchange id and mass cancel
already; this module adds what a trading tool (a web screen, ccxt) asks next.
Servers call these functions with the trader their connection proved
(``HttpContext.trader_of`` on HTTP) and encode what they return.

Invariants:

* A trader reads only its own: a client order id is looked up in that
  trader's account, and a fill is that trader's side of a trade (maker or
  taker), never the counterparty's name or order.
* Bounded: at most ``MAX_TRADES_QUERY`` fills per query, read from the
  engine's recent-trades history of each symbol (its ``trade_history``
  trades, kept in the engine's snapshot, so a restart keeps them); a fill
  older than that history is gone from this query (the trader's orders
  still say ``filled``).
* Oldest first by trade id; ``since`` is exclusive, so a client pages with the
  last trade id it has seen.
* ``time`` is the gateway's time of the trade (ms since the epoch, UTC) when
  the timed tape still holds it (``transports.core.candles``), else 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import MalformedMessage, OrderView, RejectReason
from transports.codec.market_messages import Fill
from transports.core.gateway import Gateway
from transports.core.limits import MAX_TEXT, MAX_TRADES_QUERY

__all__ = ["TimedFill", "order_by_client_id", "trader_fills"]


@dataclass(frozen=True, slots=True)
class TimedFill:
    fill: Fill
    time_ms: int  # 0: unknown (the timed tape no longer holds the trade)


def order_by_client_id(gateway: Gateway, trader: str, client_order_id: str) -> OrderView:
    """``trader``'s order that was given ``client_order_id``; UNKNOWN_ORDER when it has none (or another trader has)."""
    if not client_order_id or len(client_order_id) > MAX_TEXT:
        raise MalformedMessage(f"a client order id is 1 to {MAX_TEXT} characters")
    order_id = gateway.engine.order_id_for(trader, client_order_id)
    view = gateway.order_status(trader, order_id) if order_id else None
    if view is None:
        raise MalformedMessage(f"no order with client order id {client_order_id!r} of trader {trader!r}", RejectReason.UNKNOWN_ORDER)
    return view


def trader_fills(gateway: Gateway, trader: str, symbol: str = "", since: int = 0, limit: int = 100) -> list[TimedFill]:
    """``trader``'s fills with a trade id above ``since``, oldest first, the first ``limit`` (in ``symbol`` or all)."""
    if not 1 <= limit <= MAX_TRADES_QUERY:
        raise MalformedMessage(f"limit must be 1 to {MAX_TRADES_QUERY}, not {limit}")
    if symbol and gateway.instrument(symbol) is None:
        raise MalformedMessage(f"unknown symbol {symbol[:MAX_TEXT]!r}", RejectReason.UNKNOWN_SYMBOL)
    symbols = [symbol] if symbol else [i.symbol for i in gateway.instruments]
    history = gateway.engine.trade_history
    found: list[TimedFill] = []
    for name in symbols:
        mine = [
            (trade.trade_id, fill)
            for trade in gateway.recent_trades(name, history)
            if trade.trade_id > since and trader in (trade.maker_trader, trade.taker_trader)
            for who, fill in Fill.of(trade)
            if who == trader
        ]
        if not mine:
            continue
        market = gateway.market_stats.market(name)
        times = {t.trade_id: at for t, at in market.tape} if market is not None else {}
        found.extend(TimedFill(fill, times.get(trade_id, 0)) for trade_id, fill in mine)
    found.sort(key=lambda item: (item.fill.trade_id, not item.fill.maker))
    return found[:limit]
