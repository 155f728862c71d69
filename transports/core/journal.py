"""The command journal: an append-only file of framed, checksummed records.

File layout::

    MAGIC (8 bytes: b"DEXJRNL1")
    record*   where record = length:u32be  crc32:u32be  payload[length]

Payload kinds (first byte), one record per submission:

* ``T`` + trader length (u16be) + trader (UTF-8) + an ``OrderBatch``
  (``codec.lean``): a lean batch exactly as its trader's client sent it, so
  the gateway journals the bytes it already holds instead of re-encoding;
* ``B`` + an ``OrderBatch`` whose ``traders``/``trader`` columns name each
  command's trader: any other submission of place/cancel/replace/mass cancel;
* ``C`` + one compact command (``codec.compact``): ``add_instrument``, and every
  command of journals written before the lean format (still read);
* ``H`` + ``{"seq": ..., "state_hash": ...}``, a checkpoint written at clean
  shutdown so the next start can prove that replay rebuilt the same state.

Invariants:

* A command's record is written (and, with ``fsync="batch"``, fsynced)
  before the command's reply is released; see ``Gateway``.
* One writer: the file is locked (``flock``) while open; a second server on
  the same journal fails at start with ``JournalInUse``.
* Recovery reads records until the end. A torn *last* record (short header,
  short payload, or bad checksum at the very end of the file) is the trace of
  a crash mid-write: it is truncated away, never half-applied. A bad record
  followed by more data is corruption, and recovery refuses to continue.
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from engine import AddInstrument, Command, ExchangeError, RejectReason
from transports.codec.compact import decode_compact, encode_compact
from transports.codec.lean import decode_orders, encode_orders, parse_orders

MAGIC = b"DEXJRNL1"
_HEADER = struct.Struct(">II")
_MAX_RECORD = 64 * 1024 * 1024
COMMAND = ord("C")
CHECKPOINT = ord("H")
BATCH = ord("B")
TRADER_BATCH = ord("T")
_TRADER_LENGTH = struct.Struct(">H")
_NO_LIMIT = 2**31

FsyncPolicy = Literal["batch", "interval", "off"]


class JournalCorrupt(ExchangeError):
    reason = RejectReason.INTERNAL_ERROR


class JournalInUse(ExchangeError):
    """Another process holds the journal: two writers would interleave records."""

    reason = RejectReason.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Recovery:
    records: list[bytes]  # payloads, in order
    truncated_bytes: int  # bytes of a torn tail that were cut off
    valid_length: int


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(path: Path) -> Recovery:
    """Read every valid record; tell how much torn tail follows them."""
    data = path.read_bytes()
    if not data:
        return Recovery([], 0, 0)
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            return Recovery([], len(data), 0)  # crashed while writing the magic
        raise JournalCorrupt(f"{path} is not a journal (bad magic)")
    records: list[bytes] = []
    offset = len(MAGIC)
    end = len(data)
    while offset < end:
        if offset + _HEADER.size > end:
            break  # torn header
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        if length > _MAX_RECORD:
            if start + length >= end:
                break
            raise JournalCorrupt(f"{path}: impossible record length {length} at offset {offset}")
        if start + length > end:
            break  # torn payload
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            if start + length == end:
                break  # torn last record: the checksum was written, the payload not completely
            raise JournalCorrupt(f"{path}: checksum mismatch at offset {offset}, followed by more records")
        records.append(payload)
        offset = start + length
    return Recovery(records, end - offset, offset)


class Journal:
    """Append side of a journal file. Not thread-safe except ``sync`` (see ``Gateway``)."""

    def __init__(self, path: str | os.PathLike[str], fsync: FsyncPolicy = "batch") -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = -1

    def recover(self) -> Recovery:
        """Read the existing file (if any), truncate a torn tail, and open for appending."""
        if self.path.exists():
            recovery = read_records(self.path)
        else:
            recovery = Recovery([], 0, 0)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = -1
            raise JournalInUse(f"journal {self.path} is in use by another process") from None
        if recovery.valid_length == 0:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, MAGIC)
            os.fsync(self._fd)
        elif recovery.truncated_bytes:
            os.ftruncate(self._fd, recovery.valid_length)
            os.fsync(self._fd)
        os.lseek(self._fd, 0, os.SEEK_END)
        return recovery

    def append(self, payloads: list[bytes]) -> None:
        """Write records to the OS (one write call); durability needs ``sync``."""
        if payloads:
            data = b"".join(frame(p) for p in payloads)
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def sync(self) -> None:
        if self.fsync != "off" and self._fd >= 0:
            os.fsync(self._fd)

    def checkpoint(self, seq: int, state_hash: str) -> None:
        self.append([bytes([CHECKPOINT]) + orjson.dumps({"seq": seq, "state_hash": state_hash})])
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def iter_payloads(records: list[bytes]) -> Iterator[tuple[int, bytes]]:
    for payload in records:
        yield payload[0], payload[1:]


def trader_batch_record(trader: str, order_batch: bytes) -> bytes:
    """The record of a lean ``OrderBatch`` as ``trader``'s client sent it (no re-encoding)."""
    name = trader.encode()
    return b"T" + _TRADER_LENGTH.pack(len(name)) + name + order_batch


def command_records(commands: Sequence[Command]) -> list[bytes]:
    """The records of commands that came without one: one lean batch, or compact records around ``add_instrument``."""
    if not any(type(c) is AddInstrument for c in commands):
        return [b"B" + encode_orders(commands, with_traders=True)]
    return [b"C" + encode_compact(c) for c in commands]


def record_commands(kind: int, body: bytes) -> list[Command]:
    """The commands of one record (``iter_payloads``); a kind this version does not know is ``JournalCorrupt``."""
    if kind == COMMAND:
        return [decode_compact(body)]
    if kind == BATCH:
        return decode_orders(parse_orders(body), None, _NO_LIMIT)
    if kind == TRADER_BATCH:
        (length,) = _TRADER_LENGTH.unpack_from(body)
        trader = body[2 : 2 + length].decode()
        return decode_orders(parse_orders(body[2 + length :]), trader, _NO_LIMIT)
    raise JournalCorrupt(f"unknown journal record kind {kind!r}: written by a newer version?")


def journal_commands(records: list[bytes]) -> Iterator[Command]:
    """Every command in ``records`` (``read_records(...).records``), in order; checkpoints skipped."""
    for kind, body in iter_payloads(records):
        if kind != CHECKPOINT:
            yield from record_commands(kind, body)
