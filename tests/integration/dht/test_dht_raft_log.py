"""What ``_RaftLog`` changes in pysyncobj's AppendEntries handling, and the pysyncobj internals it relies on.

A follower deletes entries only from the first one that conflicts with the
leader's (Raft §5.3); an AppendEntries that re-sends entries it holds is
trimmed to what is new, or turned into a heartbeat at its last entry, so
pysyncobj (which deletes everything after ``prevLogIdx``) deletes nothing.
A leader never moves a member's next index back on a success reply.
"""

from __future__ import annotations

from typing import Any

import pysyncobj.pickle as syncobj_pickle  # type: ignore[import-untyped]
import pytest
from pysyncobj import SyncObj, SyncObjConf

from transports.dht.node import free_tcp_port
from transports.dht.replica import _RaftLog

T = 3  # the current term


def _follower(log: list[tuple[bytes, int, int]], matched: tuple[int, int] = (0, 0)) -> _RaftLog:
    raft: _RaftLog = object.__new__(_RaftLog)  # no sockets, no thread: only the state the rewrite reads
    raft._SyncObj__raftLog = log
    raft._SyncObj__raftCurrentTerm = T
    raft._SyncObj__recvTransmission = ""
    raft._matched = matched
    return raft


def _log(terms: list[int]) -> list[tuple[bytes, int, int]]:
    return [(b"e%d" % i, i, term) for i, term in enumerate(terms, start=1)]


def _append(prev: int, prev_term: int, entries: list[tuple[bytes, int, int]], term: int = T) -> dict[str, Any]:
    return {"type": "append_entries", "term": term, "commit_index": 0, "prevLogIdx": prev, "prevLogTerm": prev_term, "entries": entries}


def test_a_resend_of_entries_the_follower_holds_becomes_a_heartbeat_at_its_last_entry() -> None:
    log = _log([1, 3, 3, 3, 3])
    message = _append(2, 3, log[2:4])  # entries 3..4 again; the follower already has 5 (of this term)
    assert _follower(log)._keep_matching_entries(message)
    assert (message["prevLogIdx"], message["prevLogTerm"], message["entries"]) == (5, 3, [])


def test_only_the_entries_the_follower_lacks_are_appended() -> None:
    log = _log([1, 3, 3])
    leader = _log([1, 3, 3, 3, 3])
    message = _append(1, 1, leader[1:])
    assert _follower(log)._keep_matching_entries(message)
    assert (message["prevLogIdx"], message["prevLogTerm"], message["entries"]) == (3, 3, leader[3:])


def test_a_conflicting_entry_is_still_replaced_with_everything_after_it() -> None:
    log = _log([1, 1, 2, 2])  # 3..4 from a deposed leader of term 2
    leader = _log([1, 1, 3])
    message = _append(1, 1, leader[1:])
    assert _follower(log)._keep_matching_entries(message)
    assert (message["prevLogIdx"], message["prevLogTerm"], message["entries"]) == (2, 1, leader[2:])


def test_a_tail_not_known_to_be_the_leaders_is_left_to_pysyncobj() -> None:
    log = _log([1, 2, 2, 2])  # the leader of term 3 has not confirmed 3..4 yet
    message = _append(1, 1, log[1:2])
    assert _follower(log)._keep_matching_entries(message)
    assert message["prevLogIdx"] == 2 and message["entries"] == []  # pysyncobj deletes 3..4, as Raft allows
    confirmed = _append(1, 1, log[1:2])
    assert _follower(log, matched=(T, 4))._keep_matching_entries(confirmed)  # an earlier message of this term covered 4
    assert confirmed["prevLogIdx"] == 4


@pytest.mark.parametrize(
    "message",
    [
        _append(6, 3, []),  # beyond the log: refused, the leader backs up
        _append(2, 2, []),  # wrong term at prevLogIdx: refused
        _append(2, 1, [], term=T - 1),  # from a deposed leader: ignored
    ],
)
def test_a_message_pysyncobj_refuses_is_left_as_sent(message: dict[str, Any]) -> None:
    sent = dict(message)
    assert not _follower(_log([1, 3, 3]))._keep_matching_entries(message)
    assert message == sent


def test_an_entry_sent_in_chunks_is_joined_into_one_append_entries() -> None:
    entry = (b"x" * 100, 4, T)
    data = syncobj_pickle.dumps(entry)
    raft = _follower(_log([1, 3, 3, 3]))
    raft._SyncObj__recvTransmission = data[:60]
    message = {"type": "append_entries", "term": T, "commit_index": 0, "prevLogIdx": 3, "prevLogTerm": 3}
    message |= {"transmission": "finish", "data": data[60:]}
    raft._join_transmission(message)
    assert "transmission" not in message and message["entries"] == [entry] and raft._SyncObj__recvTransmission == ""
    assert raft._keep_matching_entries(message) and message["prevLogIdx"] == 4 and message["entries"] == []


def test_pysyncobj_still_has_the_internals_the_rewrite_relies_on() -> None:
    port = free_tcp_port()
    raft = _RaftLog(f"127.0.0.1:{port}", [], SyncObjConf(autoTick=False, password="s"), lambda entry: None)
    try:
        assert "_SyncObj__onMessageReceived" in vars(SyncObj)
        # the transport calls our handler (SyncObj.__init__ looks it up by its mangled name)
        assert raft._SyncObj__transport._onMessageReceivedCallback.__func__ is _RaftLog._SyncObj__onMessageReceived
        assert raft._SyncObj__raftLog[-1][1:] == (1, 0) and raft._SyncObj__raftCurrentTerm == 0
        assert raft._SyncObj__raftNextIndex == {} and raft._SyncObj__recvTransmission == ""
    finally:
        raft.destroy()


def test_a_chunk_marked_finish_too_early_is_kept_for_the_real_last_one() -> None:
    entry = (b"x" * 100, 4, T)
    data = syncobj_pickle.dumps(entry)
    raft = _follower(_log([1, 3, 3, 3]))
    raft._SyncObj__recvTransmission = data[:40]
    early = {"type": "append_entries", "term": T, "commit_index": 0, "prevLogIdx": 3, "prevLogTerm": 3}
    early |= {"transmission": "finish", "data": data[40:80]}
    raft._join_transmission(early)
    assert early["transmission"] == "process"  # pysyncobj adds it to the chunks held, as for any middle chunk
    raft._SyncObj__recvTransmission = data[:80]
    last = {"type": "append_entries", "term": T, "commit_index": 0, "prevLogIdx": 3, "prevLogTerm": 3}
    last |= {"transmission": "finish", "data": data[80:]}
    raft._join_transmission(last)
    assert last["entries"] == [entry]


@pytest.mark.parametrize("kind", [SyncObj, _RaftLog])
def test_a_follower_keeps_the_entries_it_acknowledged_when_an_earlier_append_is_sent_again(kind: type[SyncObj]) -> None:
    """Through pysyncobj's own handler: plain pysyncobj 0.3.17 drops entries 7..11 it had acknowledged; ``_RaftLog`` keeps them."""
    me, leader = f"127.0.0.1:{free_tcp_port()}", f"127.0.0.1:{free_tcp_port()}"  # nobody listens on the leader's port
    conf = SyncObjConf(autoTick=False, password="s")
    raft = _RaftLog(me, [leader], conf, lambda entry: None) if kind is _RaftLog else SyncObj(me, [leader], conf)
    try:
        deliver = raft._SyncObj__transport._onMessageReceivedCallback
        node = next(iter(raft._SyncObj__otherNodes))
        entries = [(b"\x00", i, 1) for i in range(2, 12)]  # after pysyncobj's initial entry (index 1, term 0)
        deliver(node, _append(1, 0, entries, term=1))
        assert raft._SyncObj__raftLog[-1][1] == 11  # acknowledged up to 11
        deliver(node, _append(1, 0, entries[:5], term=1))  # the leader sends 2..6 again
        kept = raft._SyncObj__raftLog[-1][1]
        assert kept == (11 if kind is _RaftLog else 6)
    finally:
        raft.destroy()


@pytest.mark.parametrize("kind", [SyncObj, _RaftLog])
def test_a_leader_does_not_send_again_what_is_in_flight_when_an_earlier_reply_arrives(kind: type[SyncObj]) -> None:
    """Through pysyncobj's own handler: plain pysyncobj 0.3.17 moves the next index back to 5; ``_RaftLog`` keeps 12."""
    me, member = f"127.0.0.1:{free_tcp_port()}", f"127.0.0.1:{free_tcp_port()}"
    conf = SyncObjConf(autoTick=False, password="s")
    raft = _RaftLog(me, [member], conf, lambda entry: None) if kind is _RaftLog else SyncObj(me, [member], conf)
    try:
        deliver = raft._SyncObj__transport._onMessageReceivedCallback
        node = next(iter(raft._SyncObj__otherNodes))
        raft._SyncObj__raftState = 2  # _RAFT_STATE.LEADER
        raft._SyncObj__raftNextIndex[node], raft._SyncObj__raftMatchIndex[node] = 12, 0  # entries up to 11 sent
        deliver(node, {"type": "next_node_idx", "next_node_idx": 5, "reset": False, "success": True})  # the reply for 2..4
        assert raft._SyncObj__raftMatchIndex[node] == 4
        assert raft._SyncObj__raftNextIndex[node] == (12 if kind is _RaftLog else 5)
    finally:
        raft._SyncObj__raftState = 0
        raft.destroy()
