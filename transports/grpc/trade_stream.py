"""The ``Trade`` stream of one client: pipelined batches in, one ``ReplyBatch`` each out, in arrival order.

Two coroutines per stream:

* the reader takes each ``CommandBatch`` as it arrives, decodes it (one
  protobuf parse, done by gRPC; one codec pass), and hands it to the gateway
  at once as a task: many batches are in flight together, so one batch
  waiting for its fsync group does not hold back the next;
* the writer awaits those tasks strictly in arrival order, encodes each
  one's replies, and writes them. A batch is therefore answered after every
  batch the client sent before it, and the gateway applies them in that
  order too (tasks start in creation order).

A batch that does not decode, or that the gateway refuses (``OVERLOADED``),
is answered by a ``ReplyBatch`` carrying only the ``Error``: nothing of it was
applied and the stream goes on. Engine rejects are ordinary events.

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
from typing import NamedTuple

import grpc
import grpc.aio

from engine import AddInstrument, ExchangeError, MalformedMessage, RejectReason
from transports.codec.proto_codec import decode_commands, encode_refused, encode_replies, pb
from transports.core.gateway import Gateway, Replies
from transports.grpc.errors import Context
from transports.grpc.lookup import InstrumentIndex

TRANSPORT = "grpc"


class _InFlight(NamedTuple):
    batch_id: int
    task: asyncio.Task[Replies] | None  # None: refused (error) or empty
    error: ExchangeError | None


def admin_refusal() -> ExchangeError:
    return ExchangeError("add_instrument over gRPC needs a server started with --allow-admin", RejectReason.UNAUTHORIZED)


class TradeStream:
    def __init__(
        self, gateway: Gateway, index: InstrumentIndex, context: Context, trader: str, *, allow_admin: bool, max_inflight: int
    ) -> None:
        self.gateway = gateway
        self.index = index
        self.context = context
        self.trader = trader
        self.allow_admin = allow_admin
        self._inflight: deque[_InFlight] = deque()
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
        submit = self.gateway.submit
        apply = self.index.apply
        trader = self.trader
        allow_admin = self.allow_admin
        create_task = asyncio.get_running_loop().create_task
        inflight = self._inflight
        arrived = self._arrived
        room = self._room
        try:
            while True:
                await room.acquire()
                batch = await read()
                if batch is grpc.aio.EOF:
                    room.release()
                    return
                if isinstance(batch, MalformedMessage):  # bytes that are not a CommandBatch
                    inflight.append(_InFlight(0, None, batch))
                    arrived.set()
                    continue
                try:
                    commands = apply(lambda lookup: decode_commands(batch, lookup, trader))  # noqa: B023 - called at once
                    if not allow_admin and any(type(c) is AddInstrument for c in commands):
                        raise admin_refusal()
                except ExchangeError as exc:
                    inflight.append(_InFlight(batch.batch_id, None, exc))
                else:
                    task = create_task(submit(commands, TRANSPORT)) if commands else None
                    inflight.append(_InFlight(batch.batch_id, task, None))
                arrived.set()
        finally:
            self._input_done = True
            arrived.set()

    # ------------------------------------------------------------- writer
    async def _write(self) -> None:
        write = self.context.write
        apply = self.index.apply
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
            batch_id, task, error = inflight[0]
            if task is not None:
                try:
                    replies = await task
                except ExchangeError as exc:  # Overloaded: nothing applied
                    reply = encode_refused(exc, batch_id)
                else:
                    reply = apply(lambda lookup: encode_replies(replies, lookup, batch_id))  # noqa: B023 - called at once
            elif error is not None:
                reply = encode_refused(error, batch_id)
            else:
                reply = pb.ReplyBatch(batch_id=batch_id)
            inflight.popleft()
            await write(reply)
            room.release()

    def _forget(self) -> None:
        """Stop tracking what nobody will read the replies of; what reached the gateway is still applied."""
        for item in self._inflight:
            if item.task is not None:
                item.task.add_done_callback(_retrieve)
        self._inflight.clear()


def _retrieve(task: asyncio.Task[Replies]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log an Overloaded nobody could receive
