"""``Pacer``: wake coroutines at precise ``time.monotonic()`` instants.

Open-loop latency is measured from each request's *intended* start, so a
harness that wakes late adds its own lateness to every sample. asyncio timers
wait in ``epoll`` with millisecond granularity (a sleep ends on average about
0.5 ms late, more under load); a thread blocked on a lock with a timeout wakes
within about 0.1 ms. So a coroutine sleeps coarsely on the event loop until
shortly before its instant, then one pacer thread wakes it through
``call_soon_threadsafe``.

Invariants: a waiter is never woken before its instant; one thread serves
every waiter of the loop, in instant order; ``close`` stops the thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time

_COARSE_MARGIN_S = 0.003  # sleep on the event loop until this long before the instant


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Pacer:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dex-trader-pacer", daemon=True)
        self._thread.start()

    async def sleep_until(self, instant: float) -> None:
        delay = instant - time.monotonic()
        if delay <= 0:
            return
        if delay > _COARSE_MARGIN_S:
            await asyncio.sleep(delay - _COARSE_MARGIN_S)
            if instant <= time.monotonic():
                return
        future: asyncio.Future[None] = self._loop.create_future()
        with self._cond:
            heapq.heappush(self._heap, (instant, next(self._order), future))
            self._cond.notify()
        await future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                future = heapq.heappop(self._heap)[2]
                try:
                    self._loop.call_soon_threadsafe(_wake, future)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return
