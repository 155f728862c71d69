"""The gateway: the only place where asyncio meets the engine.

Every transport server of a process submits through one ``Gateway``; an
order sent over one transport can trade against an order sent over another.

Invariants:

* One writer. Batches are applied to the engine in arrival order by a single
  task; nothing else mutates the engine. Queries read the engine between
  batches (the event loop never interleaves them with a batch).
* Write-ahead. Every command that reached the engine is appended to the
  journal before its reply is released. With ``fsync="batch"`` the reply also
  waits for an fsync; commands that arrive while one fsync runs share the next
  one (group commit), so the engine never waits for the disk.
* Bounded. At most ``buffer`` commands wait in the queue; a submission that
  would exceed it is refused whole with ``Overloaded`` (reason ``OVERLOADED``):
  nothing of it was applied, so a retry is safe. Nothing accepted is dropped.
* Market data is published when a batch is applied (it may run ahead of
  durability by one fsync group; a restarted server publishes a fresh
  snapshot first).
* Trades are timed per group: one wall-clock read for each group that traded
  (never per command), clamped never to go back (``MarketStats.stamp``),
  journalled as a ``W`` record before the group's records and saved with each
  snapshot, so candles rebuilt at a restart equal the ones built live
  (``transports.core.candles``).
* Bounded state. Every ``snapshot_every`` commands or ``snapshot_interval_s``
  seconds (whichever first; 0 turns either off) the writer, between two
  groups, snapshots the engine and truncates the journal
  (``Journal.rotate``); a start loads the snapshot and replays only the tail.
  The snapshot is synchronous: nothing else mutates the engine meanwhile, so
  it is exact, and the event loop pauses for its duration (docs/state.md has
  the measured pause per resting order).
* Every command exactly once (docs/exactly-once.md). The engine's
  de-duplication window is counted in commands (deterministic, in the
  snapshot, rebuilt by replay); the gateway adds its duration: a retried
  request id whose first answer is older than ``dedup_window_s`` is refused
  ``DUPLICATE_REQUEST_ID`` instead of answered (nothing applied either way).
  Ages are known to within a second (one time mark per second at most, each
  carrying the time of its newest entry, so an answer is repeated for at least
  ``dedup_window_s``); answers recovered at start count as given at the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import (
    AddInstrument,
    BookDepth,
    CancelOrder,
    CancelReason,
    Command,
    Engine,
    Event,
    Instrument,
    MalformedMessage,
    MassCancel,
    OrderRejected,
    OrderView,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    TradeExecuted,
)
from transports.codec.lean import OutcomeColumns
from transports.core import gc_tuning, usage
from transports.core.apply import MarketBatch, Tally, apply_commands
from transports.core.candles import MarketStats
from transports.core.fills import FillsHub, FillSubscription
from transports.core.histogram import Histogram
from transports.core.journal import (
    FsyncPolicy,
    Journal,
    canonical_state,
    clock_record,
    command_records,
    plan_recovery,
    replay_records,
)
from transports.core.marketdata import MarketDataHub, Subscription

_log = logging.getLogger("dex.gateway")

Replies = list[list[Event]]
_COMMAND_TYPES = frozenset({PlaceOrder, CancelOrder, ReplaceOrder, MassCancel, AddInstrument})
_REJECT_NAMES = {int(r): r.name for r in RejectReason}
_CANCEL_NAMES = {int(r): r.name for r in CancelReason}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    buffer: int = 100_000  # most commands waiting to be applied
    journal: str | None = None  # path; None = no journal (nothing survives a restart)
    fsync: FsyncPolicy = "batch"
    fsync_interval_ms: int = 10  # for fsync="interval"
    max_group: int = 20_000  # most commands applied between two yields to the event loop
    md_queue: int = 10_000  # per-subscriber market-data queue before it is told "gap"
    # Snapshot + journal truncation (only with a journal): after this many commands or seconds, whichever first; 0 = never.
    # The defaults bound a restart to one snapshot load plus at most this many commands of replay (docs/state.md).
    snapshot_every: int = 10_000_000
    snapshot_interval_s: float = 600.0
    # How long a retried request id is answered with its first outcome (the count bound is Engine.dedup_window); 0 = no
    # time bound. JetStream's duplicate window defaults to the same two minutes.
    dedup_window_s: float = 120.0


@dataclass(eq=False)
class _Pending:
    commands: Sequence[Command]
    future: asyncio.Future[Replies]
    transport: str
    started_ns: int
    record: bytes | None  # the journal record of these commands, when the caller already holds it
    outcomes: OutcomeColumns | None  # lean: each command's outcome for its sender, instead of its events
    replies: Replies = field(default_factory=list)


class GatewayStats:
    """Counters a user watches, and what the harness reconciles against."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()  # by command kind
        self.by_transport: Counter[str] = Counter()  # commands by transport
        self.orders_by_transport: Counter[str] = Counter()  # place commands by transport (the web screen's orders/s)
        self.orders = 0  # place commands
        self.accepted = 0
        self.rejected: Counter[str] = Counter()  # by reason name
        self.rejected_by: Counter[tuple[str, str]] = Counter()  # by (transport, reason name)
        self.transport_errors: Counter[tuple[str, str]] = Counter()  # refused before the engine, by (transport, reason name)
        self.limits_exceeded: Counter[tuple[str, str]] = Counter()  # of those, by (transport, limit name: docs/limits.md)
        self.trades = 0
        self.repeated = 0  # retried request ids answered from the de-duplication window
        self.cancelled: Counter[str] = Counter()  # by cancel reason
        self.overloaded = 0  # submissions refused whole
        self.batches = 0
        self.fsyncs = 0
        self.fsync_us = Histogram()
        self.latency_us = Histogram()  # submit -> reply, per command
        self.latency_by_transport: dict[str, Histogram] = {}
        # Lean order entry as encoded (RequestHandler.orders): bytes per order each way, whatever frames the wire adds.
        self.lean_bytes_in = 0
        self.lean_bytes_out = 0
        self.lean_commands = 0  # the commands those requests carried (a DHT node sees its own share of the traffic)

    def refused(self, transport: str, reason: str, limit: str = "") -> None:
        """A request (or connection) a transport refused before it reached the engine (undecodable, unidentified,
        over ``limit``, ...)."""
        self.transport_errors[(transport, reason)] += 1
        if limit:
            self.limits_exceeded[(transport, limit)] += 1

    def add(self, tally: Tally, transport: str, commands: int) -> None:
        """Merge one submission's tally (counted by ``apply_commands``)."""
        self.orders += tally.places
        kinds = self.commands
        for name, value in (
            ("place", tally.places),
            ("cancel", tally.cancels),
            ("replace", tally.replaces),
            ("mass_cancel", tally.mass_cancels),
            ("add_instrument", tally.add_instruments),
        ):
            if value:
                kinds[name] += value
        self.by_transport[transport] += commands
        if tally.places:
            self.orders_by_transport[transport] += tally.places
        self.accepted += tally.accepted
        self.trades += tally.trades
        self.repeated += tally.repeated
        for code, value in tally.rejected.items():
            reason = _REJECT_NAMES[code]
            self.rejected[reason] += value
            self.rejected_by[(transport, reason)] += value
        for code, value in tally.cancelled.items():
            self.cancelled[_CANCEL_NAMES[code]] += value


# A fault-test hook, off unless a test sets it: the process SIGKILLs itself once the command with this request id is in
# the journal (and fsynced, with fsync="batch") but before its reply is released (tests/faults/test_exactly_once.py).
_KILL_AFTER_JOURNAL = int(os.environ.get("DEX_TEST_KILL_AFTER_JOURNAL", "0") or 0)


def _restored_market(saved: bytes) -> MarketStats:
    """The candles saved with a snapshot; empty (logged) when it has none or this version cannot read them."""
    if not saved:
        return MarketStats()
    try:
        return MarketStats.decode(saved)
    except (ValueError, KeyError, TypeError) as exc:
        _log.warning("market_state_ignored", extra={"why": repr(exc)})
        return MarketStats()


def _kill_if_asked(group: list[_Pending]) -> None:
    for item in group:
        if any(getattr(command, "request_id", 0) == _KILL_AFTER_JOURNAL for command in item.commands):
            _log.warning("test_kill_after_journal", extra={"request_id": _KILL_AFTER_JOURNAL})
            os.kill(os.getpid(), signal.SIGKILL)


def _by_second(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    """``(transport, name) -> count`` summed over transports: ``name -> count``."""
    out: Counter[str] = Counter()
    for (_, name), value in counts.items():
        out[name] += value
    return dict(out)


def _log_rejects(commands: Sequence[Command], replies: Replies, transport: str) -> None:
    """One debug line per rejected command (only when debug logging is on: it costs per event)."""
    for events in replies[-len(commands) :]:
        for event in events:
            if type(event) is OrderRejected:
                assert isinstance(event, OrderRejected)
                _log.debug(
                    "order_rejected",
                    extra={
                        "transport": transport,
                        "trader": event.trader,
                        "client_order_id": event.client_order_id,
                        "order_id": event.order_id,
                        "symbol": event.symbol,
                        "reason": event.reason.name,
                        "detail": event.message,
                    },
                )


class Gateway:
    def __init__(self, engine: Engine | None = None, config: GatewayConfig | None = None) -> None:
        self.engine = engine if engine is not None else Engine()
        self.config = config if config is not None else GatewayConfig()
        self.stats = GatewayStats()
        self.marketdata = MarketDataHub(self.engine.depth)
        self.fills = FillsHub()  # each trader's own fills (transports.core.fills)
        self.market_stats = MarketStats()  # candles, timed trades, 24 h figures (transports.core.candles)
        self.journal: Journal | None = None
        self.recovered_commands = 0
        self.truncated_bytes = 0
        self.snapshots = 0  # written by this process
        # Collect every group's book deltas even with nobody subscribed here (a shard: its fronts mirror the books).
        self.collect_market_data = False
        self.snapshot_pause_ms = 0.0  # the last one's pause of the writer
        self._since_snapshot = 0  # commands applied since the last snapshot (or start)
        self._snapshot_at = time.monotonic()
        self._pending: deque[_Pending] = deque()
        self._queued = 0  # commands in _pending
        self._wake = asyncio.Event()
        self._unsynced: list[list[_Pending]] = []
        self._syncing: list[_Pending] = []  # taken by the syncer, fsync in flight
        self._sync_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # (monotonic time, engine.dedup_position then), at most one a second: window entries below a mark older than
        # dedup_window_s are too old to answer; _answer_floor is the position of the newest such mark.
        self._window_marks: deque[tuple[float, int]] = deque()
        self._mark_started = 0.0
        self._answer_floor = 0
        self._running = False
        self._closing = False

    # ------------------------------------------------------------ lifecycle
    async def start(self, instruments: Iterable[Instrument] = ()) -> None:
        """Recover the journal (if any), start the writer, and list missing instruments."""
        if self.config.journal:
            self.journal = Journal(self.config.journal, self.config.fsync)
            self._recover(self.journal)
        self._mark_started = time.monotonic()
        self._window_marks.append((self._mark_started, self.engine.dedup_position))
        self._running = True
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._writer(), name="gateway-writer"))
        if self.journal is not None and self.config.fsync != "off":
            syncer = self._batch_syncer() if self.config.fsync == "batch" else self._interval_syncer()
            self._tasks.append(loop.create_task(syncer, name="gateway-fsync"))
        gc_tuning.tune()  # after recovery: the restored books are frozen out of every later collection
        missing = [AddInstrument(i) for i in instruments if self.engine.instrument(i.symbol) is None]
        if missing:
            await self.submit(missing, "config")

    def _recover(self, journal: Journal) -> None:
        """Load the snapshot (if one applies) and replay the journal's tail, logging progress."""
        started = time.monotonic()
        recovery = journal.recover()
        self.truncated_bytes = recovery.truncated_bytes
        plan = plan_recovery(journal.path, recovery.records)
        if plan.note and plan.note != "no snapshot":
            _log.warning("snapshot_ignored", extra={"journal": str(journal.path), "why": plan.note})
        if plan.snapshot is not None:
            self.engine = plan.snapshot.restore()
            self.marketdata = MarketDataHub(self.engine.depth)  # nobody subscribed yet: the hub follows the restored engine
            self.market_stats = _restored_market(plan.snapshot.market)
            _log.info(
                "snapshot_loaded",
                extra={
                    "journal": str(journal.path),
                    "engine_seq": plan.snapshot.seq,
                    "snapshot_bytes": len(plan.snapshot.body),
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
        replay_started = time.monotonic()

        def progress(done: int, total: int, commands: int) -> None:
            elapsed = time.monotonic() - replay_started
            _log.info(
                "journal_replay",
                extra={"records": f"{done}/{total}", "commands": commands, "commands_per_s": int(commands / elapsed) if elapsed else 0},
            )

        self.recovered_commands = replay_records(self.engine, plan.tail, progress, self.market_stats.add_trades)
        _log.info(
            "journal_recovered",
            extra={
                "journal": str(journal.path),
                "commands": self.recovered_commands,
                "skipped_records": plan.skipped,
                "snapshot_seq": plan.snapshot.seq if plan.snapshot is not None else None,
                "truncated_bytes": self.truncated_bytes,
                "engine_seq": self.engine.seq,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def write_snapshot(self) -> None:
        """Snapshot the engine and truncate the journal before it (``Journal.rotate``).

        Synchronous on purpose: call it only between groups (the writer does;
        so may any code on the event loop, which never runs inside a group).
        """
        journal = self.journal
        if journal is None:
            return
        started = time.perf_counter()
        body, state_hash = canonical_state(self.engine)
        encoded = time.perf_counter()
        dropped = journal.records
        journal.rotate(self.engine.seq, state_hash, body, self.market_stats.encode())
        done = time.perf_counter()
        self.snapshots += 1
        self.snapshot_pause_ms = (done - started) * 1000
        self._since_snapshot = 0
        self._snapshot_at = time.monotonic()
        _log.info(
            "snapshot_written",
            extra={
                "engine_seq": self.engine.seq,
                "snapshot_bytes": len(body),
                "journal_records_dropped": dropped,
                "encode_ms": round((encoded - started) * 1000, 1),
                "write_ms": round((done - encoded) * 1000, 1),
            },
        )

    def _snapshot_hook(self, commands: int) -> None:
        """Between two groups: snapshot if ``snapshot_every`` commands or ``snapshot_interval_s`` seconds have passed."""
        if self.journal is None:
            return
        self._since_snapshot += commands
        every, interval = self.config.snapshot_every, self.config.snapshot_interval_s
        if (every and self._since_snapshot >= every) or (interval and time.monotonic() - self._snapshot_at >= interval):
            self.write_snapshot()

    async def stop(self) -> None:
        """Apply what is queued, make it durable, write a checkpoint, and stop."""
        if not self._running:
            return
        self._closing = True
        # Wait until every queued command is applied and every written group
        # is released (including a group whose fsync is in flight right now).
        while self._pending or self._unsynced or self._syncing:
            if any(task.done() for task in self._tasks):
                break  # a dead writer or syncer would never drain; fail the waiters below
            self._wake.set()
            self._sync_wake.set()
            await asyncio.sleep(0.001)
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        leftover = [*self._pending, *(item for group in [*self._unsynced, self._syncing] for item in group)]
        for item in leftover:
            if not item.future.done():
                item.future.set_exception(Overloaded("the gateway stopped before this submission was durable"))
        if self.journal is not None:
            self.journal.checkpoint(self.engine.seq, self.engine.state_hash())
            self.journal.close()

    # --------------------------------------------------------------- submit
    async def submit(
        self,
        commands: Sequence[Command],
        transport: str = "inproc",
        record: bytes | None = None,
        outcomes: OutcomeColumns | None = None,
    ) -> Replies:
        """Apply ``commands`` in order; return each command's events once durable.

        ``record`` is the journal record of exactly these commands when the
        caller already holds it (``journal.trader_batch_record`` of the bytes
        it decoded); otherwise the writer encodes one. With ``outcomes`` (the
        lean path) the writer records each command's outcome there instead of
        keeping its events, and the replies returned are empty. Raises
        ``Overloaded`` (nothing applied) when the queue is full.
        """
        if not commands:
            return []
        return await self.enqueue(commands, transport, record, outcomes)

    def enqueue(
        self,
        commands: Sequence[Command],
        transport: str = "inproc",
        record: bytes | None = None,
        outcomes: OutcomeColumns | None = None,
    ) -> asyncio.Future[Replies]:
        """``submit`` without a coroutine: the future of the replies, for a caller that answers from a callback (a
        shard: no task per request). Raises what ``submit`` raises, at once; ``commands`` is not empty."""
        for command in commands:
            if type(command) not in _COMMAND_TYPES:
                raise MalformedMessage(f"not a command: {type(command).__name__}")
        if not self._running or self._closing:
            raise Overloaded("the gateway is not running")
        if self._queued + len(commands) > self.config.buffer:
            self.stats.overloaded += 1
            refused = self.stats.overloaded
            if refused & (refused - 1) == 0:  # the 1st, 2nd, 4th, 8th ...: a storm cannot flood the log
                _log.warning("gateway_overloaded", extra={"transport": transport, "queued": self._queued, "refused_so_far": refused})
            raise Overloaded(f"queue full ({self._queued} commands waiting); retry later")
        future: asyncio.Future[Replies] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(commands, future, transport, time.perf_counter_ns(), record, outcomes))
        self._queued += len(commands)
        self._wake.set()
        return future

    @property
    def queue_depth(self) -> int:
        return self._queued

    def queued_by_transport(self) -> Counter[str]:
        """Commands waiting in the queue, by the transport that submitted them (a walk of the queue: for a panel
        that samples it, never for the order path)."""
        out: Counter[str] = Counter()
        for item in self._pending:
            out[item.transport] += len(item.commands)
        return out

    # --------------------------------------------------------------- writer
    def _answerable_from(self) -> int:
        """The first window position young enough to answer a retry from (``dedup_window_s``)."""
        duration = self.config.dedup_window_s
        if not duration:
            return 0
        horizon = time.monotonic() - duration
        marks = self._window_marks
        while marks and marks[0][0] <= horizon:
            self._answer_floor = marks.popleft()[1]
        return self._answer_floor

    def _mark_window(self) -> None:
        """After a group: the time by which the window's entries so far existed (see ``_answerable_from``)."""
        position = self.engine.dedup_position
        marks = self._window_marks
        if not self.config.dedup_window_s or (marks and marks[-1][1] == position):
            return
        now = time.monotonic()
        if marks and now - self._mark_started < 1.0:
            marks[-1] = (now, position)  # later than some entries it covers: they are answered a little longer
        else:
            marks.append((now, position))
            self._mark_started = now

    async def _writer(self) -> None:
        engine = self.engine
        stats = self.stats
        max_group = self.config.max_group
        market = MarketBatch()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            group: list[_Pending] = []
            records: list[bytes] = []
            taken = 0
            journal = self.journal
            debug = _log.isEnabledFor(logging.DEBUG)
            market.wanted = self.collect_market_data or self.marketdata.has_subscribers or self.fills.has_subscribers
            answerable_from = self._answerable_from()
            while self._pending and taken < max_group:
                item = self._pending.popleft()
                group.append(item)
                commands = item.commands
                taken += len(commands)
                tally = Tally()
                apply_commands(engine, commands, item.replies, tally, market, item.outcomes, answerable_from)
                stats.add(tally, item.transport, len(commands))
                if debug and tally.rejected:
                    _log_rejects(commands, item.replies, item.transport)
                if journal is not None:
                    records.extend([item.record] if item.record is not None else command_records(commands))
            self._queued -= taken
            self._mark_window()
            stats.batches += 1
            if market.trades:
                # One wall-clock read per group that traded: the trades' time, journalled before the group's records.
                traded_at = self.market_stats.stamp(time.time_ns() // 1_000_000)
                self.market_stats.add_trades(market.trades, traded_at)
                if journal is not None:
                    records.insert(0, clock_record(traded_at))
            self._publish(market)
            if journal is not None:
                journal.append(records)
            if journal is not None and self.config.fsync == "batch":
                self._unsynced.append(group)
                self._sync_wake.set()
            else:
                self._release(group)
            self._snapshot_hook(taken)
            await asyncio.sleep(0)  # let transports enqueue more before the next group

    def _publish(self, market: MarketBatch) -> None:
        """The group's market data: its trades in order, then one delta per touched level."""
        hub = self.marketdata
        if self.fills.has_subscribers:
            self.fills.publish(market.trades)
        # One clock read per group, only when someone receives its updates: how late a subscriber sees them.
        applied = time.monotonic_ns() if hub.has_subscribers else 0
        hub.publish_all(market.trades, applied)
        hub.publish_all(market.deltas.values(), applied)
        hub.skip(market.unsent)
        market.clear()

    def _release(self, group: list[_Pending]) -> None:
        if _KILL_AFTER_JOURNAL:
            _kill_if_asked(group)
        now = time.perf_counter_ns()
        latency = self.stats.latency_us
        by_transport = self.stats.latency_by_transport
        for item in group:
            if not item.future.done():
                item.future.set_result(item.replies)
            micros = (now - item.started_ns) // 1000
            latency.record(micros, len(item.commands))
            hist = by_transport.get(item.transport)
            if hist is None:
                hist = by_transport[item.transport] = Histogram()
            hist.record(micros, len(item.commands))

    async def _batch_syncer(self) -> None:
        """Group commit: one fsync covers every group written before it started."""
        loop = asyncio.get_running_loop()
        journal = self.journal
        assert journal is not None
        while True:
            if not self._unsynced:
                self._sync_wake.clear()
                await self._sync_wake.wait()
                continue
            groups, self._unsynced = self._unsynced, []
            self._syncing = [item for group in groups for item in group]
            started = time.perf_counter_ns()
            await loop.run_in_executor(None, journal.sync)
            self.stats.fsyncs += 1
            self.stats.fsync_us.record((time.perf_counter_ns() - started) // 1000)
            self._release(self._syncing)
            self._syncing = []

    async def _interval_syncer(self) -> None:
        loop = asyncio.get_running_loop()
        journal = self.journal
        assert journal is not None
        while True:
            await asyncio.sleep(self.config.fsync_interval_ms / 1000)
            started = time.perf_counter_ns()
            await loop.run_in_executor(None, journal.sync)
            self.stats.fsyncs += 1
            self.stats.fsync_us.record((time.perf_counter_ns() - started) // 1000)

    # -------------------------------------------------------------- queries
    def instrument(self, symbol: str) -> Instrument | None:
        return self.engine.instrument(symbol)

    @property
    def instruments(self) -> list[Instrument]:
        return self.engine.instruments

    def depth(self, symbol: str, levels: int = 10) -> BookDepth | None:
        return self.engine.depth(symbol, levels)

    def order_status(self, trader: str, order_id: int) -> OrderView | None:
        return self.engine.order_status(trader, order_id)

    def open_orders(self, trader: str, symbol: str = "") -> list[OrderView]:
        return self.engine.open_orders(trader, symbol)

    def recent_trades(self, symbol: str, limit: int = 100) -> list[TradeExecuted]:
        return self.engine.recent_trades(symbol, limit)

    def subscribe(self, symbols: Iterable[str]) -> Subscription:
        """Market data for ``symbols``: a snapshot each, then sequenced updates. Unknown symbols raise KeyError."""
        return self.marketdata.subscribe(symbols, self.config.md_queue)

    def unsubscribe(self, sub: Subscription) -> None:
        self.marketdata.unsubscribe(sub)

    def subscribe_fills(self, trader: str) -> FillSubscription:
        """``trader``'s own fills from now on, as maker and as taker (private: nobody else's)."""
        return self.fills.subscribe(trader, self.config.md_queue)

    def unsubscribe_fills(self, sub: FillSubscription) -> None:
        self.fills.unsubscribe(sub)

    def stats_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "orders": s.orders,
            "commands": dict(s.commands),
            "accepted": s.accepted,
            "rejected": sum(s.rejected.values()),
            "rejected_by_reason": dict(s.rejected),
            "trades": s.trades,
            "repeated_requests": s.repeated,
            "cancelled_by_reason": dict(s.cancelled),
            "by_transport": dict(s.by_transport),
            "overloaded": s.overloaded,
            "refused_by_reason": _by_second(s.transport_errors),
            "limits_exceeded": _by_second(s.limits_exceeded),
            "queue_depth": self._queued,
            "batches": s.batches,
            "fsyncs": s.fsyncs,
            "engine_seq": self.engine.seq,
            "recovered_commands": self.recovered_commands,
            "market_data_published": self.marketdata.published,
            "market_data_subscribers": self.marketdata.subscriber_count,
            "market_data_gaps": self.marketdata.gap_count(),
            "latency_us": s.latency_us.summary(),
            "fsync_us": s.fsync_us.summary(),
            # Per process, not per gateway: servers sharing a process (turbo-dex --transports ...) report the same.
            "process_cpu_us": usage.cpu_us(),
            "peak_rss_bytes": usage.peak_rss_bytes(),
            "lean_bytes_in": s.lean_bytes_in,
            "lean_bytes_out": s.lean_bytes_out,
            "lean_commands": s.lean_commands,
        }
