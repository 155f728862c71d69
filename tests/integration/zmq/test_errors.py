"""Malformed input gets an Error (with the batch id when there is one) and the server keeps serving."""

from __future__ import annotations

import pytest
import zmq

from engine import ExchangeError, MalformedMessage, OrderAccepted, PlaceOrder, RejectReason, Side
from tests.integration.zmq.conftest import LiveZmqServer, StartServer, run
from tests.integration.zmq.helpers import BTC, SYMBOL, dealer, error_of, hello, order
from transports.codec.proto_codec import decode_error, encode_commands, pb
from transports.registry import make_client


def place_batch(batch_id: int, **fields: object) -> bytes:
    place = {"trader": "ignored", "symbol": SYMBOL, "side": pb.SIDE_BUY, "qty": "0.1", "price": "29000.00", **fields}
    return pb.CommandBatch(batch_id=batch_id, commands=[pb.Command(place=pb.PlaceOrder(**place))]).SerializeToString()  # type: ignore[arg-type]


def refused(sock: zmq.Socket[bytes], batch_id: int) -> RejectReason:
    """The reason of the refusal that answers ``batch_id`` (a ReplyBatch with an Error and no replies)."""
    (frame,) = sock.recv_multipart()
    reply = pb.ReplyBatch.FromString(frame)
    assert reply.batch_id == batch_id and not reply.replies and reply.HasField("error")
    assert reply.error.code == reply.error.reason and reply.error.message
    return decode_error(reply.error).reason


def test_batches_that_cannot_be_applied_get_an_error_with_their_batch_id(server: LiveZmqServer) -> None:
    sock = dealer(server.orders_endpoint)
    try:
        sock.send(place_batch(1))  # no hello yet
        assert refused(sock, 1) is RejectReason.UNAUTHORIZED

        hello(sock, "alice")
        sock.send(place_batch(2, symbol="NOPE-USD"))
        assert refused(sock, 2) is RejectReason.UNKNOWN_SYMBOL
        sock.send(place_batch(3, price="29000.001"))  # off the 0.01 tick
        assert refused(sock, 3) is RejectReason.INVALID_PRICE
        sock.send(place_batch(4, qty="lots"))
        assert refused(sock, 4) is RejectReason.INVALID_QUANTITY
        sock.send(place_batch(5, side=0))
        assert refused(sock, 5) is RejectReason.MALFORMED_MESSAGE
        sock.send(pb.CommandBatch(batch_id=6).SerializeToString())  # no commands
        assert refused(sock, 6) is RejectReason.MALFORMED_MESSAGE
        sock.send(pb.CommandBatch(batch_id=7, commands=[pb.Command()]).SerializeToString())  # a command of no kind
        assert refused(sock, 7) is RejectReason.MALFORMED_MESSAGE

        sock.send(place_batch(8))  # and the same connection still trades
        (frame,) = sock.recv_multipart()
        reply = pb.ReplyBatch.FromString(frame)
        assert reply.batch_id == 8 and not reply.HasField("error")
        assert reply.replies[0].events[0].accepted.trader == "alice"
    finally:
        sock.close()


def test_frames_without_a_batch_id_get_an_error_frame(server: LiveZmqServer) -> None:
    sock = dealer(server.orders_endpoint)
    try:
        sock.send(b"\xff\xff\xff not protobuf")
        kind, corr, body = sock.recv_multipart()
        assert (kind, corr) == (b"error", b"") and error_of(body) is RejectReason.MALFORMED_MESSAGE

        sock.send_multipart([b"launch", b"c1"])
        kind, corr, body = sock.recv_multipart()
        assert (kind, corr) == (b"error", b"c1") and error_of(body) is RejectReason.MALFORMED_MESSAGE

        sock.send_multipart([b"book", b"c2", b"\xff\xff garbage"])
        kind, corr, body = sock.recv_multipart()
        assert (kind, corr) == (b"error", b"c2") and error_of(body) is RejectReason.MALFORMED_MESSAGE

        sock.send_multipart([b"book", b"c3", pb.BookRequest(symbol="NOPE-USD").SerializeToString()])
        kind, corr, body = sock.recv_multipart()
        assert (kind, corr) == (b"error", b"c3") and error_of(body) is RejectReason.UNKNOWN_SYMBOL

        sock.send_multipart([b"order", b"c4", pb.OrderStatusRequest(order_id=1).SerializeToString()])  # no hello
        kind, corr, body = sock.recv_multipart()
        assert (kind, corr) == (b"error", b"c4") and error_of(body) is RejectReason.UNAUTHORIZED

        sock.send_multipart([b"hello", b"c5", b"x" * 65])
        kind, corr, body = sock.recv_multipart()
        assert (kind, corr) == (b"error", b"c5") and error_of(body) is RejectReason.MALFORMED_MESSAGE

        sock.send_multipart([b"ping", b"c" * 33])  # a correlation frame too long to echo
        kind, corr, body = sock.recv_multipart()
        assert (kind, corr) == (b"error", b"") and error_of(body) is RejectReason.MALFORMED_MESSAGE

        sock.send_multipart([b"ping", b"c6"])
        assert sock.recv_multipart() == [b"ping", b"c6"]
    finally:
        sock.close()


def test_the_server_keeps_serving_others_after_garbage(server: LiveZmqServer) -> None:
    garbage = dealer(server.orders_endpoint)
    try:
        for frames in ([b""], [b"\x00" * 100], [b"a", b"b", b"c", b"d"], [b"\x0a\x05"], [b"snapshot", b"s"]):
            garbage.send_multipart(frames)
    finally:
        garbage.close()

    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice:
            (events,) = await alice.submit([order("alice", "a1", Side.BUY, "0.1", "29000.00")])
            assert isinstance(events[0], OrderAccepted)

    run(scenario)


def test_client_errors_are_the_engine_hierarchy(server: LiveZmqServer) -> None:
    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice:
            with pytest.raises(MalformedMessage) as unknown:
                await alice.book("NOPE-USD")
            assert unknown.value.reason is RejectReason.UNKNOWN_SYMBOL
            with pytest.raises(MalformedMessage) as unlisted:
                await alice.submit([PlaceOrder("alice", "x", "NOPE-USD", Side.BUY, 1, 1)])
            assert unlisted.value.reason is RejectReason.UNKNOWN_SYMBOL
            assert await alice.order(999_999) is None
            with pytest.raises(ExchangeError):
                async for _ in alice.market_data(["NOPE-USD"]):
                    pass

    run(scenario)


def test_an_oversized_batch_is_refused_whole(start_server: StartServer) -> None:
    server = start_server(max_batch=3)

    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice:
            with pytest.raises(MalformedMessage):
                await alice.submit([order("alice", f"a{i}", Side.BUY, "0.1", "29000.00") for i in range(4)])
            assert (await alice.stats())["orders"] == 0
            replies = await alice.submit([order("alice", f"a{i}", Side.BUY, "0.1", "29000.00") for i in range(3)])
            assert len(replies) == 3

    run(scenario)


def test_encoded_by_the_codec_round_trips(server: LiveZmqServer) -> None:
    sock = dealer(server.orders_endpoint)
    try:
        hello(sock, "bob")
        lookup = {BTC.symbol: BTC}.get
        sock.send(encode_commands([order("bob", "b1", Side.SELL, "0.2", "31000.00")], lookup, 2**63).SerializeToString())
        (frame,) = sock.recv_multipart()
        assert pb.ReplyBatch.FromString(frame).batch_id == 2**63
    finally:
        sock.close()
