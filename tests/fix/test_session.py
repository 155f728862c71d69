"""The FIX session layer of dex-fix over real sockets: logon, logout, heartbeats, sequence numbers, garbage."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fix.conftest import fix_exchange
from tests.fix.peer import FixPeer
from transports.fix import protocol as p
from transports.fix.settings import Passwords

ORDER = ((p.CL_ORD_ID, "o1"), (p.SYMBOL, "BTC-USD"), (p.SIDE, "1"), (p.ORDER_QTY, "0.1"), (p.ORD_TYPE, "2"), (p.PRICE, "29000"))


def test_logon_and_logout(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            peer = await FixPeer.open(url, "alice")
            answer = await peer.logon(heartbeat=30, reset=True)
            assert answer.get(p.HEART_BT_INT) == b"30"
            assert answer.get(p.TARGET_COMP_ID) == b"alice"
            await peer.send(p.LOGOUT)
            await peer.expect(p.LOGOUT)
            assert await peer.closed()

    asyncio.run(scenario())


def test_refused_logons_get_a_logout_naming_the_reason(tmp_path: Path) -> None:
    async def refused(url: str, sender: str, first: bytes = p.LOGON, password: str | None = None) -> str:
        peer = await FixPeer.open(url, sender)
        pairs: list[tuple[int, object]] = [(p.ENCRYPT_METHOD, 0), (p.HEART_BT_INT, 30)]
        if password is not None:
            pairs.append((p.PASSWORD, password))
        await peer.send(first, *pairs)
        logout = await peer.expect(p.LOGOUT)
        assert await peer.closed()
        return (logout.get(p.TEXT) or b"").decode()

    async def scenario() -> None:
        async with fix_exchange(tmp_path, passwords=Passwords({"alice": "s3cret"})) as (url, _):
            assert "Password" in await refused(url, "alice", password="wrong")
            assert "Password" in await refused(url, "mallory", password="s3cret")
            assert "Logon" in await refused(url, "alice", first=p.HEARTBEAT)
            good = await FixPeer.open(url, "alice")
            await good.logon(password="s3cret", reset=True)
            assert "already logged on" in await refused(url, "alice", password="s3cret")

    asyncio.run(scenario())


def test_test_request_heartbeat_and_heartbeat_timeout(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            peer = await FixPeer.open(url, "alice")
            await peer.logon(heartbeat=1, reset=True)
            await peer.send(p.TEST_REQUEST, (p.TEST_REQ_ID, "ping-1"))
            answer = await peer.expect(p.HEARTBEAT)
            assert answer.get(p.TEST_REQ_ID) == b"ping-1"
            # Silent from now on: the server sends heartbeats, then a TestRequest, then logs out and closes.
            seen: list[bytes] = []
            try:
                while True:
                    seen.append((await peer.read(timeout=6)).get(p.MSG_TYPE) or b"")
            except EOFError:
                pass
            assert p.HEARTBEAT in seen
            assert p.TEST_REQUEST in seen
            assert seen[-1] == p.LOGOUT

    asyncio.run(scenario())


def test_sequence_numbers_survive_a_server_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            peer = await FixPeer.open(url, "alice")
            await peer.logon(reset=True)
            await peer.send(p.TEST_REQUEST, (p.TEST_REQ_ID, "x"))
            await peer.expect(p.HEARTBEAT)
            await peer.send(p.LOGOUT)
            last = await peer.expect(p.LOGOUT)
            sent_by_server = int(last.get(p.MSG_SEQ_NUM) or 0)
            await peer.close()
        async with fix_exchange(tmp_path) as (url, _):  # a new server on the same state directory
            again = await FixPeer.open(url, "alice")
            again.next_out = peer.next_out
            answer = await again.logon()
            assert int(answer.get(p.MSG_SEQ_NUM) or 0) == sent_by_server + 1
            await again.close()
            stale = await FixPeer.open(url, "alice")  # a client that forgot its numbers is told, not served
            stale.next_out = 1
            await stale.send(p.LOGON, (p.ENCRYPT_METHOD, 0), (p.HEART_BT_INT, 30))
            logout = await stale.expect(p.LOGOUT)
            assert b"MsgSeqNum too low" in (logout.get(p.TEXT) or b"")

    asyncio.run(scenario())


def test_resend_request_is_answered_with_a_gap_fill_and_our_gap_is_recovered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            peer = await FixPeer.open(url, "alice")
            await peer.logon(reset=True)
            await peer.send(p.TEST_REQUEST, (p.TEST_REQ_ID, "x"))
            await peer.expect(p.HEARTBEAT)
            await peer.send(p.RESEND_REQUEST, (p.BEGIN_SEQ_NO, 1), (p.END_SEQ_NO, 0))
            fill = await peer.expect(p.SEQUENCE_RESET)
            assert fill.get(p.GAP_FILL_FLAG) == b"Y" and fill.get(p.POSS_DUP_FLAG) == b"Y"
            assert fill.get(p.MSG_SEQ_NUM) == b"1" and fill.get(p.NEW_SEQ_NO) == b"3"  # Logon 1, Heartbeat 2 sent so far
            # Skip two numbers: the order waits, the server asks for the gap; our gap fill releases the order.
            gap_start = peer.next_out
            peer.next_out += 2
            await peer.send(p.NEW_ORDER_SINGLE, *ORDER)
            ask = await peer.expect(p.RESEND_REQUEST)
            assert int(ask.get(p.BEGIN_SEQ_NO) or 0) == gap_start
            await peer.send(p.SEQUENCE_RESET, (p.GAP_FILL_FLAG, "Y"), (p.NEW_SEQ_NO, gap_start + 2), seq=gap_start, poss_dup=True)
            report = await peer.expect(p.EXECUTION_REPORT)
            assert report.get(p.CL_ORD_ID) == b"o1" and report.get(p.EXEC_TYPE) == b"0"
            await peer.send(p.TEST_REQUEST, (p.TEST_REQ_ID, "after"))
            assert (await peer.expect(p.HEARTBEAT)).get(p.TEST_REQ_ID) == b"after"

    asyncio.run(scenario())


def test_garbled_and_unknown_messages_are_rejected_and_the_server_keeps_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            alice = await FixPeer.open(url, "alice")
            await alice.logon(reset=True)
            bob = await FixPeer.open(url, "bob")
            await bob.logon(reset=True)
            # A frame with a wrong checksum: Reject, and the session goes on.
            bad = p.encode(alice.message(p.NEW_ORDER_SINGLE, *ORDER), "alice", "DEX", alice.next_out)
            alice.next_out += 1
            await alice.send_raw(bad[:-4] + b"000\x01")
            reject = await alice.expect(p.REJECT)
            assert b"CheckSum" in (reject.get(p.TEXT) or b"") and reject.get(p.SESSION_REJECT_REASON) is not None
            # A MsgType we do not serve: Reject 373 = 11.
            number = await alice.send(b"ZZ", (p.TEXT, "what"))
            reject = await alice.expect(p.REJECT)
            assert reject.get(p.SESSION_REJECT_REASON) == b"11" and int(reject.get(p.REF_SEQ_NUM) or 0) == number
            # A NewOrderSingle without OrderQty: Reject naming tag 38.
            await alice.send(p.NEW_ORDER_SINGLE, *(pair for pair in ORDER if pair[0] != p.ORDER_QTY))
            reject = await alice.expect(p.REJECT)
            assert reject.get(p.REF_TAG_ID) == b"38" and reject.get(p.SESSION_REJECT_REASON) == b"1"
            await alice.send(p.NEW_ORDER_SINGLE, *ORDER)
            assert (await alice.expect(p.EXECUTION_REPORT)).get(p.EXEC_TYPE) == b"0"
            # Bytes that cannot be framed end that session with a Logout; bob is still served.
            await alice.send_raw(b"GET / HTTP/1.1\r\n\r\n")
            logout = await alice.expect(p.LOGOUT, skip=frozenset({p.HEARTBEAT, p.EXECUTION_REPORT}))
            assert b"garbled" in (logout.get(p.TEXT) or b"")
            assert await alice.closed()
            # A frame declaring more than the bound: Logout before its body is read.
            carol = await FixPeer.open(url, "carol")
            await carol.logon(reset=True)
            await carol.send_raw(b"8=FIX.4.4\x019=99999999\x0135=D\x01")
            assert b"at most" in ((await carol.expect(p.LOGOUT)).get(p.TEXT) or b"")
            await bob.send(p.TEST_REQUEST, (p.TEST_REQ_ID, "still-there"))
            assert (await bob.expect(p.HEARTBEAT)).get(p.TEST_REQ_ID) == b"still-there"

    asyncio.run(scenario())


def test_a_message_with_another_comp_id_is_rejected_and_the_session_ends(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            peer = await FixPeer.open(url, "alice")
            await peer.logon(reset=True)
            peer.sender = "mallory"  # the same connection, claiming another SenderCompID
            await peer.send(p.NEW_ORDER_SINGLE, *ORDER)
            reject = await peer.expect(p.REJECT)
            assert reject.get(p.SESSION_REJECT_REASON) == b"9"
            await peer.expect(p.LOGOUT)
            assert await peer.closed()

    asyncio.run(scenario())
