"""The frame layout of the ZeroMQ transport (docs/zmq.md prints it as tables).

Every payload is a message of the one wire schema, serialized by
``transports.codec.proto_codec``; the frames around it only say what kind of
request it is and which request a reply answers. Invariants:

* Orders: a request of exactly ONE frame is a serialized ``CommandBatch``; its
  reply is ONE frame, the ``ReplyBatch`` with the same ``batch_id`` (an
  ``Error`` inside when the batch was refused whole). One frame, because a
  single frame holding a batch measured 6x faster than a many-part message.
* Lean orders (what our own clients send): ``[orders, corr, OrderBatch]``,
  answered ``[orders, corr, OutcomeBatch]`` (an ``Error`` inside when refused).
* Everything else is a request of two or more frames ``[kind, corr, *body]``;
  its reply is ``[kind, corr, *body]`` or ``[b"error", corr, Error]``. ``corr``
  is chosen by the client (at most ``MAX_CORR`` bytes) and echoed verbatim, so
  queries can be in flight alongside batches and come back in any order.
* A one-frame request that does not parse as a ``CommandBatch`` (so has no
  ``batch_id`` to echo) is answered ``[b"error", b"", Error]``.
* Market data: ``[topic, MarketDataMessage]`` on the PUB socket, the topic
  being the symbol and a space (symbols never contain one), so that a
  subscription to ``BTC-USD`` does not also match ``BTC-USDT``.
"""

from __future__ import annotations

from typing import Final

# Request kinds (the first frame of a multi-part request; the reply repeats it).
HELLO: Final = b"hello"  # body: the trader (UTF-8); binds this connection to it
PING: Final = b"ping"  # no body; a liveness probe
INFO: Final = b"info"  # no body; reply body: the market-data endpoint (UTF-8)
BOOK: Final = b"book"  # body: BookRequest -> BookDepth
ORDER: Final = b"order"  # body: OrderStatusRequest -> OrderStatusReply
INSTRUMENTS: Final = b"instruments"  # no body -> InstrumentList
STATS: Final = b"stats"  # no body -> Stats
SNAPSHOT: Final = b"snapshot"  # body: MarketDataRequest -> one MarketDataMessage (snapshot) frame per symbol
ORDERS: Final = b"orders"  # body: OrderBatch (lean, columnar) -> OutcomeBatch
CANCEL_ON_DISCONNECT: Final = b"cancel_on_disconnect"  # body: CancelOnDisconnectRequest -> CancelOnDisconnectReply (the heartbeat)
ERROR: Final = b"error"  # reply only: body is an Error

KINDS: Final = frozenset({HELLO, PING, INFO, BOOK, ORDER, INSTRUMENTS, STATS, SNAPSHOT, ORDERS, CANCEL_ON_DISCONNECT})

MAX_CORR: Final = 32  # bytes of a correlation frame
TOPIC_SEPARATOR: Final = b" "


def topic(symbol: str) -> bytes:
    """The PUB/SUB topic frame of ``symbol``'s market data."""
    return symbol.encode() + TOPIC_SEPARATOR


def symbol_of(topic_frame: bytes) -> str | None:
    """The symbol a topic (or subscription prefix) names; None for anything else ("" = every symbol)."""
    if not topic_frame:
        return ""
    if not topic_frame.endswith(TOPIC_SEPARATOR):
        return None
    try:
        return topic_frame[: -len(TOPIC_SEPARATOR)].decode()
    except UnicodeDecodeError:
        return None
