"""Send bytes that are not a command over HTTP, and read the reason the server gives (for the contract suite)."""

from __future__ import annotations

import httpx

from engine import RejectReason
from transports.http.settings import client_url


async def send_malformed(url: str | None) -> RejectReason:
    async with httpx.AsyncClient(base_url=client_url(url), timeout=10) as client:
        response = await client.post("/orders/batch", content=b"\x00{not json", headers={"X-Trader": "probe"})
    assert 400 <= response.status_code < 500, response.status_code
    return RejectReason[response.json()["reason"]]
