"""The message layout of the AMQP transport (docs/amqp.md prints it as tables).

Every body is a message of the one wire schema, serialized by
``transports.codec.proto_codec`` (never pickle, never aio-pika's RPC
serializer). AMQP properties say what a message is and whom it answers:

* Request (client -> the durable queue ``<name>.commands``, default exchange):
  ``type`` = one of ``KINDS``; ``reply_to`` = the client's reply queue;
  ``correlation_id`` = chosen by the client, echoed in the reply;
  ``headers["trader"]`` = the trader the client acts for (identity, not
  authentication: every command of a batch is decoded as that trader's);
  ``message_id`` = ``<client session>-<batch id>`` on batches (a redelivered
  batch is applied again: the engine's de-duplication window, docs/exactly-once.md,
  keeps it from acting twice). Batches are persistent (delivery mode 2) and published with
  publisher confirms: a batch is accepted once the broker confirmed it.
* Reply (server -> ``reply_to``, default exchange): ``type`` = the request's,
  or ``error`` with an ``Error`` body for a request refused whole (did not
  decode, unknown kind, no trader, gateway overloaded); ``correlation_id`` =
  the request's. A batch's reply body is a ``ReplyBatch``.
* Market data (server -> the durable topic exchange ``<name>.md``): routing
  key ``<kind>.<symbol>`` with kind ``book`` (a BookDelta update), ``trade``
  (a public, anonymous trade update) or ``gap``; body ``MarketDataMessage``, each update
  carrying the gateway's per-symbol ``md_seq``. Subscribers bind ``*.<symbol>``.
"""

from __future__ import annotations

from typing import Final

BATCH: Final = "batch"  # CommandBatch -> ReplyBatch
ORDERS: Final = "orders"  # lean OrderBatch -> OutcomeBatch (a refusal is an Error inside it)
PING: Final = "ping"  # empty -> empty
BOOK: Final = "book"  # BookRequest -> BookDepth
ORDER: Final = "order"  # OrderStatusRequest -> OrderStatusReply
INSTRUMENTS: Final = "instruments"  # empty -> InstrumentList
STATS: Final = "stats"  # empty -> Stats
SNAPSHOT: Final = "snapshot"  # MarketDataRequest -> one MarketDataMessage (snapshot) per symbol, pack_frames
CANCEL_ON_DISCONNECT: Final = "cancel_on_disconnect"  # CancelOnDisconnectRequest -> CancelOnDisconnectReply (the heartbeat)
ERROR: Final = "error"  # reply only: body is an Error

KINDS: Final = frozenset({BATCH, ORDERS, PING, BOOK, ORDER, INSTRUMENTS, STATS, SNAPSHOT, CANCEL_ON_DISCONNECT})
TRADER_HEADER: Final = "trader"

# Market-data routing-key kinds.
MD_BOOK: Final = "book"
MD_TRADE: Final = "trade"
MD_GAP: Final = "gap"


def pack_frames(frames: list[bytes]) -> bytes:
    """Several serialized messages in one body: each prefixed by its length (4 bytes, big-endian)."""
    return b"".join(len(f).to_bytes(4, "big") + f for f in frames)


def unpack_frames(body: bytes) -> list[bytes]:
    """The inverse of ``pack_frames``; ValueError if the body is not such a sequence."""
    out: list[bytes] = []
    i = 0
    while i < len(body):
        if i + 4 > len(body):
            raise ValueError("truncated length prefix")
        n = int.from_bytes(body[i : i + 4], "big")
        i += 4
        if i + n > len(body):
            raise ValueError("truncated frame")
        out.append(body[i : i + n])
        i += n
    return out
