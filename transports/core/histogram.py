"""A small HDR-style latency histogram: log-linear buckets, mergeable, fast to record.

Values are non-negative integers (we record microseconds). Values below 128 get
a bucket each; above, each power of two is split into 64 buckets, so a value
is reported to within 1/64 (< 1.6%) of its true value. Recording is one ``bit_length`` and one list increment.
Histograms from several workers or processes merge by adding counts
(``merge``, or ``to_dict``/``from_dict`` across a process boundary).
"""

from __future__ import annotations

from typing import Any

_SUB_BITS = 7
_SUB = 1 << _SUB_BITS  # values below this have a bucket each
_HALF = _SUB >> 1  # buckets per power of two above that
_MAX_SHIFT = 40  # values up to about 2**47 (four years in microseconds)
_BUCKETS = _SUB + _MAX_SHIFT * _HALF


def _index(value: int) -> int:
    if value < _SUB:
        return value
    shift = value.bit_length() - _SUB_BITS
    return shift * _HALF + (value >> shift)


def _lowest(index: int) -> int:
    """The smallest value that falls in bucket ``index``."""
    if index < _SUB:
        return index
    shift = (index - _SUB) // _HALF + 1
    return (index - shift * _HALF) << shift


class Histogram:
    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, value: int, times: int = 1) -> None:
        if value < 0:
            value = 0
        index = _index(value)
        if index >= len(self.counts):
            index = len(self.counts) - 1
        self.counts[index] += times
        if self.count == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += times
        self.total += value * times

    def merge(self, other: Histogram) -> None:
        if other.count == 0:
            return
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def percentile(self, p: float) -> int:
        """The value at percentile ``p`` (0-100), reported as its bucket's upper edge, capped at max."""
        if self.count == 0:
            return 0
        rank = max(1, -(-int(p * self.count) // 100)) if p < 100 else self.count
        seen = 0
        for i, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= rank:
                    upper = _lowest(i + 1) - 1 if i + 1 < len(self.counts) else self.max
                    return min(max(upper, self.min), self.max)
        return self.max

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def summary(self) -> dict[str, int]:
        return {
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "p999": self.percentile(99.9),
            "max": self.max,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": {str(i): c for i, c in enumerate(self.counts) if c},
            "count": self.count,
            "total": self.total,
            "min": self.min,
            "max": self.max,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Histogram:
        h = Histogram()
        for i, c in data["buckets"].items():
            h.counts[int(i)] = int(c)
        h.count = int(data["count"])
        h.total = int(data["total"])
        h.min = int(data["min"])
        h.max = int(data["max"])
        return h
