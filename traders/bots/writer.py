"""``PositionWriter``: group commit of positions, then acknowledgement of the updates that changed them.

Saving after every update of every partition would make the workers queue
on SQLite's single write lock. Instead each processed update hands its
changed positions and its acknowledgement here; a loop saves everything
pending in ONE transaction (in a thread of its own, with its own
connection, so the event loop never waits on the lock) and then
acknowledges those updates. Invariant: an update is acknowledged only after
the positions it changed are committed; a crash before that redelivers it,
and the redelivery is harmless (``<bot>-<seq>`` is refused as a duplicate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from traders.bots.model import Position
from traders.bots.store import BotStore, position_rows

Ack = Callable[[], Awaitable[None]]


class PositionWriter:
    def __init__(self, db: str, max_delay_s: float = 0.005) -> None:
        self.db = db
        self.max_delay_s = max_delay_s
        self._pending: dict[str, Position] = {}
        self._acks: list[Ack] = []
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="positions")
        self._store: BotStore | None = None
        self.commits = 0

    def submit(self, changed: dict[str, Position], ack: Ack) -> None:
        self._pending.update(changed)
        self._acks.append(ack)
        self._wake.set()

    def _save(self, rows: list[tuple[object, ...]]) -> None:
        if self._store is None:
            self._store = BotStore(self.db)  # created in the writer thread: sqlite3 connections stay in their thread
        self._store.save_rows(rows)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(self.max_delay_s)  # gather what the other partitions finish meanwhile
                self._wake.clear()
                positions, self._pending = self._pending, {}
                acks, self._acks = self._acks, []
                if positions:
                    # Rows are taken here, in the loop's thread: the positions keep changing while the thread writes.
                    await loop.run_in_executor(self._thread, self._save, position_rows(positions))
                    self.commits += 1
                for ack in acks:
                    await ack()
        finally:
            if self._pending:  # stopping: keep what was computed (the unacknowledged updates will be redelivered anyway)
                self._thread.submit(self._save, position_rows(self._pending)).result()
            self._thread.submit(self._close).result()
            self._thread.shutdown()

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
