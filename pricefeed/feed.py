"""The feed loop: every ``interval`` seconds, read quotes from the source and publish each to every publisher.

Bounded: ``count`` rounds at most (None = until stopped or the source is
exhausted). A source that is unavailable is reported and retried at the next
round; the loop never dies of a network error. A publisher failure is raised:
an update that could not be published is not silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pricefeed.publishers import Publisher
from pricefeed.sources import PriceSource, SourceExhausted, SourceUnavailable
from pricefeed.update import PriceUpdate, Sequencer, make_update

log = logging.getLogger("dex-pricefeed")


@dataclass
class FeedStats:
    rounds: int = 0
    published: int = 0
    source_errors: int = 0
    last: dict[str, PriceUpdate] = field(default_factory=dict)


async def run_feed(
    source: PriceSource,
    publishers: Sequence[Publisher],
    pairs: Sequence[str],
    interval: float,
    *,
    count: int | None = None,
    sequencer: Sequencer | None = None,
    stop: asyncio.Event | None = None,
    stats: FeedStats | None = None,
) -> FeedStats:
    sequencer = sequencer or Sequencer()
    stats = stats if stats is not None else FeedStats()
    stop = stop or asyncio.Event()
    next_round = time.monotonic()
    while (count is None or stats.rounds < count) and not stop.is_set():
        stats.rounds += 1
        try:
            quotes = await source.quotes(pairs)
        except SourceExhausted as exc:
            log.info("source exhausted: %s", exc)
            break
        except SourceUnavailable as exc:
            stats.source_errors += 1
            log.error("price source unavailable, retrying in %.3g s: %s", interval, exc)
            quotes = []
        for quote in quotes:
            update = make_update(quote, sequencer.next(quote.pair), source.name)
            for publisher in publishers:
                await publisher.publish(update)
            stats.published += 1
            stats.last[quote.pair] = update
        next_round += interval
        delay = next_round - time.monotonic()
        if delay < 0:
            next_round = time.monotonic()  # fell behind: do not burst to catch up
            delay = 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
    return stats
