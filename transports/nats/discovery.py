"""Node discovery: every node heartbeats on ``<prefix>.nodes``; a peer unheard for ``ttl`` expires.

A heartbeat is a small JSON object ``{"name", "role", "host", "pid", "ttl"}``.
Invariants:

* A node is "discovered" the first time one of its heartbeats arrives, and
  logged once then as ``Discovered node: NAME (ROLE) - HOST``; a role change
  is logged again. Its own heartbeats are ignored.
* A peer expires when no heartbeat came within its announced ``ttl`` (the
  heartbeat interval times three by default) and is logged as expired; a
  later heartbeat discovers it again. Expiry is checked on every heartbeat
  tick, so the roster is never staler than ``ttl`` plus one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from transports.nats.settings import Subjects

log = logging.getLogger("nats-auto")


@dataclass(slots=True)
class Peer:
    name: str
    role: str
    host: str
    ttl: float
    last_seen: float


class Discovery:
    """Announces this node and keeps the roster of live peers."""

    def __init__(
        self,
        nc: Client,
        name: str,
        role: Callable[[], str],
        subjects: Subjects,
        *,
        interval: float = 1.0,
        ttl: float | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.nc = nc
        self.name = name
        self.role = role
        self.subjects = subjects
        self.interval = interval
        self.ttl = ttl if ttl is not None else 3 * interval
        self.host = socket.gethostname()
        self.peers: dict[str, Peer] = {}
        self._say = say
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subjects.nodes, cb=self._on_heartbeat)
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    def heartbeat(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role(), "host": self.host, "pid": os.getpid(), "ttl": self.ttl}

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a reconnecting connection: the next beat goes out
                await self.nc.publish(self.subjects.nodes, json.dumps(self.heartbeat()).encode())
            self.expire(time.monotonic())
            await asyncio.sleep(self.interval)

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            beat = json.loads(msg.data)
            name, role, host, ttl = str(beat["name"]), str(beat["role"]), str(beat["host"]), float(beat["ttl"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a heartbeat that is not ours: %r", msg.data[:80])
            return
        if name == self.name:
            return
        peer = self.peers.get(name)
        now = time.monotonic()
        if peer is None or peer.role != role:
            self._say(f"Discovered node: {name} ({role}) - {host}")
        self.peers[name] = Peer(name, role, host, ttl, now)

    def expire(self, now: float) -> list[str]:
        gone = [p.name for p in self.peers.values() if now - p.last_seen > p.ttl]
        for name in gone:
            del self.peers[name]
            self._say(f"Node expired: {name} (no heartbeat)")
        return gone
