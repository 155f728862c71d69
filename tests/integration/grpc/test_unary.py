"""Unary ``PlaceOrder``/``CancelOrder``/``ReplaceOrder``/``SubmitBatch``: an OK reply with the events, or a status + ``Error`` trailer."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from engine import ExchangeError, OrderAccepted, OrderCancelled, OrderRejected, OrderReplaced, RejectReason, TradeExecuted
from tests.integration.grpc.helpers import Exchange, error_of, place, run_exchange, trader
from transports.codec.proto_codec import decode_replies, decode_reply, pb
from transports.codec.status import REJECT_GRPC_STATUS
from transports.core.gateway import GatewayConfig
from transports.grpc.errors import Unidentified, status_code

ALICE = trader("alice")
BOB = trader("bob")


def test_every_reject_reason_maps_to_the_grpc_status_code_of_the_table() -> None:
    for reason in RejectReason:
        assert status_code(ExchangeError("x", reason)).value[0] == int(REJECT_GRPC_STATUS[reason])
    assert status_code(Unidentified("who?")) == grpc.StatusCode.UNAUTHENTICATED


def test_place_cancel_replace_and_submit_batch_as_unary_calls() -> None:
    async def scenario(ex: Exchange) -> None:
        channel = ex.channel()
        lookup = ex.gateway.instrument
        place_order = ex.unary(channel, "PlaceOrder", pb.Reply)
        rest = decode_reply(
            await place_order(pb.PlaceOrder(symbol="BTC-USD", side=pb.SIDE_SELL, qty="1.0000", price="30000.00"), metadata=ALICE), lookup
        )
        accepted = rest[0]
        assert isinstance(accepted, OrderAccepted) and accepted.trader == "alice"

        replace_order = ex.unary(channel, "ReplaceOrder", pb.Reply)
        replaced = decode_reply(
            await replace_order(pb.ReplaceOrder(order_id=accepted.order_id, symbol="BTC-USD", new_qty="0.5000"), metadata=ALICE), lookup
        )
        assert isinstance(replaced[0], OrderReplaced) and replaced[0].priority_kept

        submit_batch = ex.unary(channel, "SubmitBatch", pb.ReplyBatch)
        batch = pb.CommandBatch(batch_id=99, commands=[place(side=pb.SIDE_BUY, qty="0.2000", price="30000.00"), place(price="29000.00")])
        answer = await submit_batch(batch, metadata=BOB)
        assert answer.batch_id == 99
        replies = decode_replies(answer, lookup)
        assert [type(e).__name__ for e in replies[0] if type(e).__name__ != "BookDelta"] == ["OrderAccepted", "TradeExecuted"]
        (trade,) = [e for e in replies[0] if isinstance(e, TradeExecuted)]
        assert (trade.maker_trader, trade.taker_trader, trade.maker_remaining) == ("alice", "bob", 3000)

        cancel_order = ex.unary(channel, "CancelOrder", pb.Reply)
        cancelled = decode_reply(await cancel_order(pb.CancelOrder(order_id=accepted.order_id), metadata=ALICE), lookup)
        assert isinstance(cancelled[0], OrderCancelled) and cancelled[0].qty == 3000

    run_exchange(scenario)


def test_an_engine_reject_is_an_ok_reply_with_the_rejected_event() -> None:
    async def scenario(ex: Exchange) -> None:
        cancel_order = ex.unary(ex.channel(), "CancelOrder", pb.Reply)
        (rejected,) = decode_reply(await cancel_order(pb.CancelOrder(order_id=12345), metadata=ALICE), ex.gateway.instrument)
        assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.UNKNOWN_ORDER and rejected.order_id == 12345

    run_exchange(scenario)


@pytest.mark.parametrize(
    ("method", "request_", "code", "reason"),
    [
        (
            "PlaceOrder",
            pb.PlaceOrder(symbol="DOGE-USD", side=pb.SIDE_BUY, qty="1", price="1"),
            grpc.StatusCode.NOT_FOUND,
            RejectReason.UNKNOWN_SYMBOL,
        ),
        (
            "PlaceOrder",
            pb.PlaceOrder(symbol="BTC-USD", side=pb.SIDE_BUY, qty="1", price="1.001"),
            grpc.StatusCode.INVALID_ARGUMENT,
            RejectReason.INVALID_PRICE,
        ),
        (
            "PlaceOrder",
            pb.PlaceOrder(symbol="BTC-USD", qty="1", price="1.00"),
            grpc.StatusCode.INVALID_ARGUMENT,
            RejectReason.MALFORMED_MESSAGE,
        ),
        (
            "PlaceOrder",
            pb.PlaceOrder(symbol="BTC-USD", side=9, qty="1", price="1.00"),
            grpc.StatusCode.INVALID_ARGUMENT,
            RejectReason.MALFORMED_MESSAGE,
        ),
        ("CancelOrder", pb.CancelOrder(), grpc.StatusCode.INVALID_ARGUMENT, RejectReason.MALFORMED_MESSAGE),
        (
            "ReplaceOrder",
            pb.ReplaceOrder(order_id=1, symbol="BTC-USD", new_qty="0.00001"),
            grpc.StatusCode.INVALID_ARGUMENT,
            RejectReason.INVALID_QUANTITY,
        ),
        ("SubmitBatch", pb.CommandBatch(commands=[pb.Command()]), grpc.StatusCode.INVALID_ARGUMENT, RejectReason.MALFORMED_MESSAGE),
        (
            "SubmitBatch",
            pb.CommandBatch(
                commands=[pb.Command(add_instrument=pb.AddInstrument(instrument=pb.Instrument(symbol="X", tick_size="1", lot_size="1")))]
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            RejectReason.UNAUTHORIZED,
        ),
    ],
)
def test_a_refused_unary_call_has_the_status_of_the_table_and_the_error_trailer(
    method: str, request_: pb.PlaceOrder, code: grpc.StatusCode, reason: RejectReason
) -> None:
    async def scenario(ex: Exchange) -> None:
        call = ex.unary(ex.channel(), method, pb.ReplyBatch if method == "SubmitBatch" else pb.Reply)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(request_, metadata=ALICE)
        assert failed.value.code() == code
        error = error_of(failed.value)
        assert error.reason == reason and error.code == int(reason) and error.message == failed.value.details()
        assert ex.gateway.stats.by_transport.get("grpc", 0) == 0  # nothing reached the engine

    run_exchange(scenario)


@pytest.mark.parametrize("method", ["PlaceOrder", "CancelOrder", "ReplaceOrder", "SubmitBatch", "GetOrder"])
def test_order_calls_without_a_trader_are_unauthenticated(method: str) -> None:
    requests = {
        "PlaceOrder": pb.PlaceOrder(symbol="BTC-USD", side=pb.SIDE_BUY, qty="1", price="29000.00"),
        "CancelOrder": pb.CancelOrder(order_id=1),
        "ReplaceOrder": pb.ReplaceOrder(order_id=1, symbol="BTC-USD", new_qty="1"),
        "SubmitBatch": pb.CommandBatch(commands=[place()]),
        "GetOrder": pb.OrderStatusRequest(order_id=1, trader="alice"),
    }

    async def scenario(ex: Exchange) -> None:
        call = ex.unary(ex.channel(), method, pb.Reply)
        for metadata in ((), (("x-trader", ""),)):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await call(requests[method], metadata=metadata)
            assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error_of(failed.value).reason == RejectReason.UNAUTHORIZED
        assert ex.gateway.stats.by_transport.get("grpc", 0) == 0

    run_exchange(scenario)


def test_bytes_that_are_not_the_request_message_are_invalid_argument() -> None:
    async def scenario(ex: Exchange) -> None:
        call = ex.channel().unary_unary("/exchange.v1.Exchange/PlaceOrder", None, pb.Reply.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(b"\xff\xff\xff\xff", metadata=ALICE)
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_of(failed.value).reason == RejectReason.MALFORMED_MESSAGE

    run_exchange(scenario)


def test_an_overloaded_gateway_is_unavailable_with_the_overloaded_reason() -> None:
    async def scenario(ex: Exchange) -> None:
        submit_batch = ex.unary(ex.channel(), "SubmitBatch", pb.ReplyBatch)
        ex.gateway._queued = ex.gateway.config.buffer  # the queue is full (others' work in flight)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await submit_batch(pb.CommandBatch(commands=[place()] * 2), metadata=ALICE)
        finally:
            ex.gateway._queued = 0
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_of(failed.value).reason == RejectReason.OVERLOADED

    run_exchange(scenario, config=GatewayConfig(journal=None, buffer=3))
