"""Market-data messages: what a subscriber receives (plain values, no I/O).

Produced by the gateway's ``MarketDataHub`` and encoded by the codecs; they
live here so the codec does not depend on the asyncio side of the core.

Market data is public, so it is anonymous: a trade is a ``PublicTrade``
(symbol, trade id, price, quantity, aggressor side, engine seq), never the
engine's ``TradeExecuted`` with its traders, order ids, client order ids and
remaining quantities. Those stay private: the taker reads them in its reply,
either side in its order's status and on its own fills stream (``Fill``:
``transports.core.fills``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import BookDelta, BookDepth, Side, TradeExecuted


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    symbol: str
    md_seq: int
    depth: BookDepth  # depth.seq is the engine sequence number it reflects


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """A trade as every subscriber sees it: no trader, order id, client order id or remaining quantity."""

    seq: int
    trade_id: int
    symbol: str
    price: int  # ticks: the resting order's price
    qty: int  # lots
    aggressor_side: Side

    @staticmethod
    def of(trade: TradeExecuted) -> PublicTrade:
        return PublicTrade(trade.seq, trade.trade_id, trade.symbol, trade.price, trade.qty, trade.aggressor_side)


MarketEvent = BookDelta | PublicTrade


@dataclass(frozen=True, slots=True)
class MarketUpdate:
    """One sequenced change. The hub creates it once and hands the same object to every subscriber, so each
    wire encoding is made once and shared (``encoded``: ``transports.codec.market_bytes``)."""

    symbol: str
    md_seq: int
    event: MarketEvent
    # The publishing server's time.monotonic_ns() when the gateway applied the group (0: not stamped). System-wide
    # on one machine, so a subscriber there can tell how late it sees the change (bench/fanout.py). When, not what:
    # two replicas' copies of an update are equal whatever their stamps.
    applied_mono_ns: int = field(default=0, compare=False)
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Gap:
    symbol: str
    last_md_seq: int  # the last update delivered before the gap
    dropped: int


MarketData = BookSnapshot | MarketUpdate | Gap


@dataclass(frozen=True, slots=True)
class Fill:
    """One side of a trade, as its own trader sees it."""

    seq: int  # the engine sequence number of the trade
    trade_id: int
    symbol: str
    order_id: int
    client_order_id: str
    side: Side  # this order's side
    price: int  # ticks
    qty: int  # lots
    remaining: int  # lots of this order still open after the fill
    maker: bool  # True: this order rested and was hit; False: it took

    @staticmethod
    def of(trade: TradeExecuted) -> tuple[tuple[str, Fill], tuple[str, Fill]]:
        """``(maker trader, maker's fill), (taker trader, taker's fill)``."""
        taker_side = trade.aggressor_side
        maker_side = Side.SELL if taker_side is Side.BUY else Side.BUY
        maker = Fill(
            trade.seq, trade.trade_id, trade.symbol, trade.maker_order_id, trade.maker_client_order_id,
            maker_side, trade.price, trade.qty, trade.maker_remaining, True,
        )  # fmt: skip
        taker = Fill(
            trade.seq, trade.trade_id, trade.symbol, trade.taker_order_id, trade.taker_client_order_id,
            taker_side, trade.price, trade.qty, trade.taker_remaining, False,
        )  # fmt: skip
        return (trade.maker_trader, maker), (trade.taker_trader, taker)


@dataclass(frozen=True, slots=True)
class TimedTrade:
    """A public trade with the wall-clock time (ms since the epoch, UTC) of the gateway group that applied it
    (0: unknown, a trade replayed from a journal written before trades were timed)."""

    trade: PublicTrade
    time_ms: int


@dataclass(slots=True)
class Candle:
    """OHLCV of one interval: prices in ticks, ``volume`` in lots, ``trades`` the number of trades in it.

    ``start`` (ms since the epoch) is a multiple of the interval's length; a candle exists only for an
    interval in which something traded.
    """

    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int

    def as_list(self) -> list[int]:
        return [self.start, self.open, self.high, self.low, self.close, self.volume, self.trades]


@dataclass(frozen=True, slots=True)
class Ticker:
    """One symbol at ``time_ms``: the last trade, the best bid and ask, and the last 24 hours (in ticks and lots).

    ``open`` is the first price of the 24 h window, ``high``/``low``/``volume``/``trades`` cover it; 0 where
    nothing traded (``last`` may still be older than the window). ``bid``/``ask`` are 0 when that side is empty.
    """

    symbol: str
    time_ms: int
    last: int
    last_trade_id: int
    bid: int
    bid_qty: int
    ask: int
    ask_qty: int
    open: int
    high: int
    low: int
    volume: int
    trades: int
