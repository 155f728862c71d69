"""A pipelined request stream of one client (``Trade`` and ``Orders``): requests in, one reply each out, in order.

Two coroutines per stream:

* the reader takes each request (its raw bytes) as it arrives and hands it
  to the request handler at once as a task: many batches are in flight
  together, so one batch waiting for its fsync group does not hold back the
  next;
* the writer awaits those tasks strictly in arrival order and writes each
  reply. A batch is therefore answered after every batch the client sent
  before it, and the gateway applies them in that order too (tasks start in
  creation order).

The request handler (``transports.core.requests``) never raises: a batch that
does not decode, or that the gateway refuses (``OVERLOADED``), is answered by
a reply carrying only the ``Error``; nothing of it was applied and the stream
goes on. Engine rejects are ordinary outcomes.

At most ``max_inflight`` batches are unanswered at a time: beyond that the
reader stops reading, and HTTP/2 flow control slows the client down instead
of replies piling up in this process.

The stream ends when the client half-closes (after every batch it sent is
answered), when the client goes away (batches already handed to the gateway
are still applied; nobody is left to read their replies), or at shutdown
(what was read is answered, then the call ends with UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
import grpc.aio

from transports.grpc.errors import Context

TRANSPORT = "grpc"

Handle = Callable[[bytes], Coroutine[Any, Any, Any]]


class TradeStream:
    def __init__(self, handle: Handle, context: Context, trader: str, *, max_inflight: int) -> None:
        self.handle = handle
        self.context = context
        self.trader = trader
        self._inflight: deque[asyncio.Task[Any]] = deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Semaphore(max_inflight)
        self._input_done = False
        self._reader: asyncio.Task[None] | None = None
        self.shutting_down = False

    async def run(self) -> None:
        """Serve the stream until the client half-closes or leaves, or ``shutdown()``."""
        if not self.shutting_down:
            reader = self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"grpc-trade-reader {self.trader}")
            try:
                await self._write()
                if not reader.cancelled():
                    reader.result()  # a bug in the reader: let gRPC report it
            finally:
                reader.cancel()
                self._forget()
        if self.shutting_down:
            await self.context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; batches not answered were not applied")

    def shutdown(self) -> None:
        """Stop reading; what was read is still answered."""
        self.shutting_down = True
        if self._reader is not None:
            self._reader.cancel()

    # ------------------------------------------------------------- reader
    async def _read(self) -> None:
        read = self.context.read
        handle = self.handle
        create_task = asyncio.get_running_loop().create_task
        inflight = self._inflight
        arrived = self._arrived
        room = self._room
        try:
            while True:
                await room.acquire()
                request = await read()
                if request is grpc.aio.EOF:
                    room.release()
                    return
                inflight.append(create_task(handle(request)))
                arrived.set()
        finally:
            self._input_done = True
            arrived.set()

    # ------------------------------------------------------------- writer
    async def _write(self) -> None:
        write = self.context.write
        inflight = self._inflight
        arrived = self._arrived
        room = self._room
        while True:
            if not inflight:
                if self._input_done:
                    return
                arrived.clear()
                await arrived.wait()
                continue
            reply = await inflight[0]
            inflight.popleft()
            await write(reply)
            room.release()

    def _forget(self) -> None:
        """Stop tracking what nobody will read the replies of; what reached the gateway is still applied."""
        for task in self._inflight:
            task.add_done_callback(_retrieve)
        self._inflight.clear()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log an error nobody could receive
