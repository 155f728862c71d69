"""``PriceUpdate``: one price of one pair, as published on every pub/sub transport.

Invariants:

* Prices are ``Decimal`` inside and decimal strings on the wire; a float is
  never produced nor accepted (``from_json`` rejects JSON numbers).
* ``seq`` increases strictly per feed process and per pair, and is seeded from
  the wall clock in milliseconds, so a restarted feed never reuses a ``seq``:
  bots derive client order ids from it (``<bot>-<seq>``), and a redelivered
  update must map to the same id while a new update never does.
* This is the one ``PriceUpdate`` (the feed, the bots and the tests share it).
  A body of the older format (``pair``, ``price``, ``ts_ns``, ``seq``,
  ``source``) is still read: a body without ``bid``/``ask`` quotes both at
  ``price``; ``ts_ns`` stands for ``published_ns`` when that is absent.
* ``published_ns`` is the wall clock (``time.time_ns``) at publication: bots on
  the same machine measure price-to-order latency from it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


class BadPriceUpdate(ValueError):
    """A message that is not a price update (bad JSON, missing field, float or non-decimal price)."""


@dataclass(frozen=True, slots=True)
class Quote:
    """What a source observed for one pair: best bid, best ask, last trade price."""

    pair: str
    bid: Decimal
    ask: Decimal
    last: Decimal


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    pair: str
    seq: int
    price: Decimal
    bid: Decimal
    ask: Decimal
    source: str
    published_ns: int

    def to_json(self) -> bytes:
        body = {
            "pair": self.pair,
            "seq": self.seq,
            "price": str(self.price),
            "bid": str(self.bid),
            "ask": str(self.ask),
            "source": self.source,
            "ts_ns": self.published_ns,
            "published_ns": self.published_ns,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @staticmethod
    def from_json(data: bytes | str) -> PriceUpdate:
        try:
            body: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadPriceUpdate(f"not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadPriceUpdate("a price update is a JSON object")
        try:
            pair, seq = body["pair"], body["seq"]
            published = body["published_ns"] if "published_ns" in body else body["ts_ns"]
            price = _decimal(body["price"], "price")
            bid = _decimal(body["bid"], "bid") if "bid" in body else price
            ask = _decimal(body["ask"], "ask") if "ask" in body else price
        except KeyError as exc:
            raise BadPriceUpdate(f"missing field {exc}") from exc
        if not isinstance(pair, str) or not pair:
            raise BadPriceUpdate("pair must be a non-empty string")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise BadPriceUpdate("seq must be a non-negative integer")
        if not isinstance(published, int) or isinstance(published, bool):
            raise BadPriceUpdate("published_ns must be an integer")
        return PriceUpdate(pair, seq, price, bid, ask, str(body.get("source", "")), published)


def _decimal(value: object, name: str) -> Decimal:
    if not isinstance(value, str):
        raise BadPriceUpdate(f"{name} must be a decimal string, got {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise BadPriceUpdate(f"{name} is not a decimal: {value!r}") from exc
    if not number.is_finite() or number <= 0:
        raise BadPriceUpdate(f"{name} must be a positive finite decimal: {value!r}")
    return number


class Sequencer:
    """Per-pair strictly increasing sequence numbers, starting at the wall clock in milliseconds."""

    def __init__(self, start: int | None = None) -> None:
        self._start = start  # None: follow the wall clock (restart-safe); an int: deterministic, for tests
        self._last: dict[str, int] = {}

    def next(self, pair: str) -> int:
        floor = self._start if self._start is not None else time.time_ns() // 1_000_000
        seq = max(floor, self._last.get(pair, 0) + 1)
        self._last[pair] = seq
        return seq


def make_update(quote: Quote, seq: int, source: str) -> PriceUpdate:
    return PriceUpdate(quote.pair, seq, quote.last, quote.bid, quote.ask, source, time.time_ns())
