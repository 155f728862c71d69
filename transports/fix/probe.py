"""Send bytes that are not a FIX message and read the reason the server gives (for the contract suite).

A stream that does not start with ``8=FIX.4.4<SOH>9=`` cannot be framed: the
server answers with a Logout whose Text names it and closes the connection.
The reason is MALFORMED_MESSAGE (the server counts it so in its stats).
"""

from __future__ import annotations

import asyncio

from engine import RejectReason
from transports.fix import protocol as p
from transports.fix.settings import client_url, parse_url


async def send_malformed(url: str | None, timeout: float = 5.0) -> RejectReason:
    address = parse_url(client_url(url))
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port), timeout)
    try:
        writer.write(b"\xff\xff\xff\xff not a FIX message\x01")
        await writer.drain()
        frames = p.FrameReader(1 << 16)
        while True:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                raise ConnectionError("the FIX server closed the connection without a Logout")
            frames.feed(data)
            for frame in frames.frames():
                if frame.message is not None and frame.message.get(p.MSG_TYPE) == p.LOGOUT:
                    return RejectReason.MALFORMED_MESSAGE
    finally:
        writer.close()
