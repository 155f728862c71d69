"""What every WebSocket route shares: refusing with an error frame and a close code, and noticing the client left."""

from __future__ import annotations

import contextlib

from fastapi import WebSocket, WebSocketDisconnect

from engine import ExchangeError
from transports.codec.json_codec import dumps, error_reply
from transports.core.fills import FillSubscription
from transports.core.marketdata import Subscription

POLICY_VIOLATION = 1008


async def refuse(websocket: WebSocket, error: ExchangeError) -> None:
    """Send ``error`` as the error body, then close with 1008 and the reason's name."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(dumps(error_reply(error)).decode())
        await websocket.close(POLICY_VIOLATION, error.reason.name)


async def close_on_disconnect(websocket: WebSocket, sub: Subscription | FillSubscription) -> None:
    """Read (and ignore) what the client sends; when it leaves, end the subscription so the sender stops."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        sub.close()
