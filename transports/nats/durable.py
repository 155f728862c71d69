"""The durable order path: a node (hot replica + leader candidate + results writer) and its client.

Flow (docs/nats.md)::

    client --js.publish(dex.orders.<SYM>, Nats-Msg-Id=<trader>:<client order ids>)--> DEX_ORDERS
           <--PubAck(seq)-- (the point of acceptance: the order is stored, replicated)
    every node: ordered consumer of DEX_ORDERS -> OrderReplica.apply (pure Engine) -> result N
    leader only: publish result N to dex.results.<trader> with Nats-Expected-Last-Sequence N-1
    client: ordered consumer of dex.results.<trader>, correlated by Dex-Input-Seq

Invariants:

* Every node applies every input, in stream order, once: state is a function
  of the stream prefix, so every replica's ``state_hash`` equals a fresh
  replay of the same prefix (``replica.replay``).
* Result sequence == input sequence: exactly one result per input, appended
  in order, each append conditional on the results stream ending at N-1. A
  stale or second writer cannot append out of turn; since results are
  deterministic, a result already written by anyone is the one we computed.
* Only a node whose lease ``holds()`` appends; on a refused append it
  re-checks its lease at once (renewal) and steps down if that fails.
* A new leader's replica is hot: it appends the results it already computed
  after the last result in the stream (``results_last``), then continues.
  Computed-but-unwritten results are kept (bounded) until the results stream
  passes them; followers learn the results stream's end every ``PRUNE_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

from engine import Command, Instrument, PlaceOrder
from transports.codec.json_codec import InstrumentLookup
from transports.codec.proto_codec import encode_commands, pb
from transports.nats.lease import LeaderLease
from transports.nats.replica import OrderReplica
from transports.nats.settings import (
    EXPECTED_LAST_SEQ_HEADER,
    INPUT_SEQ_HEADER,
    LEADER_HEADER,
    MSG_ID_HEADER,
    ORDERS_STREAM,
    PENDING_BYTES_LIMIT,
    PENDING_MSGS_LIMIT,
    RESULTS_STREAM,
    TRADER_HEADER,
    Subjects,
)
from transports.nats.streams import retry

log = logging.getLogger("nats-auto")

PRUNE_S = 0.5  # how often a node learns where the results stream ends
WRITE_WINDOW = 512  # result appends in flight at once (pipelined, in order)
MAX_UNWRITTEN = 2_000_000  # computed results kept for a future leadership
APPEND_TIMEOUT_S = 5.0
# An ordered consumer lives (in memory, one replica) on its stream's leader server: when that server dies, the client
# notices only after two missed idle heartbeats and then re-creates it. nats-py's default (5 s) held a new leader's
# inputs back for 10-14 s after a kill -9 of the leader's node; 1 s keeps that within the lease's own failover.
CONSUMER_HEARTBEAT_S = 1.0


async def publish_async(js: JetStreamContext, subject: str, data: bytes, headers: dict[str, str]) -> asyncio.Future[Any]:
    """``js.publish_async`` that lets cancellation through (nats-py turns a cancel while
    waiting for its in-flight semaphore into TooManyStalledMsgsError)."""
    try:
        return await js.publish_async(subject, data, headers=headers)
    except Exception:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError from None
        raise


@dataclass(slots=True)
class _Result:
    seq: int
    subject: str
    data: bytes


class DurableNode:
    """Replica + results writer of one node; ``lease`` decides whether it writes."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        name: str,
        instruments: Iterable[Instrument],
        lease: LeaderLease,
        subjects: Subjects,
    ) -> None:
        self.nc = nc
        self.js = js
        self.name = name
        self.replica = OrderReplica(instruments)
        self.lease = lease
        self.subjects = subjects
        self.results_last = 0  # the results stream's last sequence, as far as we know
        self.written = 0  # results this node appended
        self.fenced = 0  # appends the server refused (out of turn)
        self._unwritten: deque[_Result] = deque()
        self._wake = asyncio.Event()
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ lifecycle
    async def start(self, timeout: float = 30.0) -> None:
        """Read where the results end and start the replica's consumer (retried up to ``timeout``: a
        cluster still electing its leaders answers JetStream requests with timeouts)."""

        async def results_end() -> int:
            return (await self.js.stream_info(RESULTS_STREAM)).state.last_seq

        async def consume() -> Subscription:
            return await self.js.subscribe(
                self.subjects.orders_all,
                stream=ORDERS_STREAM,
                cb=self._on_input,
                ordered_consumer=True,
                idle_heartbeat=CONSUMER_HEARTBEAT_S,
                deliver_policy=DeliverPolicy.ALL,
                pending_msgs_limit=PENDING_MSGS_LIMIT,
                pending_bytes_limit=PENDING_BYTES_LIMIT,
            )

        self.results_last = await retry(results_end, timeout)
        self._subs.append(await retry(consume, timeout))
        self._subs.append(await self.nc.subscribe(self.subjects.node_state(self.name), cb=self._on_state_request))
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._writer(), name="results writer"))
        self._tasks.append(loop.create_task(self._follow_results(), name="results follower"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    def leadership_changed(self, leader: bool) -> None:
        self._wake.set()

    # --------------------------------------------------------------- replica
    async def _on_input(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= self.replica.applied_seq:
            return  # redelivered after an ordered-consumer reset: applied already
        reply = self.replica.apply(seq, msg.data, msg.headers)
        if seq > self.results_last:
            trader = (msg.headers or {}).get(TRADER_HEADER, "") or "_"
            self._unwritten.append(_Result(seq, self.subjects.results(trader), reply.SerializeToString()))
            if len(self._unwritten) > MAX_UNWRITTEN:
                self._unwritten.popleft()  # a leader that needs it re-reads the stream: see _writer
            if self.lease.leader:
                self._wake.set()

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "leader": self.lease.leader,
            "applied_seq": self.replica.applied_seq,
            "state_hash": self.replica.state_hash(),
            "orders": self.replica.orders,
            "trades": self.replica.trades,
            "results_last": self.results_last,
            "written": self.written,
            "fenced": self.fenced,
            "terms": self.lease.terms,
        }

    async def _on_state_request(self, msg: Msg) -> None:
        if msg.reply:
            with contextlib.suppress(Exception):
                await self.nc.publish(msg.reply, json.dumps(self.state()).encode())

    # --------------------------------------------------------------- results
    def _prune(self) -> None:
        unwritten = self._unwritten
        while unwritten and unwritten[0].seq <= self.results_last:
            unwritten.popleft()

    async def _follow_results(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_S)
            if self.lease.leader:
                continue  # the writer knows
            with contextlib.suppress(Exception):
                last = (await self.js.stream_info(RESULTS_STREAM)).state.last_seq
                self.results_last = max(self.results_last, last)
                self._prune()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.lease.leader:
                continue
            try:
                # A new term starts from where the results stream really ends.
                self.results_last = max(self.results_last, (await self.js.stream_info(RESULTS_STREAM)).state.last_seq)
                self._prune()
                while self.lease.leader and self._unwritten:
                    if not self.lease.holds():
                        # Paused past the lease's safe part (SIGSTOP, a stall): renew first. If someone
                        # else holds it now, this fails and steps down; nothing is appended meanwhile.
                        if await self.lease.renew():
                            continue
                        break
                    if self._unwritten[0].seq != self.results_last + 1:
                        log.error("results %d.. are missing here; waiting for the replica", self.results_last + 1)
                        break
                    await self._append_window()
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                log.warning("results writer: %s: %s (retrying)", type(exc).__name__, exc)
                await asyncio.sleep(0.2)
                self._wake.set()

    async def _append_window(self) -> None:
        batch = [self._unwritten[i] for i in range(min(WRITE_WINDOW, len(self._unwritten)))]
        futures = []
        for result in batch:
            headers = {
                EXPECTED_LAST_SEQ_HEADER: str(result.seq - 1),
                INPUT_SEQ_HEADER: str(result.seq),
                LEADER_HEADER: self.name,
            }
            futures.append(await publish_async(self.js, result.subject, result.data, headers))
        # Bounded: an acknowledgement lost with a NATS server that died would otherwise be awaited forever. asyncio.wait,
        # not wait_for(gather): a gather cancelled on the timeout holds a CancelledError nobody retrieves (logged at exit).
        _, late = await asyncio.wait(futures, timeout=APPEND_TIMEOUT_S) if futures else (set(), set())
        outcomes = [_outcome(future) for future in futures if future.done()]
        if late:
            for future in late:
                future.cancel()  # frees nats-py's in-flight slot
            # Which of them were stored? The stream says; the rest are appended again (conditionally, so never twice).
            self.results_last = max(self.results_last, (await self.js.stream_info(RESULTS_STREAM)).state.last_seq)
            self._prune()
            raise TimeoutError(f"no acknowledgement for results {batch[0].seq}..{batch[-1].seq} within {APPEND_TIMEOUT_S:g}s") from None
        for result, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if isinstance(outcome, APIError):
                    self.fenced += 1
                    log.warning("%s: append of result %d refused (%s): re-checking the lease", self.name, result.seq, outcome.description)
                    renewed = await self.lease.renew()
                    if renewed:  # another writer appended the same (deterministic) results: continue after them
                        self.results_last = max(self.results_last, (await self.js.stream_info(RESULTS_STREAM)).state.last_seq)
                        self._prune()
                    return
                raise outcome
            self.results_last = result.seq
            self.written += 1
            self._unwritten.popleft()


def _outcome(future: asyncio.Future[Any]) -> Any:
    """A finished future's result, or its exception (retrieved, so never logged as lost)."""
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception() or future.result()


# ---------------------------------------------------------------- client side
def msg_id(trader: str, commands: Sequence[Command], nonce: str) -> str:
    """De-duplication id of an order message, stable across resends of that message.

    New orders: the trader and the client order id(s), ``alice:a-17`` (a batch:
    ``alice:a-17..a-99:83``), so a resend is stored once even from another
    session. A message that also cancels or replaces (which name an existing
    order, possibly again and again) adds the client's ``nonce`` (session and
    message counter), so two different cancels of one order are two messages.
    """
    ids = [str(getattr(c, "client_order_id", "") or getattr(c, "order_id", "")) for c in commands]
    base = f"{trader}:{ids[0]}" if len(ids) == 1 else f"{trader}:{ids[0]}..{ids[-1]}:{len(ids)}"
    if all(type(c) is PlaceOrder for c in commands):
        return base
    return f"{base}:{nonce}"


class DurableClient:
    """Publishes a trader's orders to DEX_ORDERS and learns their results from DEX_RESULTS."""

    def __init__(self, nc: Client, trader: str, lookup: InstrumentLookup, subjects: Subjects) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.trader = trader
        self.lookup = lookup
        self.subjects = subjects
        self._waiting: dict[int, asyncio.Future[pb.ReplyBatch]] = {}
        self._early: dict[int, pb.ReplyBatch] = {}
        self._sub: Subscription | None = None
        self.results_seen = 0
        self.on_result: Callable[[int, pb.ReplyBatch], None] | None = None
        self._session = os.urandom(6).hex()
        self._messages = itertools.count(1)

    def encode(self, commands: Sequence[Command], batch_id: int = 0) -> tuple[str, bytes, dict[str, str]]:
        subject = self.subjects.orders(str(getattr(commands[0], "symbol", "") or "_"))
        nonce = f"{self._session}-{next(self._messages)}"
        headers = {TRADER_HEADER: self.trader, MSG_ID_HEADER: msg_id(self.trader, commands, nonce)}
        return subject, encode_commands(commands, self.lookup, batch_id).SerializeToString(), headers

    async def publish(self, commands: Sequence[Command], timeout: float = 5.0) -> tuple[int, bool]:
        """Store the order message durably; (input sequence, duplicate). A resend gets the same sequence."""
        subject, data, headers = self.encode(commands)
        ack = await self.js.publish(subject, data, headers=headers, timeout=timeout)
        return ack.seq, bool(ack.duplicate)

    async def follow(self) -> None:
        """Start hearing this trader's results as they are appended (a core subscription to
        ``dex.results.<trader>``: JetStream delivers stored messages to core subscribers too).
        A result missed (a reconnect) is read back by sequence: ``result`` does it."""
        self._sub = await self.nc.subscribe(
            self.subjects.results(self.trader),
            cb=self._on_result,
            pending_msgs_limit=PENDING_MSGS_LIMIT,
            pending_bytes_limit=PENDING_BYTES_LIMIT,
        )
        await self.nc.flush()

    async def _on_result(self, msg: Msg) -> None:
        seq = int((msg.headers or {}).get(INPUT_SEQ_HEADER, "0"))
        reply = pb.ReplyBatch.FromString(msg.data)
        self.results_seen += 1
        if self.on_result is not None:
            self.on_result(seq, reply)
        future = self._waiting.pop(seq, None)
        if future is not None:
            if not future.done():
                future.set_result(reply)
        elif len(self._early) < 100_000:
            self._early[seq] = reply

    async def result(self, seq: int, timeout: float = 30.0, poll: float = 1.0) -> pb.ReplyBatch:
        """The result of input ``seq``: heard live (``follow`` first), else read from the results
        stream at the same sequence (result N is input N's); ``TimeoutError`` after ``timeout``."""
        early = self._early.pop(seq, None)
        if early is not None:
            return early
        future = self._waiting.setdefault(seq, asyncio.get_running_loop().create_future())
        deadline = time.monotonic() + timeout
        try:
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(future), min(poll, max(deadline - time.monotonic(), 0.01)))
                stored = await self.stored_result(seq)
                if stored is not None:
                    return stored
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no result for input {seq} within {timeout:g}s")
        finally:
            self._waiting.pop(seq, None)

    async def stored_result(self, seq: int) -> pb.ReplyBatch | None:
        """Result ``seq`` read from DEX_RESULTS (None if not appended yet)."""
        try:
            msg = await self.js.get_msg(RESULTS_STREAM, seq, direct=True)
        except Exception:  # not found (not yet appended), or no answer now
            return None
        if int((msg.headers or {}).get(INPUT_SEQ_HEADER, "0")) != seq:
            return None
        return pb.ReplyBatch.FromString(msg.data or b"")

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
