"""Limits per key: a token bucket of requests per second and a cap on requests in flight.

Invariants:

* A request is admitted only if its key's bucket holds a token and fewer than
  ``max_in_flight`` of the key's requests are being served; otherwise it is
  refused with ``RATE_LIMITED`` before any work, and counted (the server's
  ``refused`` counter by reason, so ``stats`` and the metrics show it).
  Nothing is dropped silently.
* A bucket refills continuously at ``rate_per_s`` up to ``burst`` tokens, on
  the monotonic clock. Each request costs one token, whatever it holds (a
  batch is bounded by ``max_batch`` already).
* The state is one small entry per key seen, so memory is bounded by the
  keyring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from engine import ExchangeError, RejectReason

DEFAULT_RATE_PER_S: Final = 20_000
DEFAULT_MAX_IN_FLIGHT: Final = 1_024


class RateLimited(ExchangeError):
    """A key over its request rate or its requests in flight: nothing applied, retry later."""

    reason = RejectReason.RATE_LIMITED

    def __init__(self, message: str) -> None:
        super().__init__(message, RejectReason.RATE_LIMITED)


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: float
    tokens: float
    stamp: float
    in_flight: int = 0
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT


class KeyLimiter:
    """The buckets and in-flight counts of every key a server has seen."""

    def __init__(
        self,
        rate_per_s: int = DEFAULT_RATE_PER_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.max_in_flight = max_in_flight
        self._buckets: dict[str, _Bucket] = {}
        self._clock = clock

    def acquire(self, key_id: str, rate_per_s: int = 0, max_in_flight: int = 0) -> None:
        """Take a token and an in-flight slot for ``key_id`` (its own limits, 0: the server's), or raise ``RateLimited``."""
        bucket = self._buckets.get(key_id)
        now = self._clock()
        rate = rate_per_s or self.rate_per_s
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[key_id] = _Bucket(rate, rate, rate, now, bucket.in_flight if bucket else 0)
        bucket.max_in_flight = max_in_flight or self.max_in_flight
        bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.stamp) * bucket.rate)
        bucket.stamp = now
        if bucket.in_flight >= bucket.max_in_flight:
            raise RateLimited(f"at most {bucket.max_in_flight} requests of one key in flight")
        if bucket.tokens < 1:
            raise RateLimited(f"at most {rate:g} requests per second per key")
        bucket.tokens -= 1
        bucket.in_flight += 1

    def release(self, key_id: str) -> None:
        """The request admitted by ``acquire`` is answered."""
        bucket = self._buckets.get(key_id)
        if bucket is not None and bucket.in_flight:
            bucket.in_flight -= 1
