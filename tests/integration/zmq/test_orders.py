"""Orders over ZeroMQ: every command acknowledged, pipelined batches matched by id, one trader per connection."""

from __future__ import annotations

import asyncio

from engine import (
    CancelOrder,
    Instrument,
    InstrumentAdded,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    Side,
    TradeExecuted,
)
from tests.integration.zmq.conftest import LiveZmqServer, StartServer, run
from tests.integration.zmq.helpers import BTC, SYMBOL, order, order_id
from transports.registry import TRANSPORTS, make_client
from transports.zmq.client import ZmqClient


def test_registered_under_zmq() -> None:
    assert "zmq" in TRANSPORTS
    assert isinstance(make_client("zmq", "alice", "zmq://127.0.0.1:1"), ZmqClient)


def test_place_fill_cancel_replace(server: LiveZmqServer) -> None:
    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice, make_client("zmq", "bob", server.url) as bob:
            (placed,) = await alice.submit([order("alice", "a1", Side.SELL, "1.5", "30000.00")])
            sell_id = order_id(placed)
            (resting,) = await alice.submit([order("alice", "a2", Side.SELL, "0.5", "30010.00")])
            rest_id = order_id(resting)

            (taken,) = await bob.submit([order("bob", "b1", Side.BUY, "1", "30000.00")])
            (trade,) = [e for e in taken if isinstance(e, TradeExecuted)]
            assert (trade.maker_trader, trade.taker_trader) == ("alice", "bob")
            assert (trade.price, trade.qty, trade.maker_remaining) == (
                BTC.parse_price("30000.00"),
                BTC.parse_qty("1"),
                BTC.parse_qty("0.5"),
            )

            view = await alice.order(sell_id)
            assert view is not None and view.status is OrderStatus.PARTIALLY_FILLED and view.filled == BTC.parse_qty("1")

            (replaced,) = await alice.submit([ReplaceOrder("alice", rest_id, BTC.parse_price("30020.00"), 0, SYMBOL)])
            assert isinstance(replaced[0], OrderReplaced) and replaced[0].price == BTC.parse_price("30020.00")

            cancelled = await alice.cancel(sell_id)
            assert isinstance(cancelled[0], OrderCancelled) and cancelled[0].qty == BTC.parse_qty("0.5")
            again = await alice.cancel(sell_id)
            assert isinstance(again[0], OrderRejected) and again[0].reason is RejectReason.UNKNOWN_ORDER

            book = await bob.book(SYMBOL)
            assert [(lv.price, lv.qty) for lv in book.asks] == [(BTC.parse_price("30020.00"), BTC.parse_qty("0.5"))]
            assert book.bids == []
            assert {i.symbol for i in await bob.instruments()} == {"BTC-USD", "ETH-USD", "SOL-USD"}
            stats = await bob.stats()
            assert stats["orders"] == 3 and stats["by_transport"]["zmq"] == 6 and stats["trades"] == 1

    run(scenario)


def test_many_batches_in_flight_come_back_matched_by_id(server: LiveZmqServer) -> None:
    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice:

            async def batch(n: int) -> None:
                commands = [order("alice", f"c{n}-{i}", Side.BUY, "0.01", f"{29000 + n % 50}.00") for i in range(1 + n % 7)]
                replies = await alice.submit(commands)
                assert len(replies) == len(commands)
                for command, events in zip(commands, replies, strict=True):
                    accepted = events[0]
                    assert isinstance(accepted, OrderAccepted)
                    assert accepted.client_order_id == command.client_order_id  # this batch's reply, not another's

            await asyncio.gather(*(batch(n) for n in range(300)))
            stats = await alice.stats()
            assert stats["accepted"] == sum(1 + n % 7 for n in range(300))

    run(scenario)


def test_a_connection_acts_only_for_its_trader(server: LiveZmqServer) -> None:
    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice, make_client("zmq", "mallory", server.url) as mallory:
            (placed,) = await alice.submit([order("alice", "a1", Side.BUY, "1", "29000.00")])
            victim = order_id(placed)
            # mallory writes alice's name into the commands: the server binds them to mallory anyway
            (cancel,) = await mallory.submit([CancelOrder("alice", victim)])
            assert isinstance(cancel[0], OrderRejected) and cancel[0].reason is RejectReason.UNKNOWN_ORDER
            (spoof,) = await mallory.submit([PlaceOrder("alice", "m1", SYMBOL, Side.SELL, BTC.parse_qty("1"), BTC.parse_price("31000.00"))])
            assert isinstance(spoof[0], OrderAccepted) and spoof[0].trader == "mallory"
            assert await mallory.order(victim) is None
            view = await alice.order(victim)
            assert view is not None and view.remaining == BTC.parse_qty("1")

    run(scenario)


def test_admin_commands_need_allow_admin(start_server: StartServer) -> None:
    doge = Instrument.create("DOGE-USD", "0.0001", "1")

    async def scenario(url: str, allowed: bool) -> None:
        from engine import AddInstrument, ExchangeError

        async with make_client("zmq", "ops", url) as ops:
            if allowed:
                (added,) = await ops.submit([AddInstrument(doge)])
                assert isinstance(added[0], InstrumentAdded)
                (placed,) = await ops.submit([PlaceOrder("ops", "d1", "DOGE-USD", Side.BUY, 10, 1000)])
                assert isinstance(placed[0], OrderAccepted)
            else:
                try:
                    await ops.submit([AddInstrument(doge)])
                except ExchangeError as exc:
                    assert exc.reason is RejectReason.UNAUTHORIZED
                else:
                    raise AssertionError("add_instrument was accepted without --allow-admin")

    run(lambda: scenario(start_server().url, False))
    run(lambda: scenario(start_server(allow_admin=True).url, True))


def test_a_forgotten_connection_says_hello_again(start_server: StartServer) -> None:
    server = start_server(max_peers=1)  # every hello forgets the other connection

    async def scenario() -> None:
        async with make_client("zmq", "alice", server.url) as alice, make_client("zmq", "bob", server.url) as bob:
            for i in range(5):
                (a,) = await alice.submit([order("alice", f"a{i}", Side.BUY, "0.01", "29000.00")])
                (b,) = await bob.submit([order("bob", f"b{i}", Side.BUY, "0.01", "29000.00")])
                assert isinstance(a[0], OrderAccepted) and a[0].trader == "alice"
                assert isinstance(b[0], OrderAccepted) and b[0].trader == "bob"

    run(scenario)
