"""Send a frame that is not a CommandBatch to the ROUTER, and read the reason the server gives (for the contract suite)."""

from __future__ import annotations

import asyncio

import zmq

from engine import RejectReason
from transports.codec.proto_codec import decode_error
from transports.zmq.settings import client_url, parse_url


def _probe(endpoint: str) -> RejectReason:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    try:
        sock.connect(endpoint)
        sock.send(b"\xff\xff\xff\xff not a CommandBatch")
        kind, _corr, body = sock.recv_multipart()
        assert kind == b"error", kind
        return decode_error(body).reason
    finally:
        sock.close()


async def send_malformed(url: str | None) -> RejectReason:
    endpoint = parse_url(client_url(url)).orders_endpoint
    return await asyncio.get_running_loop().run_in_executor(None, _probe, endpoint)
