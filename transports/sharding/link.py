"""The link between a front and a shard on one machine: ZeroMQ over ``ipc://`` sockets in a private directory.

Frames (DEALER at the front, ROUTER at the shard), every request ``[kind,
corr, *body]`` answered ``[kind, corr, *body]`` or ``[b"error", corr, Error]``:

* ``orders``: journal records, one frame per part (a lean ``OrderBatch``
  with traders, a client's own trader batch, or a compact command; parts of
  several client requests gathered by the front's ``Coalescer``) -> one
  ``OutcomeBatch`` for all their commands, in order;
* ``commands``: the same records -> one ``ReplyBatch`` with every event
  (for a front whose client asked for events: JSON, protobuf, FIX);
* ``book``: ``BookRequest`` -> ``BookDepth``; ``order``: ``[trader,
  OrderStatusRequest]`` -> ``OrderStatusReply``; ``stats`` -> ``Stats``;
* ``snapshot``: symbols (UTF-8, a frame each) -> a ``MarketDataMessage`` snapshot per symbol, with its ``md_seq``.

Market data: the shard's PUB socket sends one ``Reply`` per applied group
(its trades, then one delta per touched level), so a front republishes it to
its own subscribers and keeps its book mirror.

Invariants:

* The link is trusted: a batch names each command's trader, already checked
  by the front's request handler (authentication, limits, value rules). What
  keeps anyone else off it is the socket directory, created mode 0700
  (``private_dir``): only this user's processes can connect.
* Every request gets exactly one reply; the front matches it by ``corr``. A
  shard that dies (the socket monitor sees it disconnect) fails every request
  in flight with ``ShardUnavailable`` (``OVERLOADED``: every client retries it,
  where ``UNAVAILABLE`` ends a harness run as a server lost): the client is told
  the outcome is not known here, never a made-up one. What the shard had
  journalled stands when it restarts; a retry with the same request id is
  answered once (the engine's de-duplication window).
* Queues are bounded: the front refuses (``Overloaded``) rather than queue
  without limit when a shard does not keep up (``MAX_IN_FLIGHT``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import zmq
from zmq.utils.monitor import recv_monitor_message

from engine import Overloaded
from transports.codec.proto_codec import decode_error
from transports.core.loop_socket import LoopSocket

ORDERS: Final = b"orders"
COMMANDS: Final = b"commands"
BOOK: Final = b"book"
ORDER: Final = b"order"
STATS: Final = b"stats"
SNAPSHOT: Final = b"snapshot"
ERROR: Final = b"error"

_MAX_SOCKET_DIR: Final = 80  # bytes of the directory: a socket path (dir + /shard-511.market) stays under 108
MAX_IN_FLIGHT: Final = 10_000  # requests a front may have outstanding on one shard
HWM: Final = 100_000  # messages ZeroMQ may queue each way on a link socket


class ShardUnavailable(Overloaded):
    """The shard stopped, or is not connected yet (restarting): retry. What it was sent before it stopped is decided by
    its journal, and a retry with the same client order id or request id is answered once."""


def private_dir(path: Path) -> Path:
    """``path`` created (if need be) with mode 0700: the link's sockets live here and only this user reaches them."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def socket_dir(state: Path) -> Path:
    """Where the link's sockets of the shards whose state is in ``state`` live: there, or, when that path is too long
    for a Unix socket (108 bytes with the name), a private directory under the temporary one named after it."""
    if len(str(state)) <= _MAX_SOCKET_DIR:
        return private_dir(state)
    digest = hashlib.blake2b(str(state).encode(), digest_size=8).hexdigest()
    return private_dir(Path(tempfile.gettempdir()) / f"dex-shards-{os.getuid()}-{digest}")


def order_endpoint(run_dir: Path, index: int) -> str:
    return f"ipc://{run_dir}/shard-{index}.orders"


def market_endpoint(run_dir: Path, index: int) -> str:
    return f"ipc://{run_dir}/shard-{index}.market"


class ShardLink:
    """A front's connection to one shard: requests by correlation id, replies matched back to their futures."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, index: int, on_disconnect: Callable[[], None] = lambda: None) -> None:
        self.index = index
        self._on_disconnect = on_disconnect
        self.endpoint = endpoint
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDHWM, HWM)
        sock.setsockopt(zmq.RCVHWM, HWM)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        self._sock = sock
        self._reader = LoopSocket(sock, self._drain)
        # A shard that dies answers nothing: its disconnect fails what waits on it (the DEALER reconnects by itself).
        self._monitor = LoopSocket(sock.get_monitor_socket(zmq.EVENT_DISCONNECTED), self._drain_monitor)
        self._waiting: dict[bytes, asyncio.Future[list[bytes]]] = {}
        self._corr = itertools.count(1)
        self.sent = 0

    async def request(self, kind: bytes, *body: bytes) -> list[bytes]:
        """The reply body of ``[kind, corr, *body]``; the shard's error raised as its ``ExchangeError``."""
        if len(self._waiting) >= MAX_IN_FLIGHT:
            raise Overloaded(f"shard {self.index} has {MAX_IN_FLIGHT} requests in flight; retry later")
        corr = next(self._corr).to_bytes(8, "little")
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._waiting[corr] = future
        try:
            self._sock.send_multipart((kind, corr, *body), flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            del self._waiting[corr]
            raise ShardUnavailable(f"shard {self.index} is not connected (restarting?); retry later") from None
        self.sent += 1
        self._reader.rearm()
        try:
            frames = await future
        finally:
            self._waiting.pop(corr, None)
        if frames[0] == ERROR:
            raise decode_error(frames[2] if len(frames) > 2 else b"")
        return frames[2:]

    def _drain(self) -> None:
        sock = self._sock
        for _ in range(1000):
            try:
                frames = sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            future = self._waiting.get(frames[1])
            if future is not None and not future.done():
                future.set_result(frames)
        self._reader.schedule()

    def _drain_monitor(self) -> None:
        monitor = self._monitor.sock
        while True:
            try:
                event = recv_monitor_message(monitor, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_DISCONNECTED:
                self.fail_all(f"shard {self.index} stopped: what it was sent is decided by its journal; retry with the same request id")
                self._on_disconnect()

    def fail_all(self, why: str) -> None:
        """Fail every request in flight (the shard stopped): each caller hears ``ShardUnavailable``."""
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ShardUnavailable(why))
        self._waiting.clear()

    def close(self) -> None:
        self.fail_all(f"shard {self.index}: the front is closing")
        self._monitor.close()
        self._sock.disable_monitor()
        self._reader.close()
