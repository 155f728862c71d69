"""Limits before the work they bound, the same on every wire (docs/limits.md).

The request handler's checks first (every wire hands its bytes to it): the
largest allowed batch, in each encoding and with every field at its longest,
fits its byte bound, and one byte more is refused with ``LIMIT_EXCEEDED``
before anything is decoded; a batch of one command too many is refused from
its wire bytes. Then every wire of the registry: a batch over ``max_batch``
is refused with ``LIMIT_EXCEEDED`` and counted in ``stats`` and the metrics,
the largest allowed batch is applied, and each wire's receive limit is the
computed one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import orjson
import pytest
import zmq
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from engine import Engine, ExchangeError, Instrument, PlaceOrder, RejectReason, Side
from transports.codec import lean
from transports.codec.proto_codec import decode_error, pb
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.limits import MAX_SNAPSHOT_LEVELS, MAX_TEXT, Limits
from transports.core.metrics import metrics_registry, render
from transports.core.requests import RequestHandler
from transports.registry import TRANSPORTS, make_client, serve

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001")
LIMITS = Limits()
WIRES = sorted(name for name in TRANSPORTS if name != "inproc")


def run(scenario: Callable[[Gateway], Awaitable[None]], buffer: int = 100_000) -> None:
    async def main() -> None:
        gateway = Gateway(Engine(), GatewayConfig(buffer=buffer))
        await gateway.start([INSTRUMENT])
        try:
            await asyncio.wait_for(scenario(gateway), 120)
        finally:
            await gateway.stop()

    asyncio.run(main())


# ----------------------------------------------------- the longest commands
def _longest(descriptor: Descriptor) -> Message:
    """A message of ``descriptor`` with every field present at its longest."""
    message = pb.__dict__[descriptor.name]() if descriptor.name in pb.__dict__ else None
    assert message is not None, descriptor.name
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, f.name).CopyFrom(_longest(f.message_type))
        elif f.type == FieldDescriptor.TYPE_STRING:
            setattr(message, f.name, "9" * MAX_TEXT)
        elif f.type == FieldDescriptor.TYPE_ENUM:
            setattr(message, f.name, max(v.number for v in f.enum_type.values))
        elif f.type == FieldDescriptor.TYPE_BOOL:
            setattr(message, f.name, True)
        else:
            setattr(message, f.name, 2**64 - 1 if f.type == FieldDescriptor.TYPE_UINT64 else -1)
    return message


def _kinds() -> list[FieldDescriptor]:
    return list(pb.Command.DESCRIPTOR.oneofs_by_name["kind"].fields)


def _json_longest(kind: FieldDescriptor) -> dict[str, Any]:
    def members(descriptor: Descriptor) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in descriptor.fields:
            if f.type == FieldDescriptor.TYPE_MESSAGE:
                out.update(members(f.message_type))
            elif f.type == FieldDescriptor.TYPE_STRING:
                out[f.name] = "9" * MAX_TEXT
            elif f.type == FieldDescriptor.TYPE_ENUM:
                prefix = f.enum_type.values[0].name.removesuffix("UNSPECIFIED")
                out[f.name] = max((v.name.removeprefix(prefix).lower() for v in f.enum_type.values), key=len)
            elif f.type == FieldDescriptor.TYPE_BOOL:
                out[f.name] = False
            else:
                out[f.name] = 2**64 - 1
        return out

    return {"type": kind.name, **members(kind.message_type)}


def _pad(data: bytes, size: int) -> bytes:
    """``data`` followed by an unknown length-delimited field (number 100), ``size`` bytes in all."""
    for filler in range(size - len(data), -1, -1):
        extra = b"\xa2\x06" + _varint(filler) + b"\x00" * filler
        if len(data) + len(extra) == size:
            return data + extra
    raise AssertionError(f"cannot pad {len(data)} bytes to {size}")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def _refusal(handler: RequestHandler, data: bytes) -> RejectReason | None:
    reply = await handler.commands(data, "alice")
    return RejectReason(reply.error.code) if reply.HasField("error") else None


@pytest.mark.parametrize("kind", [k.name for k in _kinds()])
def test_the_largest_allowed_protobuf_batch_fits_and_one_byte_more_is_refused(kind: str) -> None:
    async def scenario(gateway: Gateway) -> None:
        handler = RequestHandler(gateway, "test", LIMITS)
        command = pb.Command()
        getattr(command, kind).CopyFrom(_longest(pb.Command.DESCRIPTOR.fields_by_name[kind].message_type))
        batch = pb.CommandBatch(commands=[command] * LIMITS.max_batch, batch_id=2**64 - 1).SerializeToString()
        assert len(batch) <= LIMITS.max_proto_bytes
        # Within the bounds it is decoded (and refused for what it says: an unknown symbol, text too long, ...).
        assert await _refusal(handler, _pad(batch, LIMITS.max_proto_bytes)) not in (RejectReason.LIMIT_EXCEEDED, None)
        assert await _refusal(handler, _pad(batch, LIMITS.max_proto_bytes + 1)) is RejectReason.LIMIT_EXCEEDED
        assert gateway.stats.limits_exceeded == {("test", "max_proto_bytes"): 1}

    run(scenario)


def test_the_largest_allowed_lean_batch_fits_and_one_byte_more_is_refused() -> None:
    async def scenario(gateway: Gateway) -> None:
        handler = RequestHandler(gateway, "test", LIMITS)
        n = LIMITS.max_batch
        wide = 2**32 - 1
        batch = pb.OrderBatch(
            batch_id=2**64 - 1,
            symbols=["9" * MAX_TEXT] * n,
            kind=[wide] * n, symbol=[wide] * n, side=[wide] * n, order_type=[wide] * n, tif=[wide] * n, stp=[wide] * n,
            post_only=[True] * n, price=[-1] * n, qty=[-1] * n, stop_price=[-1] * n, order_id=[2**64 - 1] * n,
            client_order_id=["9" * MAX_TEXT] * n,
        ).SerializeToString()  # fmt: skip
        assert len(batch) <= LIMITS.max_lean_bytes
        outcome = pb.OutcomeBatch.FromString(await handler.orders(_pad(batch, LIMITS.max_lean_bytes), "alice"))
        assert outcome.error.reason != pb.REJECT_REASON_LIMIT_EXCEEDED
        outcome = pb.OutcomeBatch.FromString(await handler.orders(_pad(batch, LIMITS.max_lean_bytes + 1), "alice"))
        assert outcome.error.reason == pb.REJECT_REASON_LIMIT_EXCEEDED and outcome.batch_id == 0
        assert gateway.stats.limits_exceeded == {("test", "max_lean_bytes"): 1}

    run(scenario)


@pytest.mark.parametrize("kind", [k.name for k in _kinds()])
def test_the_largest_allowed_json_batch_fits_its_bounds(kind: str) -> None:
    async def scenario(gateway: Gateway) -> None:
        handler = RequestHandler(gateway, "test", LIMITS)
        data = orjson.dumps([_json_longest(pb.Command.DESCRIPTOR.fields_by_name[kind])] * LIMITS.max_batch)
        assert len(data) <= LIMITS.max_json_bytes
        handler.check_json_batch(data)  # no refusal
        with pytest.raises(ExchangeError) as refused:
            handler.check_json_batch(data + b" " * (LIMITS.max_json_bytes + 1 - len(data)))
        assert refused.value.reason is RejectReason.LIMIT_EXCEEDED

    run(scenario)


def test_a_flood_of_tiny_json_values_is_refused_before_parsing() -> None:
    async def scenario(gateway: Gateway) -> None:
        handler = RequestHandler(gateway, "test", LIMITS)
        flood = b"[" + b"{}," * 1_900_000 + b"{}]"  # 5.7 MB: under the byte bound, 1.9 million objects if parsed
        assert len(flood) <= LIMITS.max_json_bytes
        with pytest.raises(ExchangeError) as refused:
            handler.check_json_batch(flood)
        assert refused.value.reason is RejectReason.LIMIT_EXCEEDED

    run(scenario)


def test_a_batch_of_one_command_too_many_is_refused_from_its_bytes_with_its_id() -> None:
    async def scenario(gateway: Gateway) -> None:
        handler = RequestHandler(gateway, "test", LIMITS)
        data = b"\x0a\x00" * (LIMITS.max_batch + 1) + b"\x10\x07"  # empty commands, then batch_id 7
        reply = await handler.commands(data, "alice")
        assert reply.error.reason == pb.REJECT_REASON_LIMIT_EXCEEDED and reply.batch_id == 7
        # 3 MB of empty commands: refused at the 10,001st, whatever follows.
        reply = await handler.commands(b"\x0a\x00" * 1_500_000, "alice")
        assert reply.error.reason == pb.REJECT_REASON_LIMIT_EXCEEDED
        assert gateway.stats.limits_exceeded == {("test", "max_batch"): 2}
        assert gateway.stats_dict()["limits_exceeded"] == {"max_batch": 2}
        assert gateway.stats_dict()["refused_by_reason"] == {"LIMIT_EXCEEDED": 2}
        metrics = render(metrics_registry(gateway)).decode()
        assert 'dex_limits_exceeded_total{limit="max_batch",transport="test"} 2.0' in metrics

    run(scenario)


def test_snapshot_requests_collapse_repeats_cap_symbols_and_bound_levels() -> None:
    async def scenario(gateway: Gateway) -> None:
        handler = RequestHandler(gateway, "test", LIMITS)
        repeated = pb.MarketDataRequest(symbols=[SYM] * 1000).SerializeToString()
        assert len(handler.snapshots(repeated)) == 1  # one symbol named a thousand times: one snapshot
        with pytest.raises(ExchangeError) as refused:  # a million names: refused from the bytes
            handler.snapshots(pb.MarketDataRequest(symbols=[SYM] * 1_000_000).SerializeToString())
        assert refused.value.reason is RejectReason.LIMIT_EXCEEDED
        many = pb.MarketDataRequest(symbols=[f"S{i}" for i in range(LIMITS.max_snapshot_symbols + 1)]).SerializeToString()
        with pytest.raises(ExchangeError) as refused:
            handler.snapshots(many)
        assert refused.value.reason is RejectReason.LIMIT_EXCEEDED
        # A book deeper than a snapshot holds: the snapshot carries the best levels only.
        levels = MAX_SNAPSHOT_LEVELS + 200
        await gateway.submit([PlaceOrder("mm", "", SYM, Side.BUY, 1000, 1_000_000 - i) for i in range(levels)], "test")
        (message,) = handler.snapshots(pb.MarketDataRequest(symbols=[SYM]).SerializeToString())
        assert len(message.snapshot.depth.bids) == MAX_SNAPSHOT_LEVELS
        assert message.snapshot.depth.bids[0].price == "10000.00"

    run(scenario)


# --------------------------------------------------------------- every wire
@asynccontextmanager
async def wire_venue(wire: str) -> AsyncIterator[tuple[Gateway, str]]:
    gateway = Gateway(Engine(), GatewayConfig(buffer=100_000))
    await gateway.start([INSTRUMENT])
    try:
        async with serve(wire, gateway) as url:
            yield gateway, url
    finally:
        await gateway.stop()


@pytest.mark.parametrize("wire", WIRES)
def test_every_wire_refuses_a_batch_over_max_batch_and_applies_the_largest_allowed(wire: str) -> None:
    async def main() -> None:
        async with wire_venue(wire) as (gateway, url):
            seq = gateway.engine.seq
            client = make_client(wire, "alice", url)
            await client.connect()
            try:
                orders = [PlaceOrder("", f"{i:064d}", SYM, Side.BUY, 1, 1_000_000 + i % 100) for i in range(LIMITS.max_batch + 1)]
                # The lean batch every wire takes as is (a client may split what it is given to submit()).
                with pytest.raises(ExchangeError) as refused:
                    await client.submit_orders(lean.encode_orders(orders, batch_id=9))
                assert refused.value.reason is RejectReason.LIMIT_EXCEEDED
                assert gateway.stats_dict()["limits_exceeded"].get("max_batch") == 1
                assert gateway.engine.seq == seq  # nothing of it was applied
                outcomes = await client.submit_orders(lean.encode_orders(orders[: LIMITS.max_batch], batch_id=10))
                assert outcomes.outcome == [pb.OUTCOME_ACCEPTED] * LIMITS.max_batch
                again = [PlaceOrder("", f"b{i:063d}", SYM, Side.BUY, 1, 1_000_000) for i in range(LIMITS.max_batch)]
                replies = await client.submit(again)  # whole or split, every order goes in
                assert len(replies) == LIMITS.max_batch
                assert gateway.stats_dict()["accepted"] == 2 * LIMITS.max_batch
            finally:
                await client.close()

    asyncio.run(asyncio.wait_for(main(), 180))


def test_grpc_receives_no_message_over_the_limit_and_refuses_a_count_over_it_from_the_bytes() -> None:
    async def main() -> None:
        async with wire_venue("grpc") as (gateway, url):
            seq = gateway.engine.seq
            target = url.removeprefix("grpc://")
            options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
            async with grpc.aio.insecure_channel(target, options=options) as channel:
                call = channel.unary_unary("/exchange.v1.Exchange/SubmitBatch", request_serializer=None, response_deserializer=None)
                metadata = (("x-trader", "alice"),)
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await call(b"\x0a\x00" * (LIMITS.max_batch + 1), metadata=metadata)
                assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                trailer = dict(failed.value.trailing_metadata() or ())["exchange-error-bin"]
                assert decode_error(trailer).reason is RejectReason.LIMIT_EXCEEDED
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await call(_pad(b"", LIMITS.max_request_bytes + 1), metadata=metadata)
                assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # gRPC's own receive limit
            assert gateway.engine.seq == seq  # nothing applied

    asyncio.run(asyncio.wait_for(main(), 60))


def test_zmq_and_http_receive_limits_are_the_computed_one() -> None:
    async def main() -> None:
        async with wire_venue("zmq") as (gateway, url):
            from transports.zmq.settings import parse_url

            sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, 5000)
            try:
                sock.connect(parse_url(url).orders_endpoint)
                sock.send(b"\x0a\x00" * (LIMITS.max_batch + 1))
                reply = pb.ReplyBatch.FromString(await asyncio.get_running_loop().run_in_executor(None, sock.recv))
                assert reply.error.reason == pb.REJECT_REASON_LIMIT_EXCEEDED
            finally:
                sock.close()
        async with wire_venue("http") as (gateway, url):
            host, port = url.removeprefix("http://").rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            # Refused from the Content-Length: not a byte of the body is sent, and the answer comes.
            head = f"POST /orders/batch HTTP/1.1\r\nHost: x\r\nX-Trader: alice\r\nContent-Length: {LIMITS.max_request_bytes + 1}\r\n\r\n"
            writer.write(head.encode())
            answer = await asyncio.wait_for(reader.read(), 10)  # and the connection is closed
            writer.close()
            assert answer.startswith(b"HTTP/1.1 413") and b'"reason":"LIMIT_EXCEEDED"' in answer
            assert gateway.stats_dict()["limits_exceeded"] == {"max_request_bytes": 1}

    asyncio.run(asyncio.wait_for(main(), 60))
