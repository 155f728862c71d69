"""``BotWorker``: one worker process of ``dex-bots``: consumes partition queues, runs their bots, sends orders.

Broker layout (RabbitMQ, see docs/bots.md)::

    price_updates (topic exchange, durable)  --routing key = pair-->  <prefix>bots.p000 ... bots.pNNN
        each partition queue: durable, x-single-active-consumer, bound to the pairs of its bots,
        x-max-length (drop-head: a backlog of old prices is worth less than the newest)

Every worker subscribes to every partition queue, in the rank order of
``partition.standby_order`` (a standby subscribes once the broker reports as
many consumers as there are workers ranked before it): so the owner is the
active consumer and the standbys queue up in rank order, however late each
process starts. The broker delivers each queue to one live worker only. A message is
acknowledged after its orders are answered and positions saved; a worker that
dies leaves its unacknowledged updates to the next consumer, whose orders
carry the same client order ids and are refused by the exchange as duplicates.
Each partition queue is read by one task that hands each message to the lane
of its pair (routing key): lanes of different pairs run concurrently (their
bots are disjoint), a lane processes its updates one at a time, in order.
A partition has one desk (one exchange client, one copy of its positions)
per worker: the lanes that race to open it wait for the first.

Which partitions a worker runs (``stats.partitions``): the broker does not
say which consumer of a single-active-consumer queue is the active one, so a
worker counts a partition as its own when the queue had no consumer just
before it subscribed or only itself just after (the first consumer is the
active one, and a standby subscribes only once it sees the owner's), or when
the queue delivers to it (a take-over). It never loses one while alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika

from engine import ExchangeError, Instrument, RejectReason
from pricefeed.publishers import PRICE_EXCHANGE, declare_price_exchange
from pricefeed.update import BadPriceUpdate, PriceUpdate
from traders.bots.desk import PartitionDesk
from traders.bots.market import PairMarket
from traders.bots.model import BotConfig
from traders.bots.partition import owner_of, partition_of, queue_name, standby_order, trader_of
from traders.bots.risk import RiskSettings
from traders.bots.stats import WorkerStats
from traders.bots.status import ranges
from traders.bots.store import BotStore
from traders.bots.writer import PositionWriter
from traders.harness.keys import Credentials
from transports.amqp.settings import redact
from transports.core.client import TraderClient
from transports.registry import make_client

log = logging.getLogger("dex-bots")
CLOSE_TIMEOUT_S = 5.0


class WorkerStartError(RuntimeError):
    """The exchange or the broker cannot be reached at start-up."""


@dataclass(frozen=True)
class WorkerSettings:
    db: str
    amqp_url: str
    transport: str
    server: str | None
    worker: int = 0
    workers: int = 1
    exchange: str = PRICE_EXCHANGE
    queue_prefix: str = ""
    trader_prefix: str = "bots"
    standby_step_s: float = 0.2  # poll period while waiting for the workers ranked before us
    owner_wait_s: float = 15.0  # longest wait for them (a worker that never starts)
    prefetch: int = 16
    max_queue_length: int = 10_000
    stats_interval_s: float = 1.0
    stats_out: str = ""
    quiet: bool = False
    risk: RiskSettings = field(default_factory=RiskSettings)
    keys: str | None = None  # a development keyring: each partition's trader proves its own key (created on first use)


class BotWorker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.stats = WorkerStats(worker=settings.worker)
        self.store = BotStore(settings.db)
        self.partitions = self.store.partitions
        self.bots_by_partition: dict[int, list[BotConfig]] = {}
        for bot in self.store.bots():
            self.bots_by_partition.setdefault(partition_of(bot.bot_id, self.partitions), []).append(bot)
        self.desks: dict[int, PartitionDesk] = {}
        self.clients: dict[int, TraderClient] = {}
        self.markets: dict[str, PairMarket] = {}
        self.instruments: dict[str, Instrument] = {}
        self.subscribed: set[int] = set()
        self.bound: set[int] = set()
        self.owned = {p for p in range(self.partitions) if owner_of(p, settings.workers) == settings.worker}
        self.ready = asyncio.Event()  # set once every queue is declared and bound and our own partitions are subscribed
        self._opening: dict[int, asyncio.Lock] = {}
        self._shown: set[int] = set()  # the partitions the last ownership line named
        self._connection: Any = None
        self._queues: dict[int, Any] = {}
        self.writer = PositionWriter(settings.db)
        # ConfigError (a ValueError) before anything starts when the transport cannot authenticate.
        self.credentials = Credentials(settings.transport, keys_dir=settings.keys) if settings.keys else None

    def _client(self, trader: str) -> TraderClient:
        """``trader``'s exchange client: proving its development key with ``--keys``, naming it otherwise."""
        if self.credentials is None:
            return make_client(self.settings.transport, trader, self.settings.server)
        return self.credentials.client(trader, self.settings.server)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        if self.credentials is not None:  # every partition's key exists before any client connects (all workers alike)
            await asyncio.to_thread(self.credentials.issue, [trader_of(p, s.trader_prefix) for p in range(self.partitions)])
        probe = self._client(trader_of(0, s.trader_prefix))
        where = redact(s.server) if s.server else "its default"
        try:
            async with probe:
                self.instruments = {i.symbol: i for i in await probe.instruments()}
                await probe.order(1)  # a private read: an exchange that wants keys refuses it now, not every order later
        except ExchangeError as exc:
            if exc.reason in (RejectReason.UNAUTHENTICATED, RejectReason.UNAUTHORIZED):
                hint = "pass --keys DIR, the server's keyring" if self.credentials is None else "is --keys the server's keyring?"
                raise WorkerStartError(f"the exchange over {s.transport} at {where} refused the bots' trader: {exc} ({hint})") from exc
            raise WorkerStartError(f"cannot reach the exchange over {s.transport} at {where}: {exc}") from exc
        unlisted = sorted({b.pair for bots in self.bots_by_partition.values() for b in bots} - set(self.instruments))
        if unlisted:
            log.warning("the exchange does not list %s: the bots of those pairs will not trade", ", ".join(unlisted))
        try:
            self._connection = await aio_pika.connect(s.amqp_url, timeout=10)
        except Exception as exc:  # aio-pika raises several unrelated types for "cannot connect"
            raise WorkerStartError(f"cannot connect to RabbitMQ at {redact(s.amqp_url)}: {exc}") from exc
        # The bots, their configs and the code live for the whole run: keep them out of the collector's full
        # passes, which would otherwise be the worst latency spikes with 10,000 bots.
        gc.collect()
        gc.freeze()
        tasks: list[asyncio.Task[None]] = []
        try:
            channel = await self._connection.channel()
            exchange = await declare_price_exchange(channel, s.exchange)
            for partition in range(self.partitions):
                tasks.append(asyncio.create_task(self._consume(partition, exchange)))
            tasks.append(asyncio.create_task(self._report(channel)))
            tasks.append(asyncio.create_task(self.writer.run()))
            tasks.append(asyncio.create_task(self._announce_ready()))
            closed = asyncio.create_task(_wait_closed(self._connection))
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({closed, stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopping and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            closed.cancel()
            stopping.cancel()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close_connections()
            self._write_stats(final=True)
            self.store.close()

    async def _close_connections(self) -> None:
        """Close every exchange client and the broker connection, together and bounded: a client closed by us
        (rather than by the process exit) does not try to reconnect, so stopping prints nothing more."""
        closing = [client.close() for client in self.clients.values()]
        if self._connection is not None:
            closing.append(self._connection.close())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), CLOSE_TIMEOUT_S)

    async def _consume(self, partition: int, exchange: Any) -> None:
        s = self.settings
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=s.prefetch)
        arguments = {"x-single-active-consumer": True, "x-max-length": s.max_queue_length, "x-overflow": "drop-head"}
        queue = await channel.declare_queue(queue_name(s.queue_prefix, partition), durable=True, arguments=arguments)
        self._queues[partition] = queue
        for pair in sorted({b.pair for b in self.bots_by_partition.get(partition, [])}):
            await queue.bind(exchange, routing_key=pair)
        self.bound.add(partition)
        self._check_ready()
        rank = standby_order(partition, s.workers).index(s.worker)
        if rank:
            await self._wait_for_higher_ranks(channel, partition, rank)
        lanes: dict[str, asyncio.Queue[Any]] = {}
        workers: list[asyncio.Task[None]] = []
        try:
            before = await _consumers(channel, queue.name)
            async with queue.iterator() as messages:
                self.subscribed.add(partition)
                self._check_ready()
                # The broker activates the first subscriber. Counting only after subscribing raced with a standby
                # that subscribed the moment it saw us (it then counted 2 and nobody claimed the partition).
                if before == 0 or await _consumers(channel, queue.name) == 1:
                    self._took(partition)
                async for message in messages:
                    # One lane per pair: a partition's bots of different pairs are disjoint, so their updates are
                    # processed concurrently; within a pair, in delivery order. Lanes hold at most ``prefetch``
                    # messages in all (the broker sends no more unacknowledged ones).
                    lane = lanes.get(message.routing_key or "")
                    if lane is None:
                        lane = lanes[message.routing_key or ""] = asyncio.Queue()
                        workers.append(asyncio.create_task(self._lane(partition, lane)))
                    lane.put_nowait(message)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _lane(self, partition: int, lane: asyncio.Queue[Any]) -> None:
        while True:
            message = await lane.get()
            await self._handle(partition, message)

    def _check_ready(self) -> None:
        if len(self.bound) == self.partitions and self.owned <= self.subscribed:
            self.ready.set()

    async def _announce_ready(self) -> None:
        await self.ready.wait()
        print(
            f"dex-bots worker {self.settings.worker} ready: every partition queue declared, "
            f"its {len(self.owned)} own partitions subscribed",
            flush=True,
        )
        await asyncio.Event().wait()  # stays in the task set until the worker stops

    async def _wait_for_higher_ranks(self, channel: Any, partition: int, rank: int) -> None:
        """Subscribe as standby number ``rank`` only once the ``rank`` workers before us have (the broker activates
        the first subscriber): so owners stay active even when they start late. Bounded: after ``owner_wait_s``
        (a worker that never comes) we subscribe anyway."""
        s = self.settings
        name = queue_name(s.queue_prefix, partition)
        deadline = asyncio.get_running_loop().time() + s.owner_wait_s + rank * s.standby_step_s
        while asyncio.get_running_loop().time() < deadline:
            if await _consumers(channel, name) >= rank:
                return
            await asyncio.sleep(s.standby_step_s)
        log.warning("partition %d: the workers ranked before %d did not subscribe within %.1f s", partition, s.worker, s.owner_wait_s)

    async def _handle(self, partition: int, message: Any) -> None:
        try:
            update = PriceUpdate.from_json(message.body)
        except BadPriceUpdate as exc:
            self.stats.malformed += 1
            log.warning("partition %d: dropping a malformed price update: %s", partition, exc)
            await message.reject(requeue=False)
            return
        self.stats.updates += 1
        try:
            desk = await self._desk(partition)
            await desk.on_update(update)
            changed = desk.take_unsaved()
        except ExchangeError as exc:
            # The exchange is unreachable or overloaded: leave the update to be redelivered (same client ids: no doubles).
            log.error("partition %d: update %s-%d not processed, requeued: %s", partition, update.pair, update.seq, exc)
            await asyncio.sleep(1.0)
            await message.nack(requeue=True)
            return
        if changed:
            self.writer.submit(changed, message.ack)  # acknowledged once the positions are committed
        else:
            await message.ack()

    def _took(self, partition: int) -> None:
        self.stats.partitions.add(partition)

    async def _desk(self, partition: int) -> PartitionDesk:
        desk = self.desks.get(partition)
        if desk is not None:
            return desk
        # The first update of each pair's lane arrives together: without the lock each lane would open its own
        # client and load its own copy of the positions, and the copies would overwrite each other's saves.
        async with self._opening.setdefault(partition, asyncio.Lock()):
            desk = self.desks.get(partition)
            if desk is None:
                desk = self.desks[partition] = await self._open_desk(partition)
        return desk

    async def _open_desk(self, partition: int) -> PartitionDesk:
        s = self.settings
        trader = trader_of(partition, s.trader_prefix)
        client = self._client(trader)
        try:
            await client.connect()
        except BaseException:
            with contextlib.suppress(Exception):
                await client.close()
            raise
        self.clients[partition] = client
        self._took(partition)
        bots = self.bots_by_partition.get(partition, [])
        return PartitionDesk(
            partition, trader, bots, self.store, client, self.instruments, self.markets, s.risk, self.stats, autosave=False
        )

    async def _report(self, channel: Any) -> None:
        while True:
            await asyncio.sleep(self.settings.stats_interval_s)
            depth = 0
            for partition in sorted(self.stats.partitions):
                with contextlib.suppress(Exception):
                    declared = await channel.declare_queue(queue_name(self.settings.queue_prefix, partition), passive=True)
                    depth += int(declared.declaration_result.message_count or 0)
            self.stats.queue_depth = depth
            window = self.stats.next_tick()
            if not self.settings.quiet:
                self._show_partitions()
                print(self.stats.line(window), flush=True)
            self._write_stats()

    def _show_partitions(self) -> None:
        """One line when the partitions this worker runs changed (at start, after a take-over)."""
        if self.stats.partitions == self._shown:
            return
        taken = sorted(self.stats.partitions - self._shown)
        self._shown = set(self.stats.partitions)
        print(f"dex-bots w{self.settings.worker}: runs partitions {ranges(sorted(self._shown))} (took {ranges(taken)})", flush=True)

    def _write_stats(self, final: bool = False) -> None:
        """The summary every second; with every latency sample only at exit (dumping them all each second would
        stall the event loop for milliseconds in a long run)."""
        if not self.settings.stats_out:
            return
        path = Path(self.settings.stats_out)
        summary = self.stats.summary(with_latency=final)
        if final:
            summary["latencies_us"] = [ns // 1000 for ns in self.stats.latencies_ns]
            del summary["windows"]  # every sample is there now; the per-second ones only served the status line
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(summary), encoding="utf-8")
        tmp.replace(path)


async def _wait_closed(connection: Any) -> None:
    closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def closed(*_: object) -> None:
        if not closing.done():
            closing.set_result(None)

    connection.close_callbacks.add(closed)
    await closing
    raise ConnectionError("the RabbitMQ connection closed")


async def _consumers(channel: Any, queue: str) -> int:
    """How many consumers ``queue`` has now (a passive declare)."""
    declared = await channel.declare_queue(queue, passive=True)
    return int(declared.declaration_result.consumer_count or 0)
