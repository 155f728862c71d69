"""Helpers shared by the ZeroMQ tests: orders in decimal terms, a raw DEALER, a book rebuilt from market data."""

from __future__ import annotations

import zmq

from engine import BookDelta, BookDepth, Event, OrderAccepted, PlaceOrder, RejectReason, Side
from transports.codec.proto_codec import decode_error
from transports.core.marketdata import BookSnapshot, MarketUpdate
from transports.instruments import DEFAULT_INSTRUMENTS

BTC = DEFAULT_INSTRUMENTS[0]  # tick 0.01, lot 0.0001, 10% band around 30000.00
SYMBOL = BTC.symbol


def order(trader: str, coid: str, side: Side, qty: str, price: str) -> PlaceOrder:
    return PlaceOrder(trader, coid, SYMBOL, side, BTC.parse_qty(qty), BTC.parse_price(price))


def order_id(events: list[Event]) -> int:
    (accepted,) = [e for e in events if isinstance(e, OrderAccepted)]
    return accepted.order_id


def dealer(endpoint: str, timeout_ms: int = 5000, options: dict[int, int] | None = None) -> zmq.Socket[bytes]:
    """A raw DEALER (blocking, with a receive timeout) for frames no ``ZmqClient`` would send.

    ``options`` are set before ``connect``: buffer sizes such as ``zmq.RCVBUF`` only reach the TCP socket then.
    """
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    for option, value in (options or {}).items():
        sock.setsockopt(option, value)
    sock.connect(endpoint)
    return sock


def hello(sock: zmq.Socket[bytes], trader: str) -> None:
    sock.send_multipart([b"hello", b"h1", trader.encode()])
    assert sock.recv_multipart() == [b"hello", b"h1", trader.encode()]


def error_of(frame: bytes) -> RejectReason:
    """The reason of an error frame's ``Error``."""
    return decode_error(frame).reason


Side_ = dict[int, tuple[int, int]]  # price -> (qty, order count)


class RebuiltBook:
    """A level-2 book kept from a snapshot and the BookDeltas after it (what a market-data user does)."""

    def __init__(self) -> None:
        self.bids: Side_ = {}
        self.asks: Side_ = {}
        self.md_seq = 0

    def reset(self, snapshot: BookSnapshot) -> None:
        self.bids = {lv.price: (lv.qty, lv.order_count) for lv in snapshot.depth.bids}
        self.asks = {lv.price: (lv.qty, lv.order_count) for lv in snapshot.depth.asks}
        self.md_seq = snapshot.md_seq

    def apply(self, update: MarketUpdate) -> None:
        assert update.md_seq == self.md_seq + 1, (update.md_seq, self.md_seq)
        self.md_seq = update.md_seq
        event = update.event
        if isinstance(event, BookDelta):
            levels = self.bids if event.side is Side.BUY else self.asks
            if event.qty:
                levels[event.price] = (event.qty, event.order_count)
            else:
                levels.pop(event.price, None)

    def levels(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        bids = sorted(((p, q, n) for p, (q, n) in self.bids.items()), reverse=True)
        asks = sorted((p, q, n) for p, (q, n) in self.asks.items())
        return bids, asks


def depth_levels(depth: BookDepth) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    return [(lv.price, lv.qty, lv.order_count) for lv in depth.bids], [(lv.price, lv.qty, lv.order_count) for lv in depth.asks]
