"""The workers of one process: each an asyncio task, one trader, one client, one ``OrderFlow``.

Timing (all on ``time.monotonic()``, which every process of a machine shares):

* The run starts at ``start``; batches whose start is before
  ``start + warmup`` are sent and counted (they reach the server, so
  reconciliation needs them) but not measured; sending stops at
  ``start + warmup + duration``.
* Closed loop (``rate == 0``): a trader sends its next batch as soon as the
  previous reply arrives; latency = reply - send.
* Open loop (``rate > 0``): trader ``g`` of ``T`` has intended send times
  ``start + (g / T + k) * interval`` with ``interval = batch * T / rate``, a
  fixed schedule that does not wait for replies. Latency = reply - intended
  start, so a slow reply also charges the requests it delayed (corrected for
  coordinated omission). ``service_latency`` is reply - actual send.
* Latency is one sample per request (a batch is one request).
* Cost: each process reads its own CPU time (``time.process_time``) when the
  measured window opens and when its traders are done, and counts the lean
  bytes it sent in the window (``result()["cost"]``, ``traders.harness.cost``).

Preparation: every trader's seeded stream is generated and encoded as lean
``OrderBatch`` bytes before the run starts (all of an open-loop schedule; for
a closed loop, enough for ``PREPARE_RATE`` commands/s and ``PREPARE_REQUESTS``
requests/s per process, whichever is fewer; never more than ``PREPARE_MAX``
commands per process), so the
measured window pays for sending, not for writing orders. A closed loop that
outruns its prepared batches writes more on the fly and says so
(``generated_live``).

Workloads: ``exercise-unknown`` sends the fixed stream as prepared, its
cancels and replaces naming recent orders whether or not they still rest.
``live`` (the default) prepares the places as bytes and each cancel or replace
as a slot (``OrderFlow.plan``); at send time the slots are named from the
orders the trader's earlier replies showed resting (``OrderFlow.resolve``)
and encoded as a second ``OrderBatch`` appended to the places' bytes
(protobuf concatenates repeated fields, so the two make one batch whose
symbol table is the places' table followed by the slots'; the slots' cancels
and replaces carry no symbol, and a slot that found no live order becomes a
passive place on the batch's first place's instrument, index 1 in both
tables); each reply's outcomes go back to the flow (``OrderFlow.settle``). A
batch therefore sends its places first, then its cancels and replaces, and
always ``--batch`` commands.

When the server dies: a ``NotConnected`` from any trader ends the run at
once; a server that just stops answering (a ZeroMQ peer, a broker whose
consumer died: the request waits for its own timeout) is found by a watchdog:
no reply for ``STALL_S`` while requests are in flight, and a fresh client's
``stats`` gets no answer within ``PROBE_TIMEOUT_S``, ends the run with
``ServerLost``. Either way ``run`` returns what was counted so far, with the
``error`` that ended it (the requests in flight then are not counted: their
outcome is unknown).

Counting: a command counts as sent once its outcome arrived; ``accepted`` and
``rejected`` count the outcomes, ``trades`` every trade the batch caused (the
engine reports a trade in the reply of the command that caused it, so each is
counted once, as the gateway's own counters do). An ``Overloaded`` refusal (nothing
applied) is an error and the same batch is retried after a backoff; other
``ExchangeError``s are errors and the batch is dropped; ``NotConnected`` ends
the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine import Command, ExchangeError, Instrument, NotConnected, Overloaded
from traders.harness import cost
from traders.harness.clients import ClientFactory
from traders.harness.config import ConfigError, HarnessConfig
from traders.harness.pacing import Pacer
from transports.codec.lean import Outcomes, count_places, encode_orders
from transports.core import gc_tuning
from transports.core.client import TraderClient
from transports.core.histogram import Histogram
from transports.core.workload import OrderFlow

ProgressSink = Callable[[dict[str, Any]], None]

_BACKOFF_START_S = 0.001
_BACKOFF_MAX_S = 0.1
_PROGRESS_EVERY_S = 1.0
PREPARE_RATE = 300_000  # closed loop: commands/s per process prepared before the run (more are written on the fly)
# Closed loop: requests/s per process prepared. A request is one round trip, and none of our wires answers one
# process's traders faster than this (the raw TCP echo does about 25,000/s): at 300,000 commands/s, batches of one
# order took 13 s to prepare for a 2.5 s run, 1 s of which was sent.
PREPARE_REQUESTS = 30_000
PREPARE_MAX = 1_500_000  # commands per process prepared before the run: about 3 s of work and 45 MB at most
STALL_S = 2.0  # no reply for this long while requests are in flight: ask whether the server still answers
PROBE_TIMEOUT_S = 3.0  # how long the watchdog's fresh client waits for the server's stats
CLOSE_TIMEOUT_S = 2.0  # closing a client of a dead server must not hang the report


class ServerLost(NotConnected):
    """The server stopped answering during the run (it died, or its wire did)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """One batch, written and encoded before it is due."""

    data: bytes  # lean OrderBatch
    count: int
    orders: int  # place commands among them

    @staticmethod
    def of(commands: Sequence[Command]) -> Prepared:
        return Prepared(encode_orders(commands), len(commands), count_places(commands))

    def resolve(self, flow: OrderFlow) -> tuple[Prepared, list[int]]:
        """Ready as it is (nothing to name at send time)."""
        return self, []

    def settle(self, flow: OrderFlow, targets: list[int], outcomes: Outcomes) -> None:
        """A fixed stream reads no replies."""


@dataclass(frozen=True, slots=True)
class Planned:
    """One batch of the ``live`` workload: the places encoded before the run, cancels and replaces as slots."""

    places: bytes  # lean OrderBatch of the places; empty when there are none
    orders: int
    first: int  # the instrument index of the first place; -1 when there are none
    keys: array[int]  # OrderFlow.plan's key of each place, in order
    slots: array[int]  # OrderFlow.plan's cancel/replace slots

    @staticmethod
    def of(flow: OrderFlow, size: int) -> Planned:
        places, keys, slots = flow.plan(size)
        first = flow.instrument_index(places[0].symbol) if places else -1
        return Planned(encode_orders(places) if places else b"", len(places), first, array("q", keys), array("q", slots))

    def resolve(self, flow: OrderFlow) -> tuple[Prepared, list[int]]:
        """The bytes to send: the places, then the slots named from the flow's live orders."""
        if not self.slots:
            return Prepared(self.places, self.orders, self.orders), []
        managed, targets = flow.resolve(self.slots.tolist(), self.first)  # a list: what compiled code iterates fastest
        data = self.places + encode_orders(managed)
        return Prepared(data, self.orders + len(managed), self.orders + count_places(managed)), targets

    def settle(self, flow: OrderFlow, targets: list[int], outcomes: Outcomes) -> None:
        flow.settle(self.keys.tolist(), targets, outcomes.outcome, outcomes.leaves)


Batch = Prepared | Planned


@dataclass(slots=True)
class Counts:
    requests: int = 0  # submits answered
    sent: int = 0  # commands answered
    orders: int = 0  # place commands among them
    accepted: int = 0
    rejected: int = 0
    trades: int = 0
    errors: int = 0  # failed submits (overloaded included)
    overloaded: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def minus(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Counts:
        return Counts(**{f.name: int(data.get(f.name, 0)) for f in fields(Counts)})


class Tally:
    """What the workers of one process saw. Workers share it: they run on one event loop."""

    def __init__(self) -> None:
        self.total = Counts()  # warm-up included (reconciliation)
        self.measured = Counts()  # after the warm-up only
        self.latency_us = Histogram()  # measured, from intended start
        self.service_us = Histogram()  # measured, from actual send
        self.window_us = Histogram()  # since the last progress report, warm-up included
        self.last_reply = 0.0  # monotonic time of the last measured reply
        self.first_error = ""
        self.rejected_by_reason: dict[str, int] = {}  # warm-up included
        self.generated_live = 0  # batches written during the run: the prepared ones ran out
        self.in_flight = 0  # submits awaiting their reply
        self.last_answer = time.monotonic()  # monotonic time of the last reply with outcomes (the server is alive)
        self.request_bytes = 0  # measured: lean OrderBatch bytes sent (the cost report's bytes per order)

    def record(self, batch: Prepared, outcomes: Outcomes, latency_s: float, service_s: float, measured: bool) -> None:
        accepted = outcomes.accepted
        rejected = outcomes.rejected
        if rejected:
            reasons = self.rejected_by_reason
            for reason, value in outcomes.rejected_by_reason().items():
                reasons[reason] = reasons.get(reason, 0) + value
        targets = (self.total, self.measured) if measured else (self.total,)
        for c in targets:
            c.requests += 1
            c.sent += batch.count
            c.orders += batch.orders
            c.accepted += accepted
            c.rejected += rejected
            c.trades += outcomes.trades
        latency_us = int(latency_s * 1e6)
        self.window_us.record(latency_us)
        if measured:
            self.latency_us.record(latency_us)
            self.service_us.record(int(service_s * 1e6))
            self.request_bytes += len(batch.data)

    def error(self, exc: BaseException, measured: bool, overloaded: bool) -> None:
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"
        targets = (self.total, self.measured) if measured else (self.total,)
        for c in targets:
            c.errors += 1
            if overloaded:
                c.overloaded += 1


class ProcessRunner:
    """Runs ``config.workers`` traders of process ``proc`` until the schedule ends."""

    def __init__(self, config: HarnessConfig, proc: int, new_client: ClientFactory, on_progress: ProgressSink | None = None) -> None:
        self.config = config
        self.proc = proc
        self.new_client = new_client
        self.on_progress = on_progress
        self.tally = Tally()
        self.clients: list[TraderClient] = []
        self.flows: list[OrderFlow] = []
        self.prepared: list[deque[Batch]] = []
        self.instruments: list[Instrument] = []
        self.start = self.measure_start = self.end = 0.0
        self.error = ""  # what ended the run early (the server died or stopped answering); "" when it ran to the end
        self.cpu_at_measure = self.cpu_at_end = 0.0  # this process's CPU seconds when the window starts and ends

    async def prepare(self) -> None:
        """Connect every trader's client and build its order flow (``NotConnected`` if the server is down)."""
        config = self.config
        for i in range(config.workers):
            client = self.new_client(config.trader_id(self.proc, i))
            self.clients.append(client)
            await client.connect()
        self.instruments = select_listed(await self.clients[0].instruments(), config.symbols)
        # Each flow names its orders after its own trader id: with one key for every trader (dex-trader --key), the
        # server acts as the key's trader and the client order ids still differ from one flow to the next.
        self.flows = [
            OrderFlow(config.seed, config.trader_id(self.proc, i), self.instruments, config.stream_id(self.proc, i))
            for i in range(len(self.clients))
        ]
        per_trader = self.batches_to_prepare()
        self.prepared = [deque(self.write_batch(flow) for _ in range(per_trader)) for flow in self.flows]

    def write_batch(self, flow: OrderFlow) -> Batch:
        """The flow's next ``batch`` positions, as the workload sends them."""
        if self.config.workload == "live":
            return Planned.of(flow, self.config.batch)
        return Prepared.of(flow.batch(self.config.batch))
        gc_tuning.tune()  # the prepared batches are frozen: no collection walks them during the run

    def batches_to_prepare(self) -> int:
        """Batches per trader written before the run: an open loop's whole schedule, a closed loop's estimate."""
        config = self.config
        span = config.warmup_s + config.duration_s
        most = PREPARE_MAX // (config.workers * config.batch) + 1
        if config.batch_interval_s:
            return min(most, int(span / config.batch_interval_s) + 1)
        rate = min(PREPARE_RATE / config.batch, PREPARE_REQUESTS)  # batches/s of the whole process
        return min(most, int(span * rate / config.workers) + 1)

    async def close(self) -> None:
        if self.error:  # the server is gone: close them all at once, each bounded in time
            await asyncio.gather(*(close_quietly(client) for client in self.clients))
            return
        for client in self.clients:
            await client.close()

    async def run(self, start: float) -> dict[str, Any]:
        """Run from ``start`` (monotonic) to the end of the schedule; return this process's result."""
        config = self.config
        self.start = start
        self.measure_start = start + config.warmup_s
        self.end = self.measure_start + config.duration_s
        loop = asyncio.get_running_loop()
        pacer = Pacer(loop)
        progress = loop.create_task(self._report_progress()) if self.on_progress is not None else None
        window = loop.create_task(self._cpu_at_measure(pacer))
        try:
            await pacer.sleep_until(start)
            self.tally.last_answer = time.monotonic()
            async with asyncio.TaskGroup() as group:
                traders = [
                    group.create_task(self._trade(client, flow, prepared, self.proc * config.workers + i, pacer))
                    for i, (client, flow, prepared) in enumerate(zip(self.clients, self.flows, self.prepared, strict=True))
                ]
                watchdog = group.create_task(self._watch())
                await asyncio.wait(traders)
                self.cpu_at_end = cost.cpu_s()
                watchdog.cancel()
        except BaseExceptionGroup as group_error:
            cause = _first_cause(group_error)
            if not isinstance(cause, NotConnected):
                raise cause from None
            self.error = f"{type(cause).__name__}: {cause}"
        finally:
            window.cancel()
            pacer.close()
            if progress is not None:
                progress.cancel()
        if self.on_progress is not None:
            self.on_progress({**self.snapshot(), "final": True})
        return self.result()

    async def _trade(self, client: TraderClient, flow: OrderFlow, prepared: deque[Batch], index: int, pacer: Pacer) -> None:
        config = self.config
        tally = self.tally
        interval = config.batch_interval_s
        first = self.start + interval * index / config.traders
        end = self.end
        measure_start = self.measure_start
        monotonic = time.monotonic
        k = 0
        while True:
            if interval:
                intended = first + k * interval
                if intended >= end:
                    return
                k += 1
            elif monotonic() >= end:
                return
            if prepared:
                planned = prepared.popleft()
            else:
                tally.generated_live += 1
                planned = self.write_batch(flow)
            batch, targets = planned.resolve(flow)
            if not batch.count:
                continue  # every slot was a cancel or replace and nothing rests yet
            if interval:
                await pacer.sleep_until(intended)
                sent = monotonic()
            else:
                intended = sent = monotonic()
            measured = intended >= measure_start
            outcomes = await self._submit(client, batch, measured)
            if outcomes is None:
                continue
            done = monotonic()
            planned.settle(flow, targets, outcomes)
            tally.record(batch, outcomes, done - intended, done - sent, measured)
            if measured:
                tally.last_reply = max(tally.last_reply, done)

    async def _cpu_at_measure(self, pacer: Pacer) -> None:
        await pacer.sleep_until(self.measure_start)
        self.cpu_at_measure = cost.cpu_s()

    async def _watch(self) -> None:
        """Raise ``ServerLost`` when requests wait ``STALL_S`` without a reply and the server does not answer a probe."""
        tally = self.tally
        while True:
            await asyncio.sleep(STALL_S / 4)
            waited = time.monotonic() - tally.last_answer
            if not tally.in_flight or waited < STALL_S:
                continue
            probe = self.new_client(f"{self.config.trader_prefix}-watchdog-{self.proc}")
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    await probe.connect()
                    await probe.stats()
            except (ExchangeError, OSError, TimeoutError) as exc:
                why = "no answer" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
                raise ServerLost(f"no reply for {waited:.1f}s, and the server does not answer ({why})") from None
            finally:
                await close_quietly(probe)
            tally.last_answer = time.monotonic()  # alive, only slow: wait another STALL_S before asking again

    async def _submit(self, client: TraderClient, batch: Prepared, measured: bool) -> Outcomes | None:
        """The outcomes, retrying ``Overloaded`` (nothing was applied) until the run ends; None if dropped."""
        backoff = _BACKOFF_START_S
        tally = self.tally
        while True:
            try:
                tally.in_flight += 1
                try:
                    outcomes = await client.submit_orders(batch.data)
                finally:
                    tally.in_flight -= 1
                tally.last_answer = time.monotonic()
            except NotConnected:
                raise
            except Overloaded as exc:
                self.tally.error(exc, measured, overloaded=True)
                if time.monotonic() >= self.end:
                    return None  # never applied: dropping it keeps reconciliation exact
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            except ExchangeError as exc:
                self.tally.error(exc, measured, overloaded=False)
                return None
            if len(outcomes) != batch.count:
                self.tally.error(ExchangeError(f"{len(outcomes)} outcomes for {batch.count} commands"), measured, overloaded=False)
                return None
            return outcomes

    async def _report_progress(self) -> None:
        assert self.on_progress is not None
        tick = self.start
        while True:
            tick += _PROGRESS_EVERY_S
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            self.on_progress(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """Progress so far (the window histogram restarts at every snapshot)."""
        tally = self.tally
        now = time.monotonic()
        window, tally.window_us = tally.window_us, Histogram()
        return {
            "kind": "progress",
            "proc": self.proc,
            "elapsed_s": now - self.start,
            "measuring": now >= self.measure_start,
            "total": tally.total.to_dict(),
            "window_us": window.to_dict(),
            "latency_us": tally.latency_us.to_dict(),
        }

    def result(self) -> dict[str, Any]:
        tally = self.tally
        elapsed = max(tally.last_reply, self.end) - self.measure_start if tally.measured.requests else 0.0
        return {
            "proc": self.proc,
            "total": tally.total.to_dict(),
            "measured": tally.measured.to_dict(),
            "latency_us": tally.latency_us.to_dict(),
            "service_latency_us": tally.service_us.to_dict(),
            "measured_elapsed_s": elapsed,
            "first_error": tally.first_error,
            "rejected_by_reason": tally.rejected_by_reason,
            "generated_live": tally.generated_live,
            "error": self.error,
            "cost": {
                "cpu_s": max(0.0, self.cpu_at_end - self.cpu_at_measure) if self.cpu_at_measure else 0.0,
                "peak_rss_bytes": cost.peak_rss_bytes(),
                "request_bytes": tally.request_bytes,
            },
        }


async def close_quietly(client: TraderClient) -> None:
    """Close ``client``, bounded in time and whatever it raises: its server may be gone."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await client.close()


def select_listed(listed: Sequence[Instrument], symbols: Sequence[str]) -> list[Instrument]:
    """The server's instruments named in ``symbols`` (all of them when empty)."""
    if not symbols:
        if not listed:
            raise ConfigError("the server lists no instruments")
        return list(listed)
    by_name = {i.symbol: i for i in listed}
    unknown = [s for s in symbols if s not in by_name]
    if unknown:
        raise ConfigError(f"the server does not list {', '.join(unknown)}; it lists {', '.join(by_name) or 'nothing'}")
    return [by_name[s] for s in symbols]


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended a task group: ``NotConnected`` first, then anything else."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, NotConnected):
            return exc
    for exc in leaves:
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return leaves[0] if leaves else group
