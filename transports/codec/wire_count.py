"""Counting a batch's elements from its bytes, before any object is built.

A parser builds every element it reads: 16 MiB of empty protobuf commands
(two bytes each) is 8 million objects, and 8 MiB of ``{},`` is 2.8 million
dicts, before a count could refuse them. These functions bound that work
first, at the cost of one pass over the bytes that builds nothing:

* ``count_field(data, field, limit)`` (and ``field_exceeds``, which skips
  the scan when ``data`` is too short, or holds too few of the field's tag
  byte, to hold more: ``bytes.count``, at C speed): how many times the top-level field
  ``field`` occurs in protobuf message bytes, reading only tags and lengths
  (nested messages are skipped, not read). It stops at the first occurrence
  over ``limit`` and returns ``limit + 1``. Bytes that are not a protobuf
  message at the top level (a truncated varint, a length past the end, a
  group or an unknown wire type) raise ``MalformedMessage``, as the parser
  would.
* ``varint_field(data, field, max_fields)``: one integer field (a batch's
  id), read the same way from at most ``max_fields`` fields, to answer a
  refused batch with its id.
* ``json_separators(data, limit)``: an upper bound on the number of values
  JSON ``data`` holds (every value but the first in an array or object
  follows a ``,``; every first one follows a ``[`` or ``{``), counted with
  ``bytes.count``; only when the raw count is over ``limit`` is it taken
  again outside string literals (``bytes.find`` from quote to quote, so the
  Python loop runs once per string, and more quotes than a batch within the
  limit can hold refuse at once). It returns the count, stopping at
  ``limit + 1``.

Pure functions; compiled with mypyc (scripts/build_native.py).
"""

from __future__ import annotations

from typing import Final

from engine import MalformedMessage

_VARINT: Final = 0
_FIXED64: Final = 1
_LENGTH: Final = 2
_FIXED32: Final = 5
_BACKSLASH: Final = 0x5C


def field_exceeds(data: bytes, field: int, limit: int) -> bool:
    """True when top-level ``field`` occurs more than ``limit`` times in the protobuf message ``data``."""
    if len(data) <= 2 * limit:  # every occurrence takes at least two bytes (a tag and a length or value)
        return False
    key = field << 3 | _LENGTH
    if key < 0x80 and data.count(key) <= limit:  # every occurrence starts with this byte (it may stand elsewhere too)
        return False
    return count_field(data, field, limit) > limit


def count_field(data: bytes, field: int, limit: int) -> int:
    """Occurrences of top-level ``field`` in the protobuf message ``data``, at most ``limit + 1``."""
    end = len(data)
    pos = 0
    found = 0
    while pos < end:
        number, _, _, pos = _field(data, pos, end)
        if number == field:
            found += 1
            if found > limit:
                return found
    return found


def varint_field(data: bytes, field: int, max_fields: int) -> int:
    """The value of top-level varint ``field`` in the protobuf message ``data`` (the last one wins), or 0.

    For answering a refused batch with its id: the scan reads at most ``max_fields`` fields (a batch's id follows
    its commands, so a refused batch of a few commands over the limit still gets its id; a flood gets 0), and bytes
    that stop being a message end it with what was read.
    """
    end = len(data)
    pos = 0
    found = 0
    try:
        for _ in range(max_fields):
            if pos >= end:
                break
            number, wire, value, pos = _field(data, pos, end)
            if number == field and wire == _VARINT:
                found = value
    except MalformedMessage:
        pass
    return found


def _field(data: bytes, pos: int, end: int) -> tuple[int, int, int, int]:
    """The field at ``pos``: (its number, its wire type, its value if a varint else 0, the position after it)."""
    key, pos = _varint(data, pos, end)
    wire = key & 7
    value = 0
    if wire == _VARINT:
        value, pos = _varint(data, pos, end)
    elif wire == _LENGTH:
        size, pos = _varint(data, pos, end)
        pos += size
    elif wire == _FIXED64:
        pos += 8
    elif wire == _FIXED32:
        pos += 4
    else:
        raise MalformedMessage(f"wire type {wire} is not read here")
    if pos > end:
        raise MalformedMessage("a field past the end of the message")
    return key >> 3, wire, value, pos


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedMessage("a truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def json_separators(data: bytes, limit: int) -> int:
    """How many ``,`` ``[`` ``{`` bytes outside strings ``data`` holds, at most ``limit + 1``."""
    count = _separators(data, 0, len(data))
    if count <= limit:
        return count
    # Every string is a key or a value, so a batch within the limit has at most two per separator (a key and
    # its value), two quotes each: more quotes than that is over the limit without looking further.
    if data.count(b'"') > 4 * (limit + 1):
        return limit + 1
    count = 0
    pos = 0
    end = len(data)
    while True:
        quote = data.find(b'"', pos)
        stop = end if quote < 0 else quote
        count += _separators(data, pos, stop)
        if count > limit:
            return limit + 1
        if quote < 0:
            return count
        pos = quote + 1
        while True:  # to the string's closing quote: the next one not escaped by an odd run of backslashes
            quote = data.find(b'"', pos)
            if quote < 0:
                return count  # an unterminated string: the parser refuses it
            first = quote
            while first > pos and data[first - 1] == _BACKSLASH:
                first -= 1
            pos = quote + 1
            if (quote - first) % 2 == 0:
                break


def _separators(data: bytes, start: int, stop: int) -> int:
    return data.count(b",", start, stop) + data.count(b"[", start, stop) + data.count(b"{", start, stop)
