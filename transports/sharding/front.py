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
  ``UNAVAILABLE``); the other parts stand. Nothing is applied twice and nothing
  is reported applied that was not. When every part fails, the whole batch is
  refused (``ShardUnavailable``), as an overloaded gateway refuses one.
* Market data: each shard's relayed stream (``link``) feeds a book mirror
  and the front's own hub, keeping the shard's ``md_seq``; a jump in it asks the
  front's subscribers to resynchronise (a gap, then a snapshot), never to
  read a partial book. Book queries read the mirror.
* Not served by a front yet (docs/shards.md, "Status"): ``add_instrument``,
  order status and open-order queries, private fills, candles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import zmq

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
from transports.codec.market_messages import BookSnapshot, Gap, MarketData, MarketUpdate
from transports.codec.proto_codec import decode_market_data, decode_replies, decode_stats
from transports.core.apply import Tally
from transports.core.gateway import Gateway, GatewayConfig, Replies
from transports.core.journal import command_records
from transports.core.loop_socket import LoopSocket
from transports.core.marketdata import MarketDataHub
from transports.sharding import link
from transports.sharding.shard_map import ShardMap, shard_of_id

_log = logging.getLogger("dex.front")
_NOT_ON_FRONT = "is not served by a front yet: ask the single-process exchange (docs/shards.md, 'Status')"
_STATS_EVERY_S = 0.1
_START_TIMEOUT_S = 30.0
_EXCHANGE_COUNTS = ("orders", "commands", "accepted", "rejected", "rejected_by_reason", "trades", "cancelled_by_reason")
Answer = tuple[lean.Outcomes, int, int] | list[Event] | ExchangeError  # one shard's answer to one command
_SHARD_STATS = ("engine_seq", "orders", "accepted", "trades", "process_cpu_us", "state_hash", "queue_depth")  # a front's stats, per shard


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

    def apply(self, delta: BookDelta) -> None:
        book = self._books.get(delta.symbol)
        if book is None:
            return
        levels = book[0] if delta.side == Side.BUY else book[1]
        if delta.qty:
            levels[delta.price] = L2Level(delta.price, delta.qty, delta.order_count)
        else:
            levels.pop(delta.price, None)
        self._seq[delta.symbol] = delta.seq

    def trade(self, symbol: str, price: int, seq: int) -> None:
        if symbol in self._books:
            self._last[symbol] = price
            self._seq[symbol] = seq

    def depth(self, symbol: str, levels: int = 10) -> BookDepth | None:
        book = self._books.get(symbol)
        if book is None:
            return None
        bids = [book[0][p] for p in sorted(book[0], reverse=True)[:levels]]
        asks = [book[1][p] for p in sorted(book[1])[:levels]]
        return BookDepth(symbol, self._seq[symbol], bids, asks, self._last[symbol])


class FrontHub(MarketDataHub):
    """The front's hub: it numbers nothing itself, it relays each shard's sequenced stream."""

    def __init__(self, mirror: BookMirror, resync: Callable[[str], None]) -> None:
        super().__init__(mirror.depth)
        self.mirror = mirror
        self._resync = resync  # asks the symbol's shard for a fresh snapshot

    def relay(self, item: MarketData) -> None:
        symbol = item.symbol
        if isinstance(item, MarketUpdate):
            expected = self.md_seq.get(symbol, 0) + 1
            if item.md_seq != expected:
                if item.md_seq > expected:  # an update was lost (before the first snapshot, or the link dropped it)
                    self._resync(symbol)
                return  # already in the snapshot this front holds
            event = item.event
            if isinstance(event, BookDelta):
                self.mirror.apply(event)
            else:
                self.mirror.trade(symbol, event.price, event.seq)
            self.md_seq[symbol] = item.md_seq
            self.published += 1
            for sub in self._subscribers.get(symbol, ()):
                sub.push(item)
        elif isinstance(item, BookSnapshot):
            jumped = symbol in self.md_seq and self.md_seq[symbol] != item.md_seq
            self.mirror.reset(item.depth)
            self.md_seq[symbol] = item.md_seq
            if jumped:  # updates were lost between the shard and this front: its subscribers start over
                for sub in self._subscribers.get(symbol, ()):
                    sub.gaps += 1
                    sub._resync()  # the hub owns its subscriptions' resynchronisation
        elif isinstance(item, Gap):
            pass  # the shard's relay fell behind: its fresh snapshot follows and is handled above


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
        self.shard_stats: list[dict[str, Any]] = [{} for _ in range(shard_map.shards)]
        self._in_flight = 0
        self._subscriber: zmq.Socket[Any] | None = None
        self._sub_reader: LoopSocket | None = None
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
            self.links.append(link.ShardLink(self.context, link.order_endpoint(self.run_dir, index), index))
        self._subscriber = sub
        self._sub_reader = LoopSocket(sub, self._drain_market)
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
        kind = link.ORDERS if outcomes is not None else link.COMMANDS
        one_part = len(parts) == 1 and record is not None and len(next(iter(parts.values()))) == len(commands)
        self._in_flight += len(commands)
        try:
            answers = await asyncio.gather(
                *(self._send(index, kind, [c for _, c in part], record if one_part else None) for index, part in parts.items()),
                return_exceptions=True,
            )
        finally:
            self._in_flight -= len(commands)
        failures = [a for a in answers if isinstance(a, BaseException)]
        for failure in failures:
            if not isinstance(failure, ExchangeError):
                raise failure
        if len(failures) == len(answers):
            raise failures[0]
        replies = self._merge(commands, parts, answers, outcomes)
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

    async def _send(self, index: int, kind: bytes, commands: list[Command], record: bytes | None) -> list[bytes]:
        records = [record] if record is not None else command_records(commands)
        return await self.links[index].request(kind, *records)

    def _merge(
        self,
        commands: Sequence[Command],
        parts: dict[int, list[tuple[int, Command]]],
        answers: Sequence[list[bytes] | BaseException],
        outcomes: lean.OutcomeColumns | None,
    ) -> Replies:
        """Each command's answer, in batch order, from the parts' answers (a failed part: each of its commands rejected)."""
        found: list[list[Answer]] = [[] for _ in commands]
        for part, answer in zip(parts.values(), answers, strict=True):
            if isinstance(answer, BaseException):
                assert isinstance(answer, ExchangeError)
                for position, _ in part:
                    found[position].append(answer)
            elif outcomes is not None:
                decoded = lean.decode_outcomes(answer[0])
                outcomes.trades += decoded.trades
                fill_start = 0
                for offset, (position, _) in enumerate(part):
                    found[position].append((decoded, offset, fill_start))
                    fill_start += decoded.fills[offset]
            else:
                events = decode_replies(answer[0], self.instrument)
                for (position, _), own in zip(part, events, strict=True):
                    found[position].append(own)
        if outcomes is not None:
            for command, answered in zip(commands, found, strict=True):
                _add_outcome(outcomes, command, answered)
            return []
        return [_events_of(command, answered) for command, answered in zip(commands, found, strict=True)]

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
    def _ask_snapshot(self, symbol: str) -> None:
        if symbol not in self._asked and self._running:
            self._asked.add(symbol)
            task = asyncio.get_running_loop().create_task(self._snapshot(symbol))
            self._tasks.append(task)
            task.add_done_callback(self._tasks.remove)

    async def _snapshot(self, symbol: str) -> None:
        try:
            frames = await self.links[self.shard_map.owner(symbol)].request(link.SNAPSHOT, symbol.encode())
            hub = self.marketdata
            assert isinstance(hub, FrontHub)
            for frame in frames:
                hub.relay(decode_market_data(frame, self.instrument))
        except ExchangeError as exc:
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
                hub.relay(decode_market_data(data, self.instrument))
            except ExchangeError:
                _log.warning("front_bad_market_data", extra={"bytes": len(data)})
        self._sub_reader.schedule()


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
