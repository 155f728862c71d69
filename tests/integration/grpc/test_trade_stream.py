"""The bidirectional ``Trade`` stream: batches in, one ``ReplyBatch`` each out, in order, whatever comes in."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest

from engine import (
    AddInstrument,
    CancelOrder,
    ExchangeError,
    Instrument,
    MalformedMessage,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TradeExecuted,
)
from tests.integration.grpc.helpers import BTC, Exchange, place, run_exchange, trader
from transports.codec.proto_codec import decode_replies, encode_replies, pb
from transports.core.gateway import GatewayConfig

p, q = BTC.parse_price, BTC.parse_qty


def test_place_fill_cancel_and_replace_over_the_stream() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice, ex.client("bob") as bob:
            (rest,) = await alice.submit([PlaceOrder("alice", "a1", "BTC-USD", Side.SELL, q("1"), p("30000.00"))])
            accepted = rest[0]
            assert isinstance(accepted, OrderAccepted) and accepted.trader == "alice" and accepted.client_order_id == "a1"

            (take,) = await bob.submit([PlaceOrder("bob", "b1", "BTC-USD", Side.BUY, q("0.4"), p("30001.00"))])
            (trade,) = [e for e in take if isinstance(e, TradeExecuted)]
            assert (trade.price, trade.qty, trade.maker_order_id, trade.taker_trader) == (p("30000.00"), q("0.4"), accepted.order_id, "bob")
            assert trade.maker_remaining == q("0.6")

            (replaced,) = await alice.submit([ReplaceOrder("alice", accepted.order_id, p("30002.00"), q("0.5"), "BTC-USD")])
            assert isinstance(replaced[0], OrderReplaced) and (replaced[0].price, replaced[0].qty) == (p("30002.00"), q("0.5"))

            cancelled = await alice.cancel(accepted.order_id)
            assert isinstance(cancelled[0], OrderCancelled) and cancelled[0].qty == q("0.5")
            assert (await alice.book("BTC-USD")).asks == []
            again = await alice.cancel(accepted.order_id)
            assert isinstance(again[0], OrderRejected) and again[0].reason is RejectReason.UNKNOWN_ORDER

    run_exchange(scenario)


def test_pipelined_batches_on_one_stream_come_back_in_order() -> None:
    async def scenario(ex: Exchange) -> None:
        call = ex.trade(ex.channel())(metadata=trader("alice"))
        count = 200
        for i in range(1, count + 1):
            # Each batch cancels the order of the batch before it: only the arrival order makes that work.
            commands = [place(client_order_id=f"o{i}", price="29000.00")]
            if i > 1:
                commands.append(pb.Command(cancel=pb.CancelOrder(client_order_id=f"o{i - 1}")))
            await call.write(pb.CommandBatch(batch_id=1000 + i, commands=commands))
        await call.done_writing()
        replies = [reply async for reply in call]
        assert [r.batch_id for r in replies] == [1000 + i for i in range(1, count + 1)]
        for i, reply in enumerate(replies, start=1):
            events = decode_replies(reply, ex.gateway.instrument)
            assert isinstance(events[0][0], OrderAccepted) and events[0][0].client_order_id == f"o{i}"
            if i > 1:
                assert isinstance(events[1][0], OrderCancelled) and events[1][0].client_order_id == f"o{i - 1}"
        assert await call.code() == grpc.StatusCode.OK
        assert ex.gateway.open_orders("alice")[0].client_order_id == f"o{count}"

    run_exchange(scenario)


def test_concurrent_submits_of_one_client_share_one_stream_and_get_their_own_replies() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice:
            batches = [
                [PlaceOrder("alice", f"c{i}-{j}", "BTC-USD", Side.BUY, q("0.0001"), p("29000.00")) for j in range(i % 5 + 1)]
                for i in range(50)
            ]
            results = await asyncio.gather(*(alice.submit(batch) for batch in batches))
            for batch, replies in zip(batches, results, strict=True):
                assert [r[0].client_order_id for r in replies if isinstance(r[0], OrderAccepted)] == [c.client_order_id for c in batch]
            assert ex.gateway.stats.by_transport["grpc"] == sum(len(b) for b in batches)

    run_exchange(scenario)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\xff\xff\xff\xff", RejectReason.MALFORMED_MESSAGE),  # not a CommandBatch at all
        (pb.CommandBatch(batch_id=7, commands=[pb.Command()]), RejectReason.MALFORMED_MESSAGE),  # no oneof
        (pb.CommandBatch(batch_id=7, commands=[place(price="29000.001")]), RejectReason.INVALID_PRICE),
        (pb.CommandBatch(batch_id=7, commands=[place(qty="abc")]), RejectReason.INVALID_QUANTITY),
        (pb.CommandBatch(batch_id=7, commands=[place(symbol="DOGE-USD")]), RejectReason.UNKNOWN_SYMBOL),
        (pb.CommandBatch(batch_id=7, commands=[place(), place(side=0)]), RejectReason.MALFORMED_MESSAGE),  # all or nothing
    ],
)
def test_a_malformed_batch_gets_an_error_reply_and_the_stream_goes_on(message: pb.CommandBatch | bytes, reason: RejectReason) -> None:
    async def scenario(ex: Exchange) -> None:
        call = ex.trade(ex.channel(), raw=True)(metadata=trader("alice"))
        await call.write(message if isinstance(message, bytes) else message.SerializeToString())
        refused = await call.read()
        assert isinstance(refused, pb.ReplyBatch)
        assert refused.HasField("error") and refused.error.reason == reason and refused.error.code == int(reason)
        assert list(refused.replies) == [] and refused.batch_id == (0 if isinstance(message, bytes) else 7)
        assert ex.gateway.engine.open_orders("alice") == []  # nothing of it was applied

        await call.write(pb.CommandBatch(batch_id=8, commands=[place()]).SerializeToString())
        fine = await call.read()
        assert isinstance(fine, pb.ReplyBatch) and fine.batch_id == 8 and not fine.HasField("error")
        assert fine.replies[0].events[0].WhichOneof("kind") == "accepted"

    run_exchange(scenario)


def test_the_client_raises_malformed_for_what_cannot_be_sent_and_goes_on() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice:
            with pytest.raises(MalformedMessage) as bad:
                await alice.submit([PlaceOrder("alice", "", "DOGE-USD", Side.BUY, 1, 1)])
            assert bad.value.reason is RejectReason.UNKNOWN_SYMBOL
            events = await alice.submit([PlaceOrder("alice", "", "BTC-USD", Side.BUY, q("1"), p("29000.00"))])
            assert isinstance(events[0][0], OrderAccepted)

    run_exchange(scenario)


def test_engine_rejects_are_ordinary_events_on_the_stream() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice:
            replies = await alice.submit(
                [
                    PlaceOrder("alice", "x", "BTC-USD", Side.BUY, q("1"), p("1.00")),  # out of the price band
                    CancelOrder("alice", 424242),
                    PlaceOrder("alice", "y", "BTC-USD", Side.BUY, q("1"), p("29000.00")),
                ]
            )
            assert [type(r[0]) for r in replies] == [OrderRejected, OrderRejected, OrderAccepted]
            first, second = replies[0][0], replies[1][0]
            assert isinstance(first, OrderRejected) and first.reason is RejectReason.PRICE_OUT_OF_BAND
            assert isinstance(second, OrderRejected) and second.reason is RejectReason.UNKNOWN_ORDER

    run_exchange(scenario)


def test_an_overloaded_gateway_refuses_the_batch_with_a_retryable_error() -> None:
    async def scenario(ex: Exchange) -> None:
        call = ex.trade(ex.channel())(metadata=trader("alice"))
        ex.gateway._queued = ex.gateway.config.buffer  # the queue is full (others' work in flight)
        await call.write(pb.CommandBatch(batch_id=1, commands=[place() for _ in range(5)]))
        refused = await call.read()
        assert isinstance(refused, pb.ReplyBatch) and refused.batch_id == 1 and refused.error.reason == pb.REJECT_REASON_OVERLOADED
        async with ex.client("bob") as bob:
            with pytest.raises(Overloaded):
                await bob.submit([PlaceOrder("bob", "", "BTC-USD", Side.BUY, q("1"), p("29000.00"))] * 5)
        ex.gateway._queued = 0
        await call.write(pb.CommandBatch(batch_id=2, commands=[place() for _ in range(5)]))
        accepted = await call.read()
        assert isinstance(accepted, pb.ReplyBatch) and accepted.batch_id == 2 and len(accepted.replies) == 5
        assert ex.gateway.stats.overloaded == 2

    run_exchange(scenario, config=GatewayConfig(journal=None, buffer=5))


def test_every_command_is_bound_to_the_trader_of_the_metadata() -> None:
    async def scenario(ex: Exchange) -> None:
        async with ex.client("alice") as alice, ex.client("mallory") as mallory:
            (placed,) = await alice.submit([PlaceOrder("alice", "a1", "BTC-USD", Side.BUY, q("1"), p("29000.00"))])
            order_id = placed[0].order_id  # type: ignore[attr-defined]
            # mallory writes alice's name into the commands: the server acts for mallory all the same.
            (spoofed,) = await mallory.submit([CancelOrder("alice", order_id)])
            assert (
                isinstance(spoofed[0], OrderRejected) and spoofed[0].reason is RejectReason.UNKNOWN_ORDER and spoofed[0].trader == "mallory"
            )
            (own,) = await mallory.submit([PlaceOrder("alice", "m1", "BTC-USD", Side.BUY, q("1"), p("29000.00"))])
            assert isinstance(own[0], OrderAccepted) and own[0].trader == "mallory"
            assert await mallory.order(order_id) is None
            view = await alice.order(order_id)
            assert view is not None and view.trader == "alice" and view.remaining == q("1")

    run_exchange(scenario)


def test_a_stream_without_a_trader_is_unauthenticated() -> None:
    async def scenario(ex: Exchange) -> None:
        call = ex.trade(ex.channel())()
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call.read()
        assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED

    run_exchange(scenario)


def test_add_instrument_needs_an_admin_server() -> None:
    doge = Instrument.create("DOGE-USD", "0.0001", "1")

    async def refused(ex: Exchange) -> None:
        async with ex.client("alice") as alice:
            with pytest.raises(ExchangeError) as error:
                await alice.submit([AddInstrument(doge)])
            assert error.value.reason is RejectReason.UNAUTHORIZED
            assert ex.gateway.instrument("DOGE-USD") is None

    async def allowed(ex: Exchange) -> None:
        async with ex.client("alice") as alice:
            (added,) = await alice.submit([AddInstrument(doge)])
            assert added[0].instrument == doge  # type: ignore[attr-defined]
            # The client and the server both learn the new tick and lot.
            (placed,) = await alice.submit(
                [PlaceOrder("alice", "", "DOGE-USD", Side.BUY, doge.parse_qty("10"), doge.parse_price("0.0712"))]
            )
            assert isinstance(placed[0], OrderAccepted) and placed[0].price == doge.parse_price("0.0712")

    run_exchange(refused)
    run_exchange(allowed, allow_admin=True)


def test_a_batch_whose_reply_is_larger_than_grpcs_default_4_mb_limit_goes_through() -> None:
    async def scenario(ex: Exchange) -> None:
        n = 10_000  # the largest allowed batch (docs/limits.md); each order takes two resting orders, so its reply is large
        async with ex.client("alice") as alice, ex.client("bob") as bob:
            sells = [PlaceOrder("alice", f"s{i:063d}", "BTC-USD", Side.SELL, q("0.0001"), p("29000.00") + i) for i in range(2 * n)]
            for half in (sells[:n], sells[n:]):
                assert all(isinstance(r[0], OrderAccepted) for r in await alice.submit(half))
            buys = [PlaceOrder("bob", f"b{i:063d}", "BTC-USD", Side.BUY, q("0.0002"), p("29000.00") + 2 * i + 1) for i in range(n)]
            replies = await bob.submit(buys)
            assert len(replies) == n and all(isinstance(r[0], OrderAccepted) for r in replies)
            encoded = encode_replies(replies, ex.gateway.instrument).ByteSize()
            assert encoded > 4 * 1024 * 1024

    run_exchange(scenario)
