"""A raw FIX peer for the session tests: sends exactly what a test says (sequence numbers, garbage) and reads frames.

Built on ``simplefix`` and the server's own framer, with every read bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib

import simplefix

from transports.fix import protocol as p

SKIP = frozenset({p.HEARTBEAT})


class FixPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sender: str, target: str = "DEX") -> None:
        self.reader = reader
        self.writer = writer
        self.sender = sender
        self.target = target
        self.next_out = 1
        self.frames = p.FrameReader(1 << 20)
        self._ready: list[simplefix.FixMessage] = []

    @staticmethod
    async def open(url: str, sender: str) -> FixPeer:
        host, _, port = url.removeprefix("fix://").rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return FixPeer(reader, writer, sender)

    def message(self, msg_type: bytes, *pairs: tuple[int, object]) -> simplefix.FixMessage:
        out = p.new_message(msg_type)
        for tag, value in pairs:
            out.append_pair(tag, value)
        return out

    async def send(self, msg_type: bytes, *pairs: tuple[int, object], seq: int | None = None, poss_dup: bool = False) -> int:
        """Send one message (``seq``: this number instead of the next, which is then not advanced); its number."""
        number = self.next_out if seq is None else seq
        if seq is None:
            self.next_out += 1
        self.writer.write(p.encode(self.message(msg_type, *pairs), self.sender, self.target, number, poss_dup))
        await self.writer.drain()
        return number

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def logon(self, heartbeat: int = 30, password: str | None = None, reset: bool = False) -> simplefix.FixMessage:
        pairs: list[tuple[int, object]] = [(p.ENCRYPT_METHOD, 0), (p.HEART_BT_INT, heartbeat)]
        if reset:
            pairs.append((p.RESET_SEQ_NUM_FLAG, "Y"))
        if password is not None:
            pairs.append((p.PASSWORD, password))
        await self.send(p.LOGON, *pairs)
        return await self.expect(p.LOGON)

    async def read(self, timeout: float = 5.0) -> simplefix.FixMessage:
        """The next message (``TimeoutError`` after ``timeout``; ``EOFError`` when the server closed)."""
        while not self._ready:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("the server closed the connection")
            self.frames.feed(data)
            for frame in self.frames.frames():
                assert frame.message is not None and not frame.problem, frame.problem
                self._ready.append(frame.message)
        return self._ready.pop(0)

    async def expect(
        self, msg_type: bytes, timeout: float = 5.0, skip: frozenset[bytes] = frozenset({p.HEARTBEAT})
    ) -> simplefix.FixMessage:
        """The next message of ``msg_type`` (those in ``skip`` passed over; anything else fails)."""
        while True:
            message = await self.read(timeout)
            got = message.get(p.MSG_TYPE)
            if got == msg_type:
                return message
            assert got in skip, f"expected {msg_type!r}, got {message}"

    async def closed(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the connection within ``timeout`` (messages before the close are discarded)."""
        try:
            while True:
                await self.read(timeout)
        except EOFError:
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
