"""The replicated order log of one shard of books, and how this node applies it.

A ``Replica`` is one member of the shard's Raft group (``pysyncobj``). Its
invariants:

* One sequencer. Only the Raft leader appends to the log; an entry proposed
  on any member is forwarded to it by pysyncobj. The leader of term T is the
  owner of every book of the shard during T (the term is the epoch number:
  a deposed owner cannot commit, because a majority has moved to T' > T).
* Acknowledged = committed. A client is answered only when its entry is
  committed (stored on a majority) and applied by the node it talks to.
* Applied once. When the owner changes under an entry (``NOT_LEADER``,
  ``LEADER_CHANGED``, ``DISCARDED``, ...) the proposing node proposes the
  same bytes again; every member applies an entry (origin, first request
  number) only the first time it appears in the log, a rule that depends on
  the log alone, so every member skips the same copies.
* Same log, same books. Every member applies the committed entries in log
  order through the shard's ``Gateway`` (one pure ``engine.Engine``), so every
  member computes the same events and the same ``state_hash()``. The
  applier is the gateway's only submitter, so entries reach the engine in
  log order; a refusal (``Overloaded``) is retried, never skipped.
* Acknowledged entries stay. A follower deletes entries only from the first
  one that conflicts with the leader's (Raft's rule; ``_RaftLog`` enforces it
  on top of pysyncobj, which deleted on every re-sent AppendEntries), and
  every member digests the sequence it applied (``AppliedSequence``,
  ``/v1/applied``) so that members can be compared entry by entry.
* No pickle of ours. Entries are ``entries.encode_entry`` bytes. pysyncobj
  wraps them (and its own messages) in pickle on its TCP link and in its
  snapshots: the link is authenticated and encrypted by the shared cluster
  secret (``SyncObjConf(password=...)``, Fernet), so a peer without the
  secret is disconnected before anything it sent is unpickled; Raft binds
  loopback unless told otherwise; log compaction (snapshot files) is off.
* Durable votes. With a journal (the default of ``dex-node``), the log,
  the current term and the vote survive ``kill -9`` (pysyncobj's mmap'd
  FileJournal; its small ``.meta`` file is pickled by pysyncobj, on our own
  disk). A member restarted without its journal must rejoin as a new member
  address: a member that forgets its vote or its log can break Raft's safety.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pysyncobj.pickle as syncobj_pickle  # type: ignore[import-untyped]
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

from engine import Command, ExchangeError, MalformedMessage, NotConnected, Overloaded
from transports.core.gateway import Gateway, Replies
from transports.core.hrw import preferred_owner
from transports.dht.entries import decode_entry, encode_entry

log = logging.getLogger("dex-node.replica")

HAND_BACK_PERIOD_S = 2.0
REPROPOSE_DELAY_S = 0.05
MAX_REPROPOSALS = 200  # with the delay: ~10 s, inside commit_timeout_s
MAX_ORIGINS = 4096  # proposing processes remembered for de-duplication (a restart is a new origin)
MAX_IDS_PER_ORIGIN = 65_536  # entries remembered per origin (re-proposals stop long before these are forgotten)
_RETRY = frozenset(
    {FAIL_REASON.NOT_LEADER, FAIL_REASON.LEADER_CHANGED, FAIL_REASON.MISSING_LEADER, FAIL_REASON.UNKNOWN_OUTCOME, FAIL_REASON.DISCARDED}
)

_FAILED = {
    FAIL_REASON.QUEUE_FULL: "the owner's queue is full",
    FAIL_REASON.MISSING_LEADER: "no owner elected yet (election in progress)",
    FAIL_REASON.DISCARDED: "the owner changed and discarded the entry",
    FAIL_REASON.NOT_LEADER: "the owner changed before the entry committed",
    FAIL_REASON.LEADER_CHANGED: "the owner changed before the entry committed",
    FAIL_REASON.REQUEST_DENIED: "the owner denied the entry",
    FAIL_REASON.UNKNOWN_OUTCOME: "outcome unknown",
}


@dataclass(frozen=True, slots=True)
class ReplicaSettings:
    self_address: str  # host:port of this member's Raft endpoint
    members: tuple[str, ...]  # every member's Raft endpoint, this one included
    secret: str  # shared cluster secret: authenticates and encrypts the Raft links
    shard: str = "books"
    commit_timeout_s: float = 15.0
    max_entry_commands: int = 20_000  # most commands applied in one gateway submission
    journal: str | None = None  # Raft log + term/vote on disk (pysyncobj FileJournal); None = memory only


class AppliedSequence:
    """A digest of the entries this member applied, in order: two members applied the same sequence iff equal.

    ``digest`` chains BLAKE2b over every entry given to the engine (the
    re-proposed copies skipped by the de-duplication rule are not), so it
    compares the order of application, not only the resulting books (which
    ``state_hash`` compares). The digests after the last ``HISTORY`` entries
    are kept, so a lagging member can be checked as a prefix of another.
    """

    HISTORY = 65_536

    def __init__(self) -> None:
        self.count = 0
        self.digest = bytes(16)
        self._history: deque[bytes] = deque([self.digest], maxlen=self.HISTORY + 1)  # digests after count-len+1 .. count

    def add(self, entry: bytes) -> None:
        chained = hashlib.blake2b(self.digest, digest_size=16)
        chained.update(entry)
        self.digest = chained.digest()
        self.count += 1
        self._history.append(self.digest)

    def digest_at(self, count: int) -> bytes | None:
        """The digest after the first ``count`` applied entries, or None if not applied yet or forgotten."""
        back = self.count - count
        return self._history[-1 - back] if 0 <= back < len(self._history) else None


class _RaftLog(SyncObj):  # type: ignore[misc]
    """pysyncobj's replicated state machine: its state is our Gateway; its one command appends an entry.

    It also corrects two things pysyncobj 0.3.17 does with AppendEntries (the
    name-mangled hooks below are checked against that version in the tests):

    * Leader: a success reply to an earlier AppendEntries set the follower's
      next index *back* to just after that reply, although later entries were
      already on their way; the leader then sent them again.
    * Follower: on every AppendEntries that did not end at its last entry, it
      deleted its log after ``prevLogIdx`` before appending, even where its
      entries were the leader's. Raft deletes only from the first *conflicting*
      entry (same index, different term): a follower that drops entries it has
      acknowledged can, for a moment, leave a committed entry on fewer than a
      majority (a leader lost then can lose an acknowledged order), and a
      follower that drops entries it has applied logged ``[critical]
      truncating already-applied log entries``. Both came from the re-sends.
    """

    # pysyncobj's private state used below, by the names it has in 0.3.17 (tests/integration/dht checks them).
    _SyncObj__raftLog: Any  # the journal: entries (command, index, term), indexed from 0
    _SyncObj__raftCurrentTerm: int
    _SyncObj__raftNextIndex: dict[Any, int]  # leader: the next index to send to each member
    _SyncObj__recvTransmission: Any  # follower: the chunks received so far of an entry sent in chunks

    def __init__(self, self_address: str, partners: list[str], conf: SyncObjConf, on_commit: Any) -> None:
        self._on_commit = on_commit
        self._matched = (0, 0)  # (term, index): this member's log equals the log of that term's leader up to index
        super().__init__(self_address, partners, conf)

    @replicated  # type: ignore[untyped-decorator]
    def append_entry(self, entry: bytes) -> int:
        # Runs in pysyncobj's thread, once per committed entry, in log order.
        self._on_commit(entry)
        return 0

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802 (pysyncobj's mangled name)
        # SyncObj.__init__ hands ``self.__onMessageReceived`` to its transport, which Python
        # looks up as this name: every message from a peer passes here, in pysyncobj's thread.
        handle = SyncObj._SyncObj__onMessageReceived
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "append_entries" and message.get("transmission") == "finish":
            self._join_transmission(message)
        if kind == "append_entries" and "prevLogIdx" in message and "transmission" not in message:
            accepted = self._keep_matching_entries(message)
            handle(self, node, message)
            if accepted:
                self._matched = (int(message["term"]), int(self._SyncObj__raftLog[-1][1]))
            return
        if kind == "next_node_idx" and message.get("success") and not message.get("reset"):
            next_index = self._SyncObj__raftNextIndex
            sent = next_index.get(node)
            handle(self, node, message)
            if sent is not None and node in next_index and next_index[node] < sent:
                next_index[node] = sent  # the entries after the reply are in flight (one ordered TCP stream)
            return
        handle(self, node, message)

    def _join_transmission(self, message: dict[str, Any]) -> None:
        """Turn the last chunk of an entry sent in chunks (64 KiB or more) into one plain AppendEntries.

        pysyncobj would join and unpickle the chunks itself, then delete this
        log after ``prevLogIdx`` like any other AppendEntries; joined here, the
        entry goes through ``_keep_matching_entries``. The same bytes, unpickled
        the same way, from the same authenticated link.

        pysyncobj's leader marks a chunk "finish" by comparing its position with
        the length of the entry's command instead of its pickled form, so when
        a chunk boundary falls between the two, the second-to-last chunk comes
        marked "finish" too; unpickling it failed with "pickle data was
        truncated" and a logged ``failed _onTick`` error. Such a chunk is passed
        on as the "process" chunk it is: the real last one follows.
        """
        if int(message["term"]) < int(self._SyncObj__raftCurrentTerm):
            return  # pysyncobj ignores it, and keeps the chunks it holds
        joined = self._SyncObj__recvTransmission
        if not isinstance(joined, bytes):
            return  # no "start" chunk received (a new connection): left to pysyncobj as it was sent
        try:
            entry = syncobj_pickle.loads(joined + message["data"])
        except Exception:
            message["transmission"] = "process"
            return
        self._SyncObj__recvTransmission = ""
        del message["transmission"], message["data"]
        message["entries"] = [entry]

    def _keep_matching_entries(self, message: dict[str, Any]) -> bool:
        """Rewrite an AppendEntries so that pysyncobj deletes only conflicting entries; whether it will accept it.

        pysyncobj deletes everything after ``prevLogIdx`` whenever the log goes on
        beyond it. So the entries this log already holds with the same term (by
        Raft's log matching, the same entries) are dropped from the message and
        ``prevLogIdx`` moves up to the last of them. A message that brings nothing
        new becomes a heartbeat at this log's last entry when that whole log is
        known to be the leader's (its last entry is of the leader's term, or an
        earlier message of this term covered it); otherwise it is left as sent.
        """
        term = int(message["term"])
        if term < int(self._SyncObj__raftCurrentTerm):
            return False  # refused by pysyncobj: changes nothing
        log_ = self._SyncObj__raftLog
        first, last = int(log_[0][1]), int(log_[-1][1])
        prev = message["prevLogIdx"]
        if prev is None or not first <= prev <= last or log_[prev - first][2] != message["prevLogTerm"]:
            return False  # pysyncobj refuses it and the leader backs up: nothing is deleted
        entries = list(message.get("entries") or ())
        keep = 0
        while keep < len(entries) and entries[keep][1] <= last and log_[entries[keep][1] - first][2] == entries[keep][2]:
            keep += 1
        if keep:
            prev, prev_term = entries[keep - 1][1], entries[keep - 1][2]
        else:
            prev_term = message["prevLogTerm"]
        rest = entries[keep:]
        matched_term, matched_index = self._matched
        if not rest and prev < last and (log_[-1][2] == term or (matched_term == term and matched_index >= last)):
            prev, prev_term = last, log_[-1][2]
        message["prevLogIdx"], message["prevLogTerm"], message["entries"] = prev, prev_term, rest
        return True


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[Replies]
    started: float = field(default_factory=time.monotonic)


class Replica:
    """This node's member of the shard's Raft group, applying the committed log to ``gateway``."""

    def __init__(self, gateway: Gateway, settings: ReplicaSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.origin = os.urandom(8)  # this process's proposals; a restart is a new origin
        self._requests = 0
        self._waiters: dict[int, _Waiter] = {}
        self._committed: deque[bytes] = deque()
        self._outbox: list[tuple[int, Sequence[Command]]] = []
        self._flush_scheduled = False
        self._proposed = 0  # commands of this node's clients still waiting for their commit: counted against the buffer
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._applier: asyncio.Task[None] | None = None
        self._raft: _RaftLog | None = None
        self.applied_entries = 0
        self.malformed_entries = 0
        self.hand_backs = 0  # leadership transfers this node asked for, as owner
        self.reproposals = 0  # entries proposed again after the owner changed under them
        self.duplicate_entries = 0  # committed copies skipped because the same entry was applied before
        self.sequence = AppliedSequence()  # what this member gave its engine, in order (compared across members)
        self._applied_ids: dict[bytes, tuple[set[int], deque[int]]] = {}
        self._next_hand_back = time.monotonic() + HAND_BACK_PERIOD_S

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        s = self.settings
        partners = [m for m in s.members if m != s.self_address]
        rank = sorted(s.members, key=lambda m: m != preferred_owner(s.shard, s.members)).index(s.self_address)
        # Rendezvous hashing picks the preferred owner; it times out first, so it
        # usually wins the first election. Raft alone decides who owns.
        low = 0.3 if rank == 0 else 0.9
        conf = SyncObjConf(
            password=s.secret,
            raftMinTimeout=low,
            raftMaxTimeout=low + 0.6,
            appendEntriesPeriod=0.05,
            appendEntriesUseBatch=False,  # send each entry (and each new commit index) at once: latency
            connectionRetryTime=0.5,
            connectionTimeout=1.5,
            autoTickPeriod=0.005,
            commandsWaitLeader=True,
            logCompactionMinEntries=2**62,  # no snapshots: pysyncobj pickles them (see module docstring)
            logCompactionMinTime=2**31,
            dynamicMembershipChange=False,
            useFork=False,
            journalFile=s.journal,
        )
        self._raft = _RaftLog(s.self_address, partners, conf, self._committed_from_thread)
        self._raft.addOnTickCallback(self._hand_back_tick)
        self._applier = self._loop.create_task(self._apply_committed(), name="dht-applier")

    async def stop(self) -> None:
        if self._raft is not None:
            raft, self._raft = self._raft, None
            await asyncio.get_running_loop().run_in_executor(None, raft.destroy_synchronous)
        if self._applier is not None:
            self._applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._applier
            self._applier = None
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(NotConnected("the node stopped; outcome unknown, resubmit (duplicates are rejected)"))
        self._waiters.clear()

    # ------------------------------------------------------------- propose
    async def submit(self, commands: Sequence[Command]) -> Replies:
        """Replicate ``commands`` (trader already bound) and return their events once committed and applied here."""
        raft = self._raft
        loop = self._loop
        if raft is None or loop is None:
            raise NotConnected("the node is not running")
        gateway = self.gateway
        if gateway.queue_depth + self._proposed + len(commands) > gateway.config.buffer:
            gateway.stats.overloaded += 1
            raise Overloaded(f"queue full ({gateway.queue_depth + self._proposed} commands waiting); retry later")
        if len(commands) > self.settings.max_entry_commands:
            raise MalformedMessage(f"a batch holds at most {self.settings.max_entry_commands} commands")
        self._requests += 1
        request = self._requests
        future: asyncio.Future[Replies] = loop.create_future()
        self._waiters[request] = _Waiter(future)
        self._outbox.append((request, commands))
        self._proposed += len(commands)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)  # every batch submitted in this loop turn goes in the same entry
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.commit_timeout_s)
        except TimeoutError:
            raise NotConnected(
                f"not committed within {self.settings.commit_timeout_s:g}s (no majority?); outcome unknown, "
                "resubmit with the same client order ids (duplicates are rejected)"
            ) from None
        finally:
            self._waiters.pop(request, None)
            self._proposed -= len(commands)

    async def barrier(self, timeout: float) -> None:
        """Return once every entry committed before this call is applied on this node (a read through the log).

        Raises ``NotConnected`` when no majority commits the barrier within ``timeout`` seconds.
        """
        try:
            await asyncio.wait_for(self.submit(()), timeout)
        except TimeoutError:
            raise NotConnected(f"no majority within {timeout:g}s: this node's view may be behind") from None

    def _flush(self) -> None:
        """Propose what this node's clients submitted since the last flush: one entry per ``max_entry_commands``."""
        self._flush_scheduled = False
        raft, loop = self._raft, self._loop
        outbox, self._outbox = self._outbox, []
        if raft is None or loop is None or not outbox:
            return
        limit = min(self.settings.max_entry_commands, self.gateway.config.buffer)
        entry: list[tuple[int, Sequence[Command]]] = []
        size = 0
        for item in outbox:
            if entry and size + len(item[1]) > limit:
                self._propose(raft, loop, entry)
                entry, size = [], 0
            entry.append(item)
            size += len(item[1])
        self._propose(raft, loop, entry)

    def _propose(self, raft: _RaftLog, loop: asyncio.AbstractEventLoop, requests: list[tuple[int, Sequence[Command]]]) -> None:
        self._append(encode_entry(self.origin, requests), [request for request, _ in requests], 0)

    def _append(self, entry: bytes, requests: list[int], attempt: int) -> None:
        raft, loop = self._raft, self._loop
        if raft is None or loop is None:
            return

        def done(result: Any, error: int) -> None:  # pysyncobj's thread, once the entry is applied there (or failed)
            if error != FAIL_REASON.SUCCESS:
                loop.call_soon_threadsafe(self._settled, entry, requests, attempt, error)

        raft.append_entry(entry, callback=done)

    def _settled(self, entry: bytes, requests: list[int], attempt: int, error: int) -> None:
        pending = [r for r in requests if (w := self._waiters.get(r)) is not None and not w.future.done()]
        if not pending or self._loop is None:
            return
        if error in _RETRY and attempt < MAX_REPROPOSALS:
            # The owner changed under the entry (or there was none for a moment). Propose the
            # same bytes again: if the first copy was committed after all, every member skips
            # the second (same origin and request numbers: ``_first_time``), so the batch is
            # applied once either way. The client's wait is bounded by commit_timeout_s.
            self.reproposals += 1
            self._loop.call_later(REPROPOSE_DELAY_S, self._append, entry, requests, attempt + 1)
            return
        for request in pending:
            self._fail(request, error)

    def _fail(self, request: int, error: int) -> None:
        waiter = self._waiters.get(request)
        if waiter is None or waiter.future.done():
            return
        what = _FAILED.get(error, f"replication failed ({error})")
        if error == FAIL_REASON.QUEUE_FULL:
            waiter.future.set_exception(Overloaded(f"{what}; nothing applied, retry"))
        elif error == FAIL_REASON.REQUEST_DENIED:
            waiter.future.set_exception(NotConnected(f"{what}; nothing applied, retry"))
        else:
            waiter.future.set_exception(NotConnected(f"{what}; outcome unknown, resubmit (duplicates are rejected)"))

    def _first_time(self, origin: bytes, entry_id: int) -> bool:
        """Whether this entry (origin, first request number) is applied for the first time; remembers it.

        A function of the log alone (same entries, same order, same bounded memory
        on every member), so every member skips exactly the same re-proposed copies.
        """
        seen = self._applied_ids.get(origin)
        if seen is None:
            seen = self._applied_ids[origin] = (set(), deque())
            if len(self._applied_ids) > MAX_ORIGINS:
                del self._applied_ids[next(iter(self._applied_ids))]  # the oldest origin (a long-gone process)
        ids, order = seen
        if entry_id in ids:
            return False
        ids.add(entry_id)
        order.append(entry_id)
        if len(order) > MAX_IDS_PER_ORIGIN:
            ids.discard(order.popleft())
        return True

    # ------------------------------------------------------------ hand-back
    def _hand_back_tick(self) -> None:
        """pysyncobj's thread, every tick: the owner hands leadership to the rendezvous-preferred live member.

        "Live" = this owner has a connection to it. pysyncobj refuses the
        transfer unless the target holds the whole log (so it wins the election
        it is told to start at once); Raft still decides. Checked at most once
        per ``HAND_BACK_PERIOD_S`` so that a refused target is not pressed.
        """
        raft = self._raft
        now = time.monotonic()
        if raft is None or now < self._next_hand_back or not raft._isLeader():
            return
        self._next_hand_back = now + HAND_BACK_PERIOD_S
        live = [self.settings.self_address] + [str(n) for n in raft.otherNodes if raft.isNodeConnected(n)]
        target = preferred_owner(self.settings.shard, live)
        if target != self.settings.self_address:
            self.hand_backs += 1
            raft.transferLeadership(target)

    # --------------------------------------------------------------- apply
    def _committed_from_thread(self, entry: bytes) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._on_committed, entry)

    def _on_committed(self, entry: bytes) -> None:
        self._committed.append(entry)
        self._wake.set()

    async def _apply_committed(self) -> None:
        """The gateway's only submitter: committed entries, in log order, coalesced into submissions."""
        committed = self._committed
        limit = min(self.settings.max_entry_commands, self.gateway.config.buffer)
        while True:
            if not committed:
                self._wake.clear()
                await self._wake.wait()
                continue
            group: list[tuple[bytes, list[tuple[int, int]]]] = []  # origin, [(request, command count)]
            commands: list[Command] = []
            while committed:
                try:
                    origin, requests, cmds = decode_entry(committed[0])
                except ExchangeError:
                    committed.popleft()
                    self.malformed_entries += 1  # same bytes on every member: every member skips it
                    log.error("skipped a committed entry that does not decode")
                    continue
                if group and len(commands) + len(cmds) > limit:
                    break
                entry = committed.popleft()
                if not self._first_time(origin, requests[0][0]):
                    self.duplicate_entries += 1
                    continue
                self.sequence.add(entry)
                group.append((origin, requests))
                commands.extend(cmds)
            if not group:
                continue
            replies = await self._submit_in_order(commands) if commands else []  # only barriers: nothing to apply
            self.applied_entries += len(group)
            offset = 0
            for origin, requests in group:
                for request, count in requests:
                    if origin == self.origin:
                        waiter = self._waiters.get(request)
                        if waiter is not None and not waiter.future.done():
                            waiter.future.set_result(replies[offset : offset + count])
                    offset += count

    async def _submit_in_order(self, commands: list[Command]) -> Replies:
        """Apply in log order; chunks no larger than the gateway's buffer (a member may have a smaller one)."""
        step = max(1, self.gateway.config.buffer)
        replies: Replies = []
        for start in range(0, len(commands), step):
            replies.extend(await self._submit_chunk(commands[start : start + step]))
        return replies

    async def _submit_chunk(self, commands: list[Command]) -> Replies:
        for attempt in range(1_000_000):  # ~17 minutes at most; a member must never skip an entry
            try:
                return await self.gateway.submit(commands, "dht")
            except Overloaded:
                if attempt % 1000 == 999:
                    log.warning("the gateway keeps refusing a committed entry; retrying")
                await asyncio.sleep(0.001)
        raise SystemExit("dex-node: cannot apply the committed log; stopping rather than diverging")

    # -------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        raft = self._raft
        if raft is None:
            return {"state": "stopped"}
        status = raft.getStatus()
        leader = status.get("leader")
        return {
            "self": self.settings.self_address,
            "members": list(self.settings.members),
            "preferred_owner": preferred_owner(self.settings.shard, self.settings.members),
            "owner": str(leader) if leader is not None else None,
            "is_owner": leader is not None and str(leader) == self.settings.self_address,
            "epoch": int(status.get("raft_term", 0)),
            "has_quorum": bool(status.get("has_quorum")),
            "commit_index": int(status.get("commit_idx", 0)),
            "last_applied": int(status.get("last_applied", 0)),
            "applied_entries": self.applied_entries,
            "hand_backs": self.hand_backs,
            "reproposals": self.reproposals,
            "duplicate_entries": self.duplicate_entries,
            "applied_count": self.sequence.count,
            "applied_digest": self.sequence.digest.hex(),
            "engine_seq": self.gateway.engine.seq,
            "state_hash": self.gateway.engine.state_hash(),
        }
