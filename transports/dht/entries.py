"""The bytes of one replicated log entry: who proposed it, and the commands it carries.

Layout (all of it ours, no pickle)::

    b"DX3" | origin: 8 bytes | n: 4 bytes | n x (request: 8 bytes, count: 4 bytes) | OrderBatch
    b"DX2" | origin: 8 bytes | n: 4 bytes | n x (request: 8 bytes, count: 4 bytes) | record\\n record\\n ...

(integers big-endian). A node coalesces the batches its clients submitted
in the same event-loop turn into one entry (group commit): ``n`` requests,
the first ``count`` commands belonging to the first request, and so on. The
commands are one lean ``OrderBatch`` with each command's trader
(``transports.codec.lean``, the journal's format: integers in ticks and lots,
the trader already bound by the node that accepted the batch); an entry that
lists an instrument (or carries a cancel on disconnect) carries ``transports.codec.compact`` records instead
(``DX2``, which is also how older nodes wrote every entry: both are read). ``origin`` + ``request`` let the proposing node find its waiting
clients when the entry comes back committed; every other node only applies
it. A request of no commands is a read barrier: once it is applied here,
so is everything committed before it (``Replica.barrier``). Invariant: ``decode_entry(encode_entry(o, rs)) == (o, rs)``; anything
else raises ``MalformedMessage`` (a node never applies half an entry).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from engine import Command, MalformedMessage
from transports.codec.compact import decode_compact, encode_compact, needs_compact
from transports.codec.lean import decode_orders, encode_orders, parse_orders

MAGIC = b"DX3"  # the commands as one lean OrderBatch
COMPACT = b"DX2"  # the commands as compact records (an instrument listed; entries of older nodes)
_NO_LIMIT = 2**31
_GROUP = struct.Struct(">QI")
_HEAD = len(MAGIC) + 8 + 4

Request = tuple[int, Sequence[Command]]  # (request number, its commands)


def encode_entry(origin: bytes, requests: Sequence[Request]) -> bytes:
    if len(origin) != 8:
        raise ValueError("origin is 8 bytes")
    if not requests:
        raise ValueError("an entry carries at least one request")
    commands = [c for _, batch in requests for c in batch]
    lean = commands and not needs_compact(commands)
    head = [MAGIC if lean else COMPACT, origin, len(requests).to_bytes(4, "big")]
    head.extend(_GROUP.pack(request, len(batch)) for request, batch in requests)
    if lean:
        return b"".join(head) + encode_orders(commands, with_traders=True)
    return b"".join(head) + b"\n".join(encode_compact(c) for c in commands)


def decode_entry(entry: bytes) -> tuple[bytes, list[tuple[int, int]], list[Command]]:
    """(origin, [(request, command count)], every command in order)."""
    if not isinstance(entry, bytes) or len(entry) <= _HEAD or not entry.startswith((MAGIC, COMPACT)):
        raise MalformedMessage("not a dex log entry")
    origin = entry[3:11]
    n = int.from_bytes(entry[11:15], "big")
    body = _HEAD + n * _GROUP.size
    if n < 1 or len(entry) < body:
        raise MalformedMessage("a dex log entry with a bad request table")
    groups = [_GROUP.unpack_from(entry, _HEAD + i * _GROUP.size) for i in range(n)]
    records = entry[body:]
    if not records:
        commands: list[Command] = []
    elif entry.startswith(MAGIC):
        commands = decode_orders(parse_orders(records), None, _NO_LIMIT)
    else:
        commands = [decode_compact(record) for record in records.split(b"\n")]
    if sum(count for _, count in groups) != len(commands):
        raise MalformedMessage("a dex log entry whose request table does not match its records")
    return origin, groups, commands
