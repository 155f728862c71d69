"""A shard: the single writer of a set of symbols, with its own journal, reached by fronts over ``link``.

``python -m transports.sharding.shard --index K --run-dir DIR --symbols A,B``
(``turbo-dex --shards N`` starts them). Invariants:

* The shard is an ordinary ``Gateway`` over an ordinary ``Engine``: the same
  matching, journal, snapshots and recovery as a single process. Only its
  first order and trade ids differ (``shard_map.id_base``), so every id names
  its shard. A fresh shard snapshots at once, so its journal never starts
  from a bare engine: its next start and ``dex-engine replay --journal``
  rebuild the same ids and the same state hash.
* It serves only the link, never a client wire: orders come from fronts,
  already authenticated and checked, each command naming its trader.
* Market data: every applied group's trades and book deltas go out on the
  PUB socket as one integer frame (``relay``), collected whether or not
  anybody subscribes here, with each symbol's ``md_seq`` before the group, so
  a front rebuilds the same sequenced stream and sees any gap. A front
  starts (and after a gap restarts) from a ``snapshot`` over the link.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from asyncio import Future
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
import zmq

from engine import Command, Engine, ExchangeError, MalformedMessage, RejectReason
from transports.codec import lean
from transports.codec.proto_codec import (
    encode_book,
    encode_market_data,
    encode_order_status,
    encode_refused,
    encode_replies,
    encode_stats,
    error_reply,
    parse_message,
    pb,
)
from transports.core.apply import MarketBatch
from transports.core.gateway import Gateway, GatewayConfig, Replies
from transports.core.journal import JournalCorrupt, record_commands, snapshot_path
from transports.core.limits import MAX_DEPTH, Limits
from transports.core.loop_socket import LoopSocket
from transports.core.pids import die_with
from transports.core.server_cli import freeze_startup_heap, gateway_config
from transports.instruments import select_instruments
from transports.sharding import link, relay
from transports.sharding.shard_map import id_base

NAME = "dex-shard"
_MAX_COMMANDS = Limits().max_batch
_MAX_FRAME_BYTES = Limits().max_json_bytes + 4096  # the largest request of any encoding, and a record's header
_SUBMITTED = frozenset({link.ORDERS, link.COMMANDS})  # answered from the gateway's future, without a task


def shard_engine(index: int) -> Engine:
    """A fresh engine whose order and trade ids start after shard ``index``'s base."""
    engine = Engine()
    engine.last_order_id = engine.last_trade_id = id_base(index)
    return engine


def _part_commands(record: bytes) -> list[Command]:
    """The commands of one part of a front's request: a journal record (a lean batch with traders, a trader's batch, or
    a compact command)."""
    if not record:
        raise MalformedMessage("an empty part")
    try:
        commands = record_commands(record[0], record[1:])
    except JournalCorrupt as exc:  # a kind this version cannot read: the front's request is malformed
        raise MalformedMessage(str(exc)) from None
    if not commands or len(commands) > _MAX_COMMANDS:
        raise MalformedMessage(f"a part holds 1 to {_MAX_COMMANDS} commands")
    return commands


def _error(error: ExchangeError) -> bytes:
    """The ``Error`` frame of a refusal (a record this version cannot read is the front's malformed request)."""
    if isinstance(error, JournalCorrupt):
        error = MalformedMessage(str(error))
    return error_reply(error).SerializeToString()


class ShardGateway(Gateway):
    """A gateway that also sends each applied group's market data to the fronts (``relay``), collected always."""

    def __init__(self, engine: Engine, config: GatewayConfig) -> None:
        super().__init__(engine, config)
        self.collect_market_data = True  # the fronts mirror every book, subscribed here or not
        self.publisher: zmq.Socket[Any] | None = None

    def _publish(self, market: MarketBatch) -> None:
        publisher = self.publisher
        if publisher is not None and (market.trades or market.deltas):
            frame = relay.encode_group(market.trades, market.deltas.values(), self.marketdata.md_seq, time.monotonic_ns())
            with contextlib.suppress(zmq.Again):  # a front that does not keep up sees the gap by md_seq and resyncs
                publisher.send(frame, flags=zmq.NOBLOCK)
        super()._publish(market)


class ShardServer:
    """The shard's end of the link: a ROUTER answering fronts, a PUB relaying market data."""

    def __init__(self, gateway: Gateway, index: int, run_dir: Path) -> None:
        self.gateway = gateway
        self.index = index
        self.context: zmq.Context[Any] = zmq.Context()
        router = self.context.socket(zmq.ROUTER)
        for option in (zmq.SNDHWM, zmq.RCVHWM):
            router.setsockopt(option, link.HWM)
        router.setsockopt(zmq.LINGER, 0)
        # Before anything is read: a frame over the largest request any wire admits disconnects its sender (a part is
        # one client request's record, and what decoding builds is bounded by its bytes).
        router.setsockopt(zmq.MAXMSGSIZE, _MAX_FRAME_BYTES)
        router.bind(link.order_endpoint(run_dir, index))
        self.publisher = self.context.socket(zmq.PUB)
        self.publisher.setsockopt(zmq.SNDHWM, link.HWM)
        self.publisher.setsockopt(zmq.LINGER, 0)
        self.publisher.bind(link.market_endpoint(run_dir, index))
        self._router = router
        self._reader = LoopSocket(router, self._drain)
        self._tasks: set[asyncio.Task[None]] = set()
        self._submitting: set[Future[Any]] = set()
        self._handlers: dict[bytes, Callable[[list[bytes]], Awaitable[list[bytes]]]] = {
            link.BOOK: self._book,
            link.ORDER: self._order,
            link.STATS: self._stats,
            link.SNAPSHOT: self._snapshots,
        }
        assert isinstance(gateway, ShardGateway)
        gateway.publisher = self.publisher

    def _drain(self) -> None:
        for _ in range(1000):
            try:
                frames = self._router.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 3:
                continue  # [peer, kind, corr, *body]: anything shorter is not from a front
            if frames[1] in _SUBMITTED:
                self._submit(frames)
                continue
            task = asyncio.get_running_loop().create_task(self._answer(frames))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._reader.schedule()

    def _submit(self, frames: list[bytes]) -> None:
        """Orders: each part queued on the gateway at once (the writer applies them in one group, in order) and the
        request answered from the futures' callback, one frame per part: no task per request."""
        peer, kind, corr, parts = frames[0], frames[1], frames[2], frames[3:]
        answers: list[tuple[Future[Replies] | ExchangeError, lean.OutcomeColumns | None]] = []
        for record in parts:
            outcomes = lean.OutcomeColumns() if kind == link.ORDERS else None
            try:
                answers.append((self.gateway.enqueue(_part_commands(record), "shard", record, outcomes), outcomes))
            except ExchangeError as exc:  # this part is refused whole (the queue is full, say); the ones before stand
                answers.append((exc, outcomes))
        futures = [f for f, _ in answers if isinstance(f, Future)]
        if not futures:
            self._answered(peer, kind, corr, answers)
            return
        waiting = asyncio.gather(*futures, return_exceptions=True)
        self._submitting.add(waiting)
        waiting.add_done_callback(lambda done: self._answered(peer, kind, corr, answers, done))

    def _answered(
        self,
        peer: bytes,
        kind: bytes,
        corr: bytes,
        answers: list[tuple[Future[Replies] | ExchangeError, lean.OutcomeColumns | None]],
        done: Future[Any] | None = None,
    ) -> None:
        if done is not None:
            self._submitting.discard(done)
        reply = [kind, corr]
        for answer, outcomes in answers:
            error = answer if isinstance(answer, ExchangeError) else answer.exception()
            if error is not None and not isinstance(error, ExchangeError):
                raise error
            if kind == link.ORDERS:
                assert outcomes is not None
                reply.append(lean.encode_refusal(error) if error is not None else outcomes.to_bytes())
            elif error is not None:
                reply.append(encode_refused(error).SerializeToString())
            else:
                assert isinstance(answer, Future)
                reply.append(encode_replies(answer.result(), self.gateway.instrument).SerializeToString())
        self._reply(peer, reply)

    def _reply(self, peer: bytes, reply: list[bytes]) -> None:
        with contextlib.suppress(zmq.ZMQError):  # a front that vanished: its replies have nowhere to go
            self._router.send_multipart([peer, *reply], flags=zmq.NOBLOCK)
        self._reader.rearm()

    async def _answer(self, frames: list[bytes]) -> None:
        peer, kind, corr, body = frames[0], frames[1], frames[2], frames[3:]
        handler = self._handlers.get(kind)
        try:
            if handler is None:
                raise MalformedMessage(f"unknown link request {kind[:16]!r}")
            reply = [kind, corr, *await handler(body)]
        except ExchangeError as exc:
            reply = [link.ERROR, corr, _error(exc)]
        self._reply(peer, reply)

    async def _book(self, body: list[bytes]) -> list[bytes]:
        request = parse_message(pb.BookRequest, body[0])
        depth = self.gateway.depth(request.symbol, min(request.depth or MAX_DEPTH, MAX_DEPTH))
        if depth is None:
            raise MalformedMessage(f"unknown symbol {request.symbol[:64]!r}", RejectReason.UNKNOWN_SYMBOL)
        return [encode_book(depth, self.gateway.instrument).SerializeToString()]

    async def _order(self, body: list[bytes]) -> list[bytes]:
        request = parse_message(pb.OrderStatusRequest, body[1])
        view = self.gateway.order_status(body[0].decode(), request.order_id)
        return [encode_order_status(view, self.gateway.instrument).SerializeToString()]

    async def _stats(self, body: list[bytes]) -> list[bytes]:
        # No state hash here: fronts poll this often, and hashing the whole state is a snapshot's work (the hash is
        # printed at stop and by dex-engine replay --journal).
        return [encode_stats(self.gateway.stats_dict()).SerializeToString()]

    async def _snapshots(self, body: list[bytes]) -> list[bytes]:
        out = []
        for name in body:
            try:
                snapshot = self.gateway.marketdata.snapshot(name.decode())
            except (KeyError, UnicodeDecodeError):
                raise MalformedMessage(f"unknown symbol {name[:64]!r}", RejectReason.UNKNOWN_SYMBOL) from None
            out.append(encode_market_data(snapshot, self.gateway.instrument).SerializeToString())
        return out

    async def close(self) -> None:
        self._reader.pause()
        waiting: set[Future[Any]] = {*self._tasks, *self._submitting}
        if waiting:
            await asyncio.wait(waiting, timeout=10)
        assert isinstance(self.gateway, ShardGateway)
        self.gateway.publisher = None
        self._reader.close()
        self.publisher.close(linger=0)
        self.context.term()


async def run(args: argparse.Namespace) -> int:
    run_dir = link.private_dir(Path(args.run_dir))
    journal = None if args.no_journal else args.journal or str(run_dir / f"shard-{args.index}.journal")
    gateway = ShardGateway(shard_engine(args.index), gateway_config(args.buffer, journal, args.fsync))
    try:
        await gateway.start(select_instruments(args.symbols) if args.symbols else ())
    except (ExchangeError, OSError, ValueError) as exc:
        print(f"{NAME} {args.index}: cannot start: {exc}", file=sys.stderr)
        return 1
    if gateway.journal is not None and not snapshot_path(gateway.journal.path).exists():
        gateway.write_snapshot()  # a fresh shard: its id base is in the state every later start and replay begins from
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.parent:
        die_with(args.parent)
    try:
        try:
            server = ShardServer(gateway, args.index, run_dir)
        except zmq.ZMQError as exc:
            print(f"{NAME} {args.index}: cannot listen: {exc}", file=sys.stderr)
            return 1
        symbols = ",".join(i.symbol for i in gateway.instruments)
        where = link.order_endpoint(run_dir, args.index)
        print(f"{NAME} {args.index} ready on {where} (symbols {symbols}; engine seq {gateway.engine.seq})", flush=True)
        await stop.wait()
        await server.close()
    finally:
        await gateway.stop()
    print(f"{NAME} {args.index} stopped (engine seq {gateway.engine.seq}, state hash {gateway.engine.state_hash()})", flush=True)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=NAME, description="One shard: the single writer of some symbols (docs/shards.md).")
    p.add_argument("--index", type=int, required=True, help="this shard's number, from 0 (its ids start at index << 44)")
    p.add_argument("--run-dir", required=True, help="the private directory of the link's sockets (and the journal by default)")
    p.add_argument("--symbols", default="", help="the default instruments this shard lists (comma list)")
    p.add_argument("--buffer", type=int, default=100_000, help="most commands waiting before OVERLOADED")
    p.add_argument("--journal", default=None, metavar="PATH", help="command journal (default RUN_DIR/shard-K.journal)")
    p.add_argument("--no-journal", action="store_true", help="keep nothing across restarts")
    p.add_argument("--fsync", choices=("batch", "interval", "off"), default="batch")
    p.add_argument("--parent", type=int, default=0, metavar="PID", help="stop (SIGTERM) when this process dies (turbo-dex passes its own)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
