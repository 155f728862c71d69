"""Send bytes that are not a CommandBatch to ``dex.cmd.*`` and read the reason the server gives (contract suite)."""

from __future__ import annotations

from engine import RejectReason
from transports.codec.proto_codec import decode_error, pb
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.settings import TRADER_HEADER, Subjects, client_url


async def send_malformed(url: str | None) -> RejectReason:
    nc = await connect(client_url(url), "dex-nats probe", ConnectionErrors())
    try:
        msg = await nc.request(
            Subjects().command("BTC-USD"), b"\xff\xff\xff\xff not a CommandBatch", timeout=5, headers={TRADER_HEADER: "probe"}
        )
        reply = pb.ReplyBatch.FromString(msg.data)
        assert reply.HasField("error"), reply
        return decode_error(reply.error).reason
    finally:
        await nc.close()
