"""Leader election by a JetStream key-value lease.

Invariants:

* Winning is creating the key (``kv.create``): the server lets exactly one
  create succeed while the key exists, so nodes started at the same instant
  elect exactly one leader.
* The leader renews with compare-and-set on its own revision
  (``kv.update(key, value, last=revision)``) every ``ttl / 3``. A refused
  renewal (a wrong revision: another node took the key) steps it down at
  once. One that gets no answer (a timeout, a lost connection, NATS electing a
  new stream leader) is retried every ``FOLLOWER_POLL_S`` while the lease is
  still trusted (``holds()``), and steps it down only once it is not: a
  leader rides out a short NATS failover without giving the lease up, and
  appends nothing while it cannot prove its lease. A renewal that timed out
  here may still have reached the server: a refusal finds the key at a later
  revision holding our own name then, and the leader renews from that write.
* A leader that died or froze loses the key ``ttl`` after its last renewal:
  every follower polls the key (every ``FOLLOWER_POLL_S``) and, when its
  revision has not changed for ``ttl`` since the follower first saw it,
  deletes it with compare-and-set on that revision (only a stale lease can be
  deleted: a renewal in between changes the revision) and creates it. The
  bucket's max age (``ttl``) removes an abandoned key as a backstop.
* ``holds()`` is true only while the last successful write is younger than
  ``ttl * SAFETY`` measured from *before* that write was sent: a leader
  resumed after a pause (SIGSTOP) past its lease knows at once that it may not
  append, before any renewal is attempted. The results stream's expected last
  sequence fences it in any case.
* ``ttl`` bounds a failover: a follower takes over ``ttl`` after the dead
  leader's last renewal, at most, plus a poll. The default is 4 s: with every
  node running its own nats-server (2.15, ``transports/nats/mesh.py``), a
  ``kill -9`` of the leader's node, its nats-server included, had results
  flowing again after 3.2-3.8 s, and a ``kill -9`` of a follower's node
  stopped nothing (``make bench-nats``'s failover run, ``docs/nats.md``).
  The former 15 s default dated from one shared nats-server whose own
  restart had to fit inside the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from transports.nats.settings import LEASE_KEY

log = logging.getLogger("nats-auto")

DEFAULT_LEASE_TTL_S = 4.0
SAFETY = 0.8  # of the ttl, the part a leader trusts its lease without renewing
FOLLOWER_POLL_S = 0.25


class LeaderLease:
    def __init__(
        self, kv: KeyValue, name: str, ttl: float = DEFAULT_LEASE_TTL_S, *, on_change: Callable[[bool], None] | None = None
    ) -> None:
        self.kv = kv
        self.name = name
        self.ttl = ttl
        self.on_change = on_change
        self.revision = 0  # of our write of the key, while leader
        self.valid_until = 0.0  # monotonic
        self.leader = False
        self.terms = 0  # how many times this node won
        self.holder = ""  # who holds the lease, as last seen
        self._seen_revision = 0  # the lease revision a follower watches, and since when (monotonic)
        self._seen_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def holds(self) -> bool:
        return self.leader and time.monotonic() < self.valid_until

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leader:
            # Give the lease up at once (compare-and-set: only if it is still ours), so a successor need not wait the TTL.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.kv.delete(LEASE_KEY, last=self.revision), 2)
            self._set(False, "shut down")

    def _set(self, leader: bool, why: str) -> None:
        if leader == self.leader:
            return
        self.leader = leader
        if leader:
            self.terms += 1
        log.info("%s %s leadership (%s)", self.name, "took" if leader else "gave up", why)
        if self.on_change is not None:
            self.on_change(leader)

    async def _run(self) -> None:
        while True:
            if self.leader:
                renewed = await self.renew(step_down_unanswered=False)
                await asyncio.sleep(self.ttl / 3 if renewed or not self.leader else min(self.ttl / 3, FOLLOWER_POLL_S))
            else:
                await self.try_acquire()
                await asyncio.sleep(self.ttl / 3 if self.leader else min(self.ttl / 3, FOLLOWER_POLL_S))

    async def try_acquire(self) -> bool:
        if await self._create():
            return True
        try:
            entry = await asyncio.wait_for(self.kv.get(LEASE_KEY), self.ttl / 3)
        except Exception:  # deleted or expired just now, or no answer: try again next poll
            return False
        now = time.monotonic()
        self.holder = (entry.value or b"").decode(errors="replace")
        if entry.revision != self._seen_revision:
            self._seen_revision, self._seen_at = entry.revision or 0, now
            return False
        if now - self._seen_at < self.ttl:
            return False
        # Not renewed for a whole TTL as seen from here: the holder is dead or frozen.
        try:
            await asyncio.wait_for(self.kv.delete(LEASE_KEY, last=entry.revision), self.ttl / 3)
        except Exception:  # renewed (or taken) in between: not stale after all
            return False
        log.info(
            "%s: the lease of %s expired (revision %d unchanged for %.1fs)", self.name, self.holder, entry.revision, now - self._seen_at
        )
        return await self._create()

    async def _create(self) -> bool:
        sent = time.monotonic()
        try:
            revision = await asyncio.wait_for(self.kv.create(LEASE_KEY, self.name.encode()), self.ttl / 3)
        except Exception:  # the key exists (another leader), or no answer: stay a follower
            return False
        self.revision = revision
        self.valid_until = sent + self.ttl * SAFETY
        self._set(True, f"lease revision {revision}")
        return True

    async def renew(self, *, step_down_unanswered: bool = True) -> bool:
        """Compare-and-set on our revision. A refusal steps down; so does no answer, unless ``step_down_unanswered``
        is false and the lease is still trusted (the renewal loop then retries while ``holds()``)."""
        for attempt in range(2):
            sent = time.monotonic()
            try:
                revision = await asyncio.wait_for(self.kv.update(LEASE_KEY, self.name.encode(), last=self.revision), self.ttl / 3)
            except KeyWrongLastSequenceError:
                # Not at our revision: another node took the key, unless a renewal of ours that timed out here
                # reached the server after all (a stalled server answers late). Then we renew from that write.
                if attempt == 0 and await self._renewed_late():
                    continue
                self._step_down("the key moved on: another node holds it")
                return False
            except Exception as exc:
                if step_down_unanswered or not self.holds():
                    self._step_down(f"renewal failed: {type(exc).__name__}")
                return False
            self.revision = revision
            self.valid_until = sent + self.ttl * SAFETY
            return True
        return False

    async def _renewed_late(self) -> bool:
        """Whether the key holds a later write of ours than we know of; if so, adopt its revision."""
        try:
            entry = await asyncio.wait_for(self.kv.get(LEASE_KEY), self.ttl / 3)
        except Exception:
            return False
        if (entry.value or b"") != self.name.encode() or (entry.revision or 0) <= self.revision:
            return False
        self.revision = entry.revision or 0
        return True

    def _step_down(self, why: str) -> None:
        self.valid_until = 0.0
        self._set(False, why)
