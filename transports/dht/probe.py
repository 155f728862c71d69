"""Send a dex-node bytes that are not a ``CommandBatch``; return the reason it answered with (contract suite)."""

from __future__ import annotations

import httpx

from engine import RejectReason
from transports.codec.proto_codec import pb
from transports.dht.client import PROTO, endpoints


async def send_malformed(url: str) -> RejectReason:
    host, port = endpoints(url)[0]
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(
            f"http://{host}:{port}/v1/batch", content=b"\xff\x00 not a batch", headers={"Content-Type": PROTO, "X-Trader": "probe"}
        )
    reply = pb.ReplyBatch.FromString(response.content)
    return RejectReason(reply.error.code) if reply.HasField("error") else RejectReason.INTERNAL_ERROR
