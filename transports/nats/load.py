"""A seeded order load on the durable path, remembering every acknowledgement (tests, benchmark).

Each trader publishes batches of the harness's seeded workload
(``transports.core.workload.OrderFlow``) to DEX_ORDERS, pipelined (many
acknowledgements in flight), at ``rate`` commands/s (0 = as fast as acks
allow). A publish that fails (a timeout, a NATS failover) is resent with the
same ``Nats-Msg-Id`` until acknowledged or the load stops: resends are
de-duplicated by the stream, so an order acknowledged twice is stored once.
``acked`` maps input sequence -> message id of everything acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from nats.aio.client import Client

from engine import Instrument
from transports.nats.durable import DurableClient
from transports.nats.settings import Subjects


class OrderLoad:
    def __init__(
        self, nc: Client, instruments: Sequence[Instrument], *, traders: int = 2, batch: int = 1, rate: float = 500.0, seed: int = 7
    ) -> None:
        self.nc = nc
        self.instruments = list(instruments)
        self.traders = traders
        self.batch = batch
        self.rate = rate
        self.seed = seed
        self.acked: dict[int, str] = {}
        self.sent_commands = 0
        self.acked_commands = 0
        self.resends = 0
        self.duplicates = 0
        self.first_ack_at = 0.0
        self.last_ack_at = 0.0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._trader(i)) for i in range(self.traders)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _trader(self, index: int) -> None:
        from transports.core.workload import OrderFlow  # the harness's seeded order mix

        trader = f"load{self.seed}-{index}"
        client = DurableClient(self.nc, trader, {i.symbol: i for i in self.instruments}.get, Subjects())
        flow = OrderFlow(self.seed + index, trader, self.instruments)
        per_trader = self.rate / self.traders if self.rate > 0 else 0.0
        interval = self.batch / per_trader if per_trader > 0 else 0.0
        window = asyncio.Semaphore(256)
        next_at = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            commands = flow.batch(self.batch)
            await window.acquire()
            task = asyncio.get_running_loop().create_task(self._publish(client, commands, window))
            pending.add(task)
            task.add_done_callback(pending.discard)
            self.sent_commands += len(commands)
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -1.0:
                    next_at = time.monotonic()
            else:
                await asyncio.sleep(0)
        if pending:
            await asyncio.wait(pending, timeout=30)

    async def _publish(self, client: DurableClient, commands: Sequence[object], window: asyncio.Semaphore) -> None:
        subject, data, headers = client.encode(commands)  # type: ignore[arg-type]
        try:
            for attempt in range(200):  # bounded: 200 tries of <= 2 s each
                try:
                    ack = await client.js.publish(subject, data, headers=dict(headers), timeout=2.0)
                except Exception:
                    self.resends += 1
                    if self._stop.is_set() and attempt > 20:
                        return
                    await asyncio.sleep(0.1)
                    continue
                now = time.monotonic()
                if not self.first_ack_at:
                    self.first_ack_at = now
                self.last_ack_at = now
                if ack.duplicate:
                    self.duplicates += 1
                self.acked[ack.seq] = headers["Nats-Msg-Id"]
                self.acked_commands += len(commands)
                return
        finally:
            window.release()
