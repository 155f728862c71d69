"""Send bytes that are not a CommandBatch on the Trade stream, and read the reason the server gives (for the contract suite)."""

from __future__ import annotations

import grpc

from engine import RejectReason
from protos.exchange.v1 import exchange_pb2 as pb
from transports.codec.proto_codec import decode_error
from transports.grpc.settings import client_url


def _identity(data: bytes) -> bytes:
    return data


async def send_malformed(url: str | None) -> RejectReason:
    target = client_url(url).removeprefix("grpc://")
    async with grpc.aio.insecure_channel(target) as channel:
        trade = channel.stream_stream("/exchange.v1.Exchange/Trade", _identity, pb.ReplyBatch.FromString)
        call = trade(metadata=(("x-trader", "probe"),))
        await call.write(b"\xff\xff\xff\xff not a CommandBatch")
        reply = await call.read()
        await call.done_writing()
        call.cancel()
    assert isinstance(reply, pb.ReplyBatch) and reply.HasField("error")
    return decode_error(reply.error).reason
