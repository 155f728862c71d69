"""Market-data fan-out: per-symbol sequenced book deltas and trades.

Invariants:

* Each symbol has its own market-data sequence ``md_seq``: 1, 2, 3, ... with no
  gaps, one per published update. A subscriber that sees a jump knows it
  missed something.
* A subscription starts with a ``BookSnapshot`` taken synchronously at the
  moment of subscribing, carrying the ``md_seq`` it reflects; every update
  after it has ``md_seq`` = snapshot's + 1, + 2, ...
* A snapshot holds the best ``MAX_SNAPSHOT_LEVELS`` levels per side
  (docs/limits.md), so its size is bounded however deep the book: a deeper
  level reaches a subscriber as an update when it next changes.
* Every ``MarketUpdate`` of a group carries the same ``applied_mono_ns``: the
  gateway's one ``time.monotonic_ns()`` reading when it applied the group (0
  when nobody was subscribed), so a subscriber on this machine can tell how
  late it sees a change (``bench/fanout.py``).
* A subscriber that falls behind (its bounded queue is full) is never fed a
  partial stream: its backlog is dropped and, when it next reads, it receives
  a ``Gap`` and then a fresh ``BookSnapshot`` taken at that moment; the stream
  continues from there.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from engine import BookDelta, BookDepth, TradeExecuted
from transports.codec.market_messages import BookSnapshot, Gap, MarketData, MarketEvent, MarketUpdate, PublicTrade
from transports.core.limits import MAX_MARKET_BATCH, MAX_SNAPSHOT_LEVELS

__all__ = ["BookSnapshot", "Gap", "MarketData", "MarketDataHub", "MarketEvent", "MarketUpdate", "PublicTrade", "Subscription"]


SnapshotSource = Callable[[str], BookSnapshot]


@dataclass(eq=False)
class Subscription:
    """One subscriber's bounded view of some symbols."""

    symbols: frozenset[str]
    maxsize: int
    _snapshot: SnapshotSource
    _queue: deque[MarketData] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _last: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    gaps: int = 0
    _behind: bool = False
    _dropped: int = 0

    def push(self, update: MarketUpdate) -> None:
        if self._behind:
            self._dropped += 1
            return
        if len(self._queue) >= self.maxsize:
            # Fallen behind: drop the backlog and resynchronise when the
            # subscriber next reads (a Gap, then a snapshot taken at that
            # moment), ignoring updates until then.
            self._dropped = len(self._queue) + 1
            self._queue.clear()
            self._behind = True
            self.gaps += 1
        else:
            self._queue.append(update)
        self._ready.set()

    def _resync(self) -> None:
        self._behind = False
        for symbol in sorted(self.symbols):
            self._queue.append(Gap(symbol, self._last.get(symbol, 0), self._dropped))
            self._queue.append(self._snapshot(symbol))
        self._dropped = 0

    def _deliver(self, item: MarketData) -> MarketData:
        if isinstance(item, BookSnapshot | MarketUpdate):
            self._last[item.symbol] = item.md_seq
        return item

    def poll(self) -> MarketData | None:
        """The next message if one is waiting, else None."""
        if self._behind:
            self._resync()
        if self._queue:
            return self._deliver(self._queue.popleft())
        return None

    async def batches(self, limit: int = MAX_MARKET_BATCH) -> AsyncIterator[list[MarketData]]:
        """Everything waiting, 1 to ``limit`` messages at a time, in order: one write each for a batched stream."""
        async for first in self:
            items = [first]
            while len(items) < limit and (item := self.poll()) is not None:
                items.append(item)
            yield items

    async def next(self) -> MarketData:
        while True:
            if self._behind:
                self._resync()
            if self._queue:
                return self._deliver(self._queue.popleft())
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> MarketData:
        return await self.next()

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class MarketDataHub:
    """Numbers and fans out the market-data events of one engine."""

    def __init__(self, depth_source: Callable[[str, int], BookDepth | None], snapshot_depth: int = MAX_SNAPSHOT_LEVELS) -> None:
        self._depth_source = depth_source
        self._snapshot_depth = snapshot_depth
        self.md_seq: dict[str, int] = {}
        self._subscribers: dict[str, list[Subscription]] = {}
        self.published = 0

    def snapshot(self, symbol: str) -> BookSnapshot:
        depth = self._depth_source(symbol, self._snapshot_depth)
        if depth is None:
            raise KeyError(symbol)
        return BookSnapshot(symbol, self.md_seq.get(symbol, 0), depth)

    def subscribe(self, symbols: Iterable[str], maxsize: int = 10_000) -> Subscription:
        wanted = frozenset(symbols)
        sub = Subscription(wanted, maxsize, self.snapshot)
        for symbol in sorted(wanted):
            sub._queue.append(self.snapshot(symbol))
            self._subscribers.setdefault(symbol, []).append(sub)
        sub._ready.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        for symbol in sub.symbols:
            subs = self._subscribers.get(symbol)
            if subs and sub in subs:
                subs.remove(sub)

    def publish(self, event: BookDelta | TradeExecuted, applied_mono_ns: int = 0) -> None:
        """Number ``event`` and hand it to its symbol's subscribers (a trade made anonymous: ``PublicTrade``)."""
        symbol = event.symbol
        md_seq = self.md_seq.get(symbol, 0) + 1
        self.md_seq[symbol] = md_seq
        self.published += 1
        subs = self._subscribers.get(symbol)
        if subs:
            update = MarketUpdate(symbol, md_seq, _public(event), applied_mono_ns)
            for sub in subs:
                sub.push(update)

    def publish_all(self, events: Iterable[BookDelta | TradeExecuted], applied_mono_ns: int = 0) -> None:
        """``publish`` each of ``events`` in order (one call per group: the loop is the gateway writer's), each
        stamped with ``applied_mono_ns``, the group's apply time."""
        md_seq = self.md_seq
        subscribers = self._subscribers
        count = 0
        for event in events:
            symbol = event.symbol
            seq = md_seq.get(symbol, 0) + 1
            md_seq[symbol] = seq
            count += 1
            subs = subscribers.get(symbol)
            if subs:
                update = MarketUpdate(symbol, seq, _public(event), applied_mono_ns)
                for sub in subs:
                    sub.push(update)
        self.published += count

    def skip(self, counts: dict[str, int]) -> None:
        """Advance each symbol's ``md_seq`` by updates nobody was subscribed to receive."""
        md_seq = self.md_seq
        for symbol, count in counts.items():
            md_seq[symbol] = md_seq.get(symbol, 0) + count
        self.published += sum(counts.values())

    @property
    def has_subscribers(self) -> bool:
        """Whether anybody would receive an update now (nobody: the writer need not collect any)."""
        return any(self._subscribers.values())

    @property
    def subscriber_count(self) -> int:
        return len({id(s) for subs in self._subscribers.values() for s in subs})

    def gap_count(self) -> int:
        return sum(s.gaps for subs in self._subscribers.values() for s in subs)


def _public(event: BookDelta | TradeExecuted) -> MarketEvent:
    """What a subscriber may see of ``event``: a book delta as it is, a trade without its traders."""
    if isinstance(event, TradeExecuted):
        return PublicTrade.of(event)
    return event


async def in_sequence(
    arrivals: AsyncIterator[MarketData], snapshots: Callable[[Sequence[str]], Awaitable[list[BookSnapshot]]], symbols: Sequence[str]
) -> AsyncIterator[MarketData]:
    """What a client's ``market_data`` yields, from what its wire delivers: the same rules on every transport.

    Call it once the wire subscription is in place: it takes the snapshots
    then, so an update published in between is either in a snapshot
    (``md_seq`` not above it: skipped) or arrives after it. Then each update
    is yielded exactly when it is the next ``md_seq`` of its symbol; a jump, or
    a ``Gap`` the server sent, yields a ``Gap`` and a fresh snapshot of that
    symbol, and the update that showed the jump is judged again against the
    new snapshot (skipped, yielded, or another gap). Symbols not asked for are
    ignored, and so are snapshots on the wire (never published).
    """
    last: dict[str, int] = {}
    for snapshot in await snapshots(symbols):
        last[snapshot.symbol] = snapshot.md_seq
        yield snapshot
    async for item in arrivals:
        symbol = item.symbol
        if symbol not in last:
            continue
        while True:
            if isinstance(item, MarketUpdate):
                if item.md_seq <= last[symbol]:
                    break  # already in the snapshot
                if item.md_seq == last[symbol] + 1:
                    last[symbol] = item.md_seq
                    yield item
                    break
                gap = Gap(symbol, last[symbol], item.md_seq - last[symbol] - 1)
            elif isinstance(item, Gap):
                gap = Gap(symbol, last[symbol], item.dropped)
            else:
                break
            yield gap
            (snapshot,) = await snapshots([symbol])
            last[symbol] = snapshot.md_seq
            yield snapshot
            if not isinstance(item, MarketUpdate):
                break
