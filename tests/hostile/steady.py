"""The well-behaved client of the hostile-input suite, in a process of its own.

``python -m tests.hostile.steady <transport> <url>`` connects one client built
by ``transports.registry.make_client`` and sends one small order at a time
(an IOC buy far below the market: accepted, then its remainder cancelled, so
the book does not grow), one every few milliseconds, timing each round trip.
A process of its own so that neither the attacker's work in the test
process nor the server's stalls can hide in the same event loop.

A round trip slower than the interval the client means to keep (``PAUSE_S``)
delayed the sends that would have followed it: as HdrHistogram's
``recordValueWithExpectedInterval`` does, each of those is counted too, with
the part of the stall it would have waited (one stall of a second is then
the p99 it is, not one sample among thousands).

Driven by lines on stdin; each answer is one JSON line on stdout:

* ``mark``: forget the round trips timed so far (``{"marked": true}``);
* ``report``: the round trips since the last mark, the one in flight
  counted with its time so far (a stall in progress is a sample too):
  ``{"count", "p50_ms", "p99_ms", "max_ms", "errors", "last_error"}``.

Bounded: it stops after ``MAX_SECONDS`` or ``MAX_REQUESTS``, or at end of stdin.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop

from engine import OrderAccepted, PlaceOrder, Side, TimeInForce
from transports.registry import make_client

SYMBOL = "BTC-USD"
PRICE = 2_800_000  # 28000.00 in ticks: inside the band, below any ask the suite leaves
QTY = 10  # 0.001 BTC in lots
PAUSE_S = 0.004  # between round trips
MAX_SECONDS = 600.0
MAX_REQUESTS = 200_000


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Steady:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self.errors = 0
        self.last_error = ""
        self.in_flight_since: float | None = None

    def record(self, seconds: float, into: list[float] | None = None) -> None:
        """One round trip, and the sends its stall held back (coordinated omission corrected)."""
        samples = self.samples if into is None else into
        samples.append(seconds)
        missed = seconds - PAUSE_S
        while missed > PAUSE_S:
            samples.append(missed)
            missed -= PAUSE_S

    def report(self) -> dict[str, object]:
        samples = list(self.samples)
        if self.in_flight_since is not None:
            self.record(time.perf_counter() - self.in_flight_since, samples)
        ms = [s * 1000 for s in samples]
        return {
            "count": len(ms),
            "p50_ms": round(percentile(ms, 0.50), 2),
            "p99_ms": round(percentile(ms, 0.99), 2),
            "max_ms": round(max(ms, default=0.0), 2),
            "errors": self.errors,
            "last_error": self.last_error,
        }

    async def send(self, transport: str, url: str) -> None:
        client = make_client(transport, "steady", url)
        await client.connect()
        deadline = time.monotonic() + MAX_SECONDS
        try:
            for _ in range(MAX_REQUESTS):
                if time.monotonic() > deadline:
                    break
                order = PlaceOrder("steady", "", SYMBOL, Side.BUY, QTY, PRICE, tif=TimeInForce.IOC)
                self.in_flight_since = time.perf_counter()
                try:
                    events = (await client.submit([order]))[0]
                    if not any(type(e) is OrderAccepted for e in events):
                        raise RuntimeError(f"not accepted: {events}")
                except Exception as exc:
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                else:
                    self.record(time.perf_counter() - self.in_flight_since)
                self.in_flight_since = None
                await asyncio.sleep(PAUSE_S)
        finally:
            await client.close()


async def main(transport: str, url: str) -> None:
    steady = Steady()
    sender = asyncio.create_task(steady.send(transport, url))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = line.decode().strip()
        if sender.done():
            answer: dict[str, object] = {"error": repr(sender.exception()) if not sender.cancelled() else "stopped"}
        elif command == "mark":
            steady.samples.clear()
            steady.errors = 0
            answer = {"marked": True}
        else:
            answer = steady.report()
        print(json.dumps(answer), flush=True)
    sender.cancel()


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(sys.argv[1], sys.argv[2]))
