"""``FrontGateway``: the gateway of a front, which holds no book and routes every command to its symbol's shard.

Every transport server takes it where it would take a ``Gateway``, so a front
serves each wire with the same request handler, limits and authentication.
Invariants:

* Routing: a place goes to its symbol's owner (``ShardMap``); a cancel or a
  replace to the shard that issued its order id (``shard_of_id``), or by
  client order id: a replace to its symbol's owner, a cancel (which names no
  symbol) to every shard, answered by the one that held the order; a mass
  cancel of one symbol to its owner, of every symbol to every shard (its
  outcome merged: one ``CANCELLED`` with the total cancelled).
* Order: a batch is split per shard, the parts sent at once, and the outcomes
  (lean) or events (every other encoding) returned in the order the commands
  were sent. Within a shard the commands keep their order, so two commands on
  one symbol are applied as sent; commands on different shards are not
  ordered against each other (nothing can observe it but the clock).
* A part whose shard is unavailable is answered per command (rejected,
  ``OVERLOADED``); the other parts stand. Nothing is applied twice and nothing
  is reported applied that was not. When every part fails, the whole batch is
  refused (``ShardUnavailable``, ``OVERLOADED``: retry), as a full gateway's is.
* Market data: each shard's groups (``relay``) feed a book mirror and the
  front's own hub, keeping the shard's ``md_seq``; a missed group makes the
  front fetch the symbol's snapshot and its subscribers resynchronise (a gap,
  then a snapshot), never read a partial book. Book queries read the mirror,
  as of the last group this front received.
* Not served by a front yet (docs/shards.md, "Status"): ``add_instrument``,
  order status and open-order queries, private fills, candles.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from engine import (
    AddInstrument,
    BookDelta,
    CancelOrder,
    Command,
    Engine,
    Event,
    ExchangeError,
    Instrument,
    MalformedMessage,
    MassCancel,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TradeExecuted,
)
from engine.queries import BookDepth, L2Level, OrderView
from transports.codec import lean
from transports.codec.compact import needs_compact
from transports.codec.market_messages import BookSnapshot, MarketUpdate, PublicTrade
from transports.codec.proto_codec import decode_market_data, decode_replies, decode_stats
from transports.core.apply import Tally
from transports.core.gateway import Gateway, GatewayConfig, Replies
from transports.core.journal import command_records
from transports.core.loop_socket import LoopSocket
from transports.core.marketdata import MarketDataHub
from transports.sharding import link, relay
from transports.sharding.shard_map import ShardMap, shard_of_id

_log = logging.getLogger("dex.front")
_NOT_ON_FRONT = "is not served by a front yet: ask the single-process exchange (docs/shards.md, 'Status')"
_STATS_EVERY_S = 0.2
_BUY = int(Side.BUY)
_START_TIMEOUT_S = 30.0
_EXCHANGE_COUNTS = ("orders", "commands", "accepted", "rejected", "rejected_by_reason", "trades", "cancelled_by_reason")
Answer = tuple[lean.Outcomes, int, int] | list[Event] | ExchangeError  # one shard's answer to one command
_SHARD_STATS = ("engine_seq", "orders", "accepted", "trades", "process_cpu_us", "queue_depth")  # a front's stats, per shard


class BookMirror:
    """Level-2 books rebuilt from shards' market data: a snapshot, then every delta after it."""

    def __init__(self) -> None:
        self._books: dict[str, tuple[dict[int, L2Level], dict[int, L2Level]]] = {}
        self._seq: dict[str, int] = {}
        self._last: dict[str, int] = {}

    def reset(self, depth: BookDepth) -> None:
        self._books[depth.symbol] = ({lv.price: lv for lv in depth.bids}, {lv.price: lv for lv in depth.asks})
        self._seq[depth.symbol] = depth.seq
        self._last[depth.symbol] = depth.last_price

    def level(self, symbol: str, seq: int, side: int, price: int, qty: int, order_count: int) -> None:
        """One delta: the level's new state (``qty`` 0: gone)."""
        levels = self._books[symbol][0 if side == _BUY else 1]
        if qty:
            levels[price] = L2Level(price, qty, order_count)
        else:
            levels.pop(price, None)
        self._seq[symbol] = seq

    def trade(self, symbol: str, seq: int, price: int) -> None:
        self._last[symbol] = price
        self._seq[symbol] = seq

    def depth(self, symbol: str, levels: int = 10) -> BookDepth | None:
        book = self._books.get(symbol)
        if book is None:
            return None
        bids = [book[0][p] for p in heapq.nlargest(levels, book[0])]
        asks = [book[1][p] for p in heapq.nsmallest(levels, book[1])]
        return BookDepth(symbol, self._seq[symbol], bids, asks, self._last[symbol])


class FrontHub(MarketDataHub):
    """The front's hub: it numbers nothing itself, it follows each shard's sequenced stream (``relay`` frames)."""

    def __init__(self, mirror: BookMirror, resync: Callable[[str], None]) -> None:
        super().__init__(mirror.depth)
        self.mirror = mirror
        self._resync = resync  # asks the symbol's shard for a fresh snapshot
        self._restarted: set[str] = set()  # symbols whose shard restarted, until their next snapshot

    def group(self, frame: bytes) -> None:
        """Apply one shard group (``relay.decode_group``) to the mirror, and hand its updates to subscribers."""
        applied, symbols, trades, deltas = relay.decode_group(frame)
        names: list[str | None] = []
        counters: dict[str, int] = {}
        for listed, before in symbols:
            held = self.md_seq.get(listed)
            if held == before:
                names.append(listed)
                counters[listed] = before
            else:  # held < before or unknown: a group was missed; held > before: already in the snapshot held
                names.append(None)
                if held is None or held < before:
                    self._resync(listed)
        subscribers = self._subscribers
        mirror = self.mirror
        for symbol, seq, trade_id, price, qty, aggressor in trades:
            name = names[symbol]
            if name is None:
                continue
            counters[name] += 1
            mirror.trade(name, seq, price)
            subs = subscribers.get(name)
            if subs:
                update = MarketUpdate(name, counters[name], PublicTrade(seq, trade_id, name, price, qty, Side(aggressor)), applied)
                for sub in subs:
                    sub.push(update)
        for symbol, seq, side, price, qty, order_count in deltas:
            name = names[symbol]
            if name is None:
                continue
            counters[name] += 1
            mirror.level(name, seq, side, price, qty, order_count)
            subs = subscribers.get(name)
            if subs:
                update = MarketUpdate(name, counters[name], BookDelta(seq, name, Side(side), price, qty, order_count), applied)
                for sub in subs:
                    sub.push(update)
        self.published += sum(counters.values()) - sum(self.md_seq[n] for n in counters)
        self.md_seq.update(counters)

    def forget(self, symbol: str) -> None:
        """Stop following ``symbol`` until its next snapshot (its shard restarted: its ``md_seq`` starts again)."""
        self.md_seq.pop(symbol, None)
        self._restarted.add(symbol)

    def snapshot_from_shard(self, item: BookSnapshot) -> None:
        """A shard's snapshot (start-up, after a gap or a restart): the mirror restarts from it, subscribers
        resynchronise (a gap, then this state, its ``md_seq`` their new base)."""
        symbol = item.symbol
        held = self.md_seq.get(symbol)
        if held is not None and held > item.md_seq:
            return  # older than what this front already follows
        self.mirror.reset(item.depth)
        self.md_seq[symbol] = item.md_seq
        restarted = symbol in self._restarted
        self._restarted.discard(symbol)
        if restarted or (held is not None and held != item.md_seq):  # updates were lost between the shard and this front
            for sub in self._subscribers.get(symbol, ()):
                sub.gaps += 1
                sub._resync()  # the hub owns its subscriptions' resynchronisation


class FrontGateway(Gateway):
    """A ``Gateway`` that routes to shards over the local link instead of applying commands itself."""

    def __init__(self, shard_map: ShardMap, run_dir: Path, config: GatewayConfig | None = None, fronts: int = 1) -> None:
        super().__init__(Engine(), config)
        self.fronts = fronts
        self.shard_map = shard_map
        self.run_dir = run_dir
        self.mirror = BookMirror()
        self.marketdata = FrontHub(self.mirror, self._ask_snapshot)
        self._asked: set[str] = set()  # symbols whose snapshot is on its way
        self._tasks: list[asyncio.Task[None]] = []
        self.context: zmq.Context[Any] = zmq.Context()
        self.links: list[link.ShardLink] = []
        self._orders: list[Coalescer] = []  # per shard: lean parts
        self._commands: list[Coalescer] = []  # per shard: parts answered with every event
        self.shard_stats: list[dict[str, Any]] = [{} for _ in range(shard_map.shards)]
        self._in_flight = 0
        self._subscriber: zmq.Socket[Any] | None = None
        self._sub_reader: LoopSocket | None = None
        self._sub_monitor: LoopSocket | None = None
        self._poller: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self, instruments: Iterable[Instrument] = ()) -> None:
        """Connect to every shard; list ``instruments`` here (for codecs and lookups) without sending them anywhere."""
        for instrument in instruments:
            self.engine.handle(AddInstrument(instrument))
        sub = self.context.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, link.HWM)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        for index in range(self.shard_map.shards):
            sub.connect(link.market_endpoint(self.run_dir, index))
            endpoint = link.order_endpoint(self.run_dir, index)
            shard = link.ShardLink(self.context, endpoint, index, functools.partial(self._shard_stopped, index))
            self.links.append(shard)
            self._orders.append(Coalescer(shard, link.ORDERS, _decode_outcomes))
            self._commands.append(Coalescer(shard, link.COMMANDS, functools.partial(decode_replies, instruments=self.instrument)))
        self._subscriber = sub
        self._sub_reader = LoopSocket(sub, self._drain_market)
        self._sub_monitor = LoopSocket(sub.get_monitor_socket(zmq.EVENT_CONNECTED), self._drain_sub_monitor)
        self._running = True
        await asyncio.sleep(0.05)  # the subscription reaches the shards first, so no update falls between it and the snapshots
        for instrument in self.instruments:
            await self._snapshot(instrument.symbol)
        async with asyncio.timeout(_START_TIMEOUT_S):  # fails here, loudly, if a shard does not answer
            await self._refresh_stats()
        self._poller = asyncio.get_running_loop().create_task(self._poll_stats(), name="front-stats")

    async def stop(self) -> None:
        self._running = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for task in list(self._tasks):
            task.cancel()
        for shard in self.links:
            shard.close()
        if self._sub_monitor is not None:
            self._sub_monitor.close()
        if self._sub_reader is not None:
            self._sub_reader.close()
        self.context.destroy(linger=0)

    # --------------------------------------------------------------- submit
    async def submit(
        self,
        commands: Sequence[Command],
        transport: str = "inproc",
        record: bytes | None = None,
        outcomes: lean.OutcomeColumns | None = None,
    ) -> Replies:
        if not commands:
            return []
        if not self._running:
            raise link.ShardUnavailable("the front is not running")
        started = time.perf_counter_ns()
        parts = self._split(commands)
        whole = record if isinstance(record, bytes) and len(parts) == 1 and len(next(iter(parts.values()))) == len(commands) else None
        sends = [(index, positions, rec) for index, part in parts.items() for positions, rec in _records(part, whole)]
        coalescers = self._orders if outcomes is not None else self._commands
        self._in_flight += len(commands)
        try:
            answers = await asyncio.gather(*(coalescers[i].part(rec, len(pos)) for i, pos, rec in sends), return_exceptions=True)
        finally:
            self._in_flight -= len(commands)
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, ExchangeError):
                raise answer
        if all(isinstance(answer, BaseException) for answer in answers):
            raise answers[0]  # nothing was applied anywhere: refused whole
        replies = self._merge(commands, [(pos, answer) for (_, pos, _), answer in zip(sends, answers, strict=True)], outcomes)
        self._count(commands, replies, outcomes, transport, started)
        return [] if outcomes is not None else replies

    def _split(self, commands: Sequence[Command]) -> dict[int, list[tuple[int, Command]]]:
        """Each shard's part of ``commands``: (position in the batch, command), in batch order."""
        parts: dict[int, list[tuple[int, Command]]] = {}
        for position, command in enumerate(commands):
            for index in self._targets(command):
                parts.setdefault(index, []).append((position, command))
        return parts

    def _targets(self, command: Command) -> Iterable[int]:
        """The shards ``command`` goes to: its symbol's owner, its order id's issuer, or every shard."""
        owner = self.shard_map.owner
        every = range(self.shard_map.shards)
        if isinstance(command, PlaceOrder):
            return (owner(command.symbol),)
        if isinstance(command, CancelOrder | ReplaceOrder) and command.order_id:
            return (min(shard_of_id(command.order_id), every[-1]),)  # beyond the last shard: UNKNOWN_ORDER there
        if isinstance(command, ReplaceOrder):
            return (owner(command.symbol),)  # by client order id, on its symbol's shard
        if isinstance(command, CancelOrder):
            return every  # by client order id, symbol unknown: the one shard holding it answers
        if isinstance(command, MassCancel):
            return (owner(command.symbol),) if command.symbol else every
        if isinstance(command, AddInstrument):
            raise MalformedMessage(f"add_instrument {_NOT_ON_FRONT}")
        raise MalformedMessage(f"not a command: {type(command).__name__}")

    def _merge(self, commands: Sequence[Command], answered: list[tuple[list[int], Any]], outcomes: lean.OutcomeColumns | None) -> Replies:
        """Each command's answer, in batch order, from the parts' answers (a failed part: each of its commands rejected)."""
        found: list[list[Answer]] = [[] for _ in commands]
        for positions, answer in answered:
            if isinstance(answer, ExchangeError):
                for position in positions:
                    found[position].append(answer)
            elif outcomes is not None:
                decoded, starts = answer
                outcomes.trades += decoded.trades  # the part's own: each part has its own outcome batch
                for i, position in enumerate(positions):
                    found[position].append((decoded, i, starts[i]))
            else:
                for position, events in zip(positions, answer, strict=True):
                    found[position].append(events)
        if outcomes is not None:
            for command, answers in zip(commands, found, strict=True):
                _add_outcome(outcomes, command, answers)
            return []
        return [_events_of(command, answers) for command, answers in zip(commands, found, strict=True)]

    def _count(
        self, commands: Sequence[Command], replies: Replies, outcomes: lean.OutcomeColumns | None, transport: str, started: int
    ) -> None:
        """The front's own counters: what it routed, and what the shards answered."""
        tally = _command_tally(commands)
        if outcomes is not None:
            _tally_outcomes(tally, outcomes, len(commands))
        else:
            _tally_events(tally, replies)
        self.stats.add(tally, transport, len(commands))
        self.stats.batches += 1
        self.stats.latency_us.record((time.perf_counter_ns() - started) // 1000, len(commands))

    # -------------------------------------------------------------- queries
    def depth(self, symbol: str, levels: int = 10) -> BookDepth | None:
        return self.mirror.depth(symbol, levels)

    def order_status(self, trader: str, order_id: int) -> OrderView | None:
        raise ExchangeError(f"order status {_NOT_ON_FRONT}", RejectReason.UNAVAILABLE)

    def open_orders(self, trader: str, symbol: str = "") -> list[OrderView]:
        raise ExchangeError(f"open orders {_NOT_ON_FRONT}", RejectReason.UNAVAILABLE)

    @property
    def queue_depth(self) -> int:
        return self._in_flight

    def stats_dict(self) -> dict[str, Any]:
        stats = super().stats_dict()
        shards = [dict(s) for s in self.shard_stats]
        stats["queue_depth"] = self._in_flight
        stats["engine_seq"] = sum(int(s.get("engine_seq", 0)) for s in shards)
        stats["shards"] = [{k: s.get(k) for k in _SHARD_STATS} for s in shards]
        # Cancels happen in the shards (self-trade, IOC remainders, a resting order a sweep cancelled): theirs, as polled.
        stats["cancelled_by_reason"] = _summed([s.get("cancelled_by_reason", {}) for s in shards])
        if self.fronts > 1:  # this front saw a share of the traffic: the exchange's counts are the shards' (as last polled)
            stats["front"] = {k: stats[k] for k in _EXCHANGE_COUNTS}
            for key in _EXCHANGE_COUNTS:
                stats[key] = _summed([s.get(key, 0) for s in shards])
        return stats

    async def _refresh_stats(self) -> None:
        answers = await asyncio.gather(*(shard.request(link.STATS) for shard in self.links), return_exceptions=True)
        for index, answer in enumerate(answers):
            if isinstance(answer, list):
                self.shard_stats[index] = decode_stats(answer[0])
            elif not isinstance(answer, ExchangeError):
                raise answer

    async def _poll_stats(self) -> None:
        while True:
            await asyncio.sleep(_STATS_EVERY_S)
            await self._refresh_stats()

    async def shard_stats_now(self) -> list[dict[str, Any]]:
        """Every shard's stats as of now (tests and benchmarks; a front's ``stats`` reports them as of the last poll)."""
        await self._refresh_stats()
        return self.shard_stats

    # ---------------------------------------------------------- market data
    def _symbols_of(self, index: int) -> list[str]:
        return [i.symbol for i in self.instruments if self.shard_map.owner(i.symbol) == index]

    def _shard_stopped(self, index: int) -> None:
        """Shard ``index`` went away: its next life numbers market data afresh, so follow it again from snapshots."""
        hub = self.marketdata
        assert isinstance(hub, FrontHub)
        for symbol in self._symbols_of(index):
            hub.forget(symbol)
            self._ask_snapshot(symbol)

    def _drain_sub_monitor(self) -> None:
        """The market-data socket (re)connected to a shard: read its symbols' snapshots, as updates may have been
        published before it was subscribed (a restarted shard's first ones)."""
        assert self._sub_monitor is not None
        while True:
            try:
                event = recv_monitor_message(self._sub_monitor.sock, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            endpoint = event.get("endpoint", b"")
            for index in range(self.shard_map.shards):
                if event["event"] == zmq.EVENT_CONNECTED and endpoint == link.market_endpoint(self.run_dir, index).encode():
                    for symbol in self._symbols_of(index):
                        self._ask_snapshot(symbol)

    def _ask_snapshot(self, symbol: str) -> None:
        if symbol not in self._asked and self._running:
            self._asked.add(symbol)
            task = asyncio.get_running_loop().create_task(self._snapshot(symbol))
            self._tasks.append(task)
            task.add_done_callback(self._tasks.remove)

    async def _snapshot(self, symbol: str) -> None:
        try:
            shard = self.links[self.shard_map.owner(symbol)]
            async with asyncio.timeout(_START_TIMEOUT_S):
                while True:  # a shard restarting is not reachable for a moment: ask again until it answers
                    try:
                        frames = await shard.request(link.SNAPSHOT, symbol.encode())
                        break
                    except link.ShardUnavailable:
                        await asyncio.sleep(0.05)
            hub = self.marketdata
            assert isinstance(hub, FrontHub)
            for frame in frames:
                item = decode_market_data(frame, self.instrument)
                if isinstance(item, BookSnapshot):
                    hub.snapshot_from_shard(item)
        except (ExchangeError, TimeoutError) as exc:
            _log.warning("front_snapshot_failed", extra={"symbol": symbol, "error": str(exc)})
        finally:
            self._asked.discard(symbol)

    def _drain_market(self) -> None:
        sub = self._subscriber
        assert sub is not None and self._sub_reader is not None
        hub = self.marketdata
        assert isinstance(hub, FrontHub)
        for _ in range(1000):
            try:
                data = sub.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                hub.group(data)
            except (ValueError, IndexError):
                _log.warning("front_bad_market_data", extra={"bytes": len(data)})
        self._sub_reader.schedule()


def _records(part: list[tuple[int, Command]], whole: bytes | None) -> list[tuple[list[int], bytes]]:
    """A shard's part as (positions, journal record) pieces: the client's own record when the part is the whole batch,
    one lean record with traders otherwise, or a compact record per command where lean cannot say it."""
    positions = [p for p, _ in part]
    if whole is not None:
        return [(positions, whole)]
    commands = [c for _, c in part]
    if needs_compact(commands):
        return [([p], command_records([c])[0]) for p, c in part]
    return [(positions, b"B" + lean.encode_orders(commands, with_traders=True))]


def _decode_outcomes(frame: bytes) -> tuple[lean.Outcomes, list[int]]:
    """A shard's ``OutcomeBatch`` and where each command's fills start in its fill columns."""
    outcomes = lean.decode_outcomes(frame)
    starts = list(itertools.accumulate(outcomes.fills, initial=0))
    return outcomes, starts


class Coalescer:
    """The parts bound for one shard in one event-loop turn, sent as one link request.

    Every client request split over shards sends each shard a part; sent one
    by one, a shard pays a receive, a wake-up and a reply per part. Gathered
    per loop turn (at most ``MAX_PARTS`` parts, ``MAX_COMMANDS`` commands),
    it pays them once per turn. The answer has a frame per part, so each part
    keeps its own outcome (its trades, or its refusal) exactly.
    """

    MAX_PARTS = 256
    MAX_COMMANDS = 10_000

    def __init__(self, shard: link.ShardLink, kind: bytes, decode: Callable[[bytes], Any]) -> None:
        self.shard = shard
        self.kind = kind
        self.decode = decode
        self._queued: list[tuple[bytes, int, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def part(self, record: bytes, count: int) -> asyncio.Future[Any]:
        """The decoded answer to one part of ``count`` commands (its journal record), once the shard has it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((record, count, future))
        return future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        while queued:
            size = commands = 0
            while size < len(queued) and size < self.MAX_PARTS and (size == 0 or commands + queued[size][1] <= self.MAX_COMMANDS):
                commands += queued[size][1]
                size += 1
            task = asyncio.get_running_loop().create_task(self._send(queued[:size]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            queued = queued[size:]

    async def _send(self, parts: list[tuple[bytes, int, asyncio.Future[Any]]]) -> None:
        try:
            frames = await self.shard.request(self.kind, *(record for record, _, _ in parts))
            if len(frames) != len(parts):
                raise link.ShardUnavailable(f"shard {self.shard.index} answered {len(frames)} parts of {len(parts)}")
        except ExchangeError as exc:
            for _, _, future in parts:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), frame in zip(parts, frames, strict=True):
            if future.done():
                continue
            try:
                future.set_result(self.decode(frame))
            except ExchangeError as exc:  # this part was refused whole by the shard
                future.set_exception(exc)


def _add_outcome(columns: lean.OutcomeColumns, command: Command, found: Sequence[Answer]) -> None:
    """Append ``command``'s outcome to ``columns``: from the shard(s) that answered it, or a rejection."""
    answered = [f for f in found if isinstance(f, tuple)]
    if not answered:
        error = next(f for f in found if isinstance(f, ExchangeError))
        _append(columns, lean.REJECTED, int(error.reason))
        columns.fills.append(0)
        return
    if isinstance(command, MassCancel) and len(found) > 1:  # every shard's share of one mass cancel: one outcome
        _append(columns, lean.CANCELLED, 0, cancelled=sum(o.cancelled[i] for o, i, _ in answered))
        columns.fills.append(0)
        return
    # One shard's answer; a cancel sent to every shard (by client order id) takes the one that found the order.
    outcomes, index, start = next((a for a in answered if a[0].outcome[a[1]] != lean.REJECTED), answered[0])
    _append(
        columns,
        outcomes.outcome[index],
        outcomes.reason[index],
        outcomes.order_id[index],
        outcomes.leaves[index],
        outcomes.cancelled[index],
    )
    end = start + outcomes.fills[index]
    columns.fills.append(end - start)
    columns.trade_id.extend(outcomes.trade_id[start:end])
    columns.fill_price.extend(outcomes.fill_price[start:end])
    columns.fill_qty.extend(outcomes.fill_qty[start:end])


def _append(columns: lean.OutcomeColumns, outcome: int, reason: int, order_id: int = 0, leaves: int = 0, cancelled: int = 0) -> None:
    columns.outcome.append(outcome)
    columns.reason.append(reason)
    columns.order_id.append(order_id)
    columns.leaves.append(leaves)
    columns.cancelled.append(cancelled)


def _events_of(command: Command, found: Sequence[Answer]) -> list[Event]:
    """``command``'s events from the shard(s) that answered it (a mass cancel: all of theirs), or a rejection."""
    answered = [f for f in found if isinstance(f, list)]
    if not answered:
        error = next(f for f in found if isinstance(f, ExchangeError))
        return [_rejected(command, error)]
    if isinstance(command, MassCancel):
        return [event for events in answered for event in events]
    return next((events for events in answered if not any(isinstance(e, OrderRejected) for e in events)), answered[0])


def _summed(values: Sequence[Any]) -> Any:
    """The sum of the shards' values of one counter: numbers, or dicts of numbers by name."""
    if values and isinstance(values[0], dict):
        total: Counter[str] = Counter()
        for value in values:
            total.update(value)
        return dict(total)
    return sum(values)


def _command_tally(commands: Sequence[Command]) -> Tally:
    tally = Tally()
    for command in commands:
        kind = type(command)
        if kind is PlaceOrder:
            tally.places += 1
        elif kind is CancelOrder:
            tally.cancels += 1
        elif kind is ReplaceOrder:
            tally.replaces += 1
        else:
            tally.mass_cancels += 1
    return tally


def _tally_outcomes(tally: Tally, outcomes: lean.OutcomeColumns, count: int) -> None:
    for outcome, reason in zip(outcomes.outcome[-count:], outcomes.reason[-count:], strict=True):
        if outcome == lean.ACCEPTED:
            tally.accepted += 1
        elif outcome == lean.REJECTED:
            tally.rejected[reason] = tally.rejected.get(reason, 0) + 1
    tally.trades = outcomes.trades


def _tally_events(tally: Tally, replies: Replies) -> None:
    for events in replies:
        for event in events:
            if isinstance(event, OrderAccepted):
                tally.accepted += 1
            elif isinstance(event, OrderRejected):
                code = int(event.reason)
                tally.rejected[code] = tally.rejected.get(code, 0) + 1
            elif isinstance(event, TradeExecuted):
                tally.trades += 1


def _rejected(command: Command, error: ExchangeError) -> OrderRejected:
    symbol = getattr(command, "symbol", "")
    order_id = getattr(command, "order_id", 0)
    return OrderRejected(
        0, getattr(command, "trader", ""), getattr(command, "client_order_id", ""), symbol, error.reason, error.message, order_id
    )
