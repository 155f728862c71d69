"""Hostile input over FIX 4.4: oversize frames, oversize declared batches, sequence-gap floods, idle and
slow peers, garbage below and inside the session layer.

The attacker speaks raw TCP (``transports.fix.protocol`` encodes its
messages, so they are well-formed where the case wants them to be), each
connection as a SenderCompID of its own. Bounds: ``support.check``. Where
the wire names a refusal only in a Logout's Text, the reason is read from
the server's own count of refusals (``stats``' ``limits_exceeded``), never
from the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
import simplefix

from engine import RejectReason
from tests.hostile.conftest import started
from tests.hostile.support import Wire, idle, random_bytes, random_connections, run, send_and_close
from transports.core.limits import Limits
from transports.fix import protocol as p
from transports.fix.settings import SERVER_COMP_ID
from transports.registry import make_client

MIB = 1024 * 1024
MAX_BATCH = Limits().max_batch
READ_S = 10.0  # how long an attacker waits for the answers it expects
_names = itertools.count()


@pytest.fixture(scope="module")
def fix_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    yield from started("fix", tmp_path_factory.mktemp("hostile-fix"))


def message(msg_type: bytes, sender: str, seq: int, *pairs: tuple[int, object]) -> bytes:
    out = p.new_message(msg_type)
    for tag, value in pairs:
        out.append_pair(tag, value)
    return p.encode(out, sender, SERVER_COMP_ID, seq)


def logon(sender: str) -> bytes:
    return message(p.LOGON, sender, 1, (p.ENCRYPT_METHOD, 0), (p.HEART_BT_INT, 30), (p.RESET_SEQ_NUM_FLAG, "Y"))


def order(sender: str, seq: int, *extra: tuple[int, object]) -> bytes:
    """A NewOrderSingle: a small resting buy, far from the steady client's prices."""
    fields = ((p.CL_ORD_ID, f"h{seq}"), (p.SYMBOL, "BTC-USD"), (p.SIDE, 1), (p.ORDER_QTY, "0.01"), (p.ORD_TYPE, 2), (p.PRICE, "20000.00"))
    return message(p.NEW_ORDER_SINGLE, sender, seq, *fields, *extra)


def messages_in(received: bytes) -> list[simplefix.FixMessage]:
    """Every whole FIX message the server sent (up to bytes that do not frame)."""
    frames = p.FrameReader(1 << 20)
    frames.feed(received)
    out = []
    with contextlib.suppress(p.FrameError):
        for frame in frames.frames():
            if frame.message is not None:
                out.append(frame.message)
    return out


def of_type(received: bytes, msg_type: bytes) -> list[simplefix.FixMessage]:
    return [m for m in messages_in(received) if m.get(p.MSG_TYPE) == msg_type]


def logged_out(received: bytes) -> bool:
    return bool(of_type(received, p.LOGOUT))


async def limits_exceeded(w: Wire, limit: str) -> int:
    async with make_client("fix", f"observer{next(_names)}", w.url) as client:
        return int((await client.stats()).get("limits_exceeded", {}).get(limit, 0))


@contextlib.asynccontextmanager
async def session(w: Wire) -> AsyncIterator[tuple[str, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A logged-on raw session (its Logon answered)."""
    host, port = w.host_port()
    sender = f"mallory{next(_names)}"
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(logon(sender))
        frames = p.FrameReader(1 << 20)
        while not any(f.message is not None and f.message.get(p.MSG_TYPE) == p.LOGON for f in frames.frames()):
            data = await asyncio.wait_for(reader.read(65536), READ_S)
            assert data, "the server closed the connection instead of answering the Logon"
            frames.feed(data)
        yield sender, reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_until(reader: asyncio.StreamReader, enough: int, msg_type: bytes, timeout: float = READ_S) -> bytes:
    """What the server sends until ``enough`` messages of ``msg_type`` came, it closed, or ``timeout`` passed."""
    received = bytearray()
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(timeout):
            while len(of_type(bytes(received), msg_type)) < enough:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    break
                received += chunk
    return bytes(received)


# ------------------------------------------------------------------ oversize bytes and counts
def test_a_frame_declaring_16_mib_is_refused_from_its_body_length(fix_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        before = await limits_exceeded(w, "max_message_bytes")
        host, port = w.host_port()
        for _ in range(6):  # six in a row, each on a logged-on session
            sender = f"mallory{next(_names)}"
            huge = b"8=FIX.4.4\x019=%d\x01" % (16 * MIB) + bytes(16 * MIB)
            # The Logon and the frame's first 64 KiB, then a pause for the Logout (the server closes with the rest unread).
            early = len(logon(sender)) + 64 * 1024
            received = await send_and_close(host, port, logon(sender) + huge, read_s=2.0, complete=logged_out, early=early)
            assert of_type(received, p.LOGOUT), "no Logout for a frame over the bound"
        refused = await limits_exceeded(w, "max_message_bytes") - before
        return RejectReason.LIMIT_EXCEEDED if refused == 6 else None

    run(fix_wire, "six frames declaring 16 MiB (BodyLength)", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_declared_batch_over_max_batch_is_refused_whole(fix_wire: Wire) -> None:
    sent = 2_000

    async def attack(w: Wire) -> RejectReason | None:
        async with session(w) as (sender, reader, writer):
            first = order(sender, 2, (p.DEX_BATCH, 10**9))  # a billion declared; the server holds no more than it got
            writer.write(first + b"".join(order(sender, 3 + i) for i in range(sent - 1)))
            writer.write(message(p.TEST_REQUEST, sender, sent + 2, (p.TEST_REQ_ID, "end")))  # cuts the batch short
            received = await read_until(reader, sent, p.EXECUTION_REPORT)
        reports = of_type(received, p.EXECUTION_REPORT)
        assert len(reports) == sent, f"{len(reports)} answers to {sent} orders"
        reasons = {p.reject_reason(r.get(p.DEX_REASON)) for r in reports}
        assert {r.get(p.EXEC_TYPE) for r in reports} == {p.ExecType.REJECTED.encode()}, "an order of a refused batch was applied"
        return reasons.pop() if len(reasons) == 1 else None

    run(fix_wire, f"a batch declaring 10^9 orders, {sent} sent", attack, reason=RejectReason.LIMIT_EXCEEDED)


def test_a_flood_above_a_sequence_gap_is_bounded(fix_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with session(w) as (sender, reader, writer):
            reading = asyncio.ensure_future(read_until(reader, 1, p.LOGOUT, timeout=30))  # before the server's close
            padding = (p.TEXT, "x" * 8000)  # each queued message near the 8 KiB bound
            with contextlib.suppress(ConnectionError):
                for seq in range(1_000, 1_000 + 12_000):  # 2..999 never come: all of these wait for the resend
                    if reading.done():
                        break
                    writer.write(message(p.HEARTBEAT, sender, seq, padding))
                    if seq % 100 == 0:
                        await writer.drain()
            received = await reading
            ended = reader.at_eof() or writer.is_closing() or bool(of_type(received, p.LOGOUT))
        assert of_type(received, p.RESEND_REQUEST), "no ResendRequest for the gap"
        assert ended and seq < 1_000 + 12_000 - 1, "the server queued them all"
        return None

    run(fix_wire, "up to 12,000 messages of 8 KiB above a sequence gap", attack)


# ------------------------------------------------------------------ idle and slow peers
def test_five_hundred_idle_peers(fix_wire: Wire) -> None:
    run(fix_wire, "500 idle peers, half after the start of a frame (2 s)", idle(250, 2.0, b"8=FIX.4.4\x019=", 250))


def test_peers_that_send_a_logon_a_byte_at_a_time(fix_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        host, port = w.host_port()
        peers = [await asyncio.open_connection(host, port) for _ in range(200)]
        try:
            for i in range(8):  # 8 rounds, half a second apart: never a whole Logon
                for n, (_, writer) in enumerate(peers):
                    if not writer.is_closing():
                        writer.write(logon(f"slow{n}")[i : i + 1])
                await asyncio.sleep(0.5)
        finally:
            for _, writer in peers:
                writer.close()
        return None

    run(fix_wire, "200 peers sending a Logon one byte every 0.5 s", attack)


# ------------------------------------------------------------------ garbage
def test_random_bytes_below_the_session_layer(fix_wire: Wire) -> None:
    run(fix_wire, "random bytes, raw and after a frame's start", random_connections(10, 64 * 1024, b"", b"8=FIX.4.4\x019=", read_s=0.2))


def test_garbled_messages_in_a_session_get_a_session_reject_and_the_session_goes_on(fix_wire: Wire) -> None:
    async def attack(w: Wire) -> RejectReason | None:
        async with session(w) as (sender, reader, writer):
            good = message(p.TEST_REQUEST, sender, 2, (p.TEST_REQ_ID, "t"))
            bad_checksum = good[:-4] + (b"000\x01" if not good.endswith(b"000\x01") else b"001\x01")  # consumes 2
            unknown = message(b"ZZ", sender, 3)
            # Two frames whose fields do not split: no MsgSeqNum can be read from them, so they consume none.
            garbled = message(p.TEST_REQUEST, sender, 4, (p.TEST_REQ_ID, "t")).replace(b"112=t", b"112t=")
            noise = b"8=FIX.4.4\x019=4096\x01" + random_bytes(4096, 3).replace(b"\x01", b"=") + b"10=000\x01"
            writer.write(bad_checksum + unknown + garbled + noise)
            writer.write(message(p.TEST_REQUEST, sender, 4, (p.TEST_REQ_ID, "alive")))
            received = await read_until(reader, 1, p.HEARTBEAT)
        rejects = of_type(received, p.REJECT)
        assert len(rejects) == 4, f"{len(rejects)} session Rejects"
        heartbeats = of_type(received, p.HEARTBEAT)
        assert heartbeats and not of_type(received, p.LOGOUT), "the session did not go on"
        return RejectReason.MALFORMED_MESSAGE if rejects else None

    run(fix_wire, "garbled and unknown messages inside a session", attack, reason=RejectReason.MALFORMED_MESSAGE)
