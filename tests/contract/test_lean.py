"""The lean order path (``TraderClient.submit_orders``), the same on every transport.

Each test runs once per registered transport, through the contract suite's
venue: a client sends ``OrderBatch`` bytes and reads each command's outcome,
own fills and leaves; refusals are whole and apply nothing.
"""

from __future__ import annotations

import pytest

from engine import CancelOrder, CancelReason, Command, ExchangeError, MassCancel, Overloaded, RejectReason, ReplaceOrder, TimeInForce
from tests.contract.test_contract import BUY, PX, SELL, SYM, Venue, limit, run
from transports.codec import lean


def test_each_command_gets_its_outcome_its_own_fills_and_its_leaves(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice, bob = await v.client("alice"), await v.client("bob")
        placed = await alice.submit_orders(lean.encode_orders([limit("a1", SELL, 1000, PX), limit("a2", SELL, 1000, PX + 1)]))
        assert placed.outcome == [lean.ACCEPTED, lean.ACCEPTED] and placed.leaves == [1000, 1000] and placed.trades == 0
        taker = await bob.submit_orders(
            lean.encode_orders([limit("b1", BUY, 1500, PX + 1), limit("b2", BUY, 5, PX - 100, tif=TimeInForce.IOC)])
        )
        assert taker.outcome[0] == lean.ACCEPTED and taker.fills[0] == 2 and taker.leaves[0] == 0
        assert taker.fill_qty == [1000, 500] and taker.fill_price == [PX, PX + 1] and taker.trades == 2
        # The IOC's remainder is cancelled at once: accepted, no fill, its remainder cancelled with the reason.
        assert taker.outcome[1] == lean.ACCEPTED and taker.fills[1] == 0 and taker.cancelled[1] == 5
        assert taker.reason[1] == CancelReason.IOC_REMAINDER
        assert await alice.order(placed.order_id[1]) is not None

    run(transport, scenario)


def test_cancel_replace_mass_cancel_and_rejects_are_outcomes_with_reasons(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        first = await alice.submit_orders(lean.encode_orders([limit("a1", BUY, 1000, PX - 100), limit("a2", BUY, 1000, PX - 200)]))
        a1, a2 = first.order_id
        commands: list[Command] = [
            ReplaceOrder("", a1, PX - 150, 0, SYM),
            CancelOrder("", 0, "a2"),
            CancelOrder("", a2),  # already cancelled
            limit("a3", BUY, 1000, PX - 300),
            limit("a3", BUY, 1000, PX - 300),  # the same client order id
            MassCancel("", SYM),
        ]
        out = await alice.submit_orders(lean.encode_orders(commands))
        assert out.outcome == [lean.REPLACED, lean.CANCELLED, lean.REJECTED, lean.ACCEPTED, lean.REJECTED, lean.CANCELLED]
        assert out.order_id[0] == a1 and out.leaves[0] == 1000
        assert out.order_id[1] == a2 and out.cancelled[1] == 1000
        assert out.reason[2] == RejectReason.UNKNOWN_ORDER and out.reason[4] == RejectReason.DUPLICATE_CLIENT_ORDER_ID
        assert out.cancelled[5] == 2  # a1 and a3
        assert out.rejected_by_reason() == {"UNKNOWN_ORDER": 1, "DUPLICATE_CLIENT_ORDER_ID": 1}
        assert (await alice.book(SYM)).bids == []

    run(transport, scenario)


def test_a_connection_acts_only_for_its_own_trader(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice, mallory = await v.client("alice"), await v.client("mallory")
        (order_id,) = (await alice.submit_orders(lean.encode_orders([limit("a1", BUY, 1000, PX - 100)]))).order_id
        spoof = await mallory.submit_orders(lean.encode_orders([CancelOrder("alice", order_id)]))
        assert spoof.outcome == [lean.REJECTED] and spoof.reason == [RejectReason.UNKNOWN_ORDER]
        view = await alice.order(order_id)
        assert view is not None and view.remaining == 1000

    run(transport, scenario)


def test_a_malformed_batch_is_refused_whole_and_nothing_is_applied(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        good = lean.encode_orders([limit("a1", BUY, 1000, PX - 100)])
        bad = lean.parse_orders(lean.encode_orders([limit("a2", BUY, 1000, PX - 100), CancelOrder("", 1)]))
        bad.side[1] = 2  # a cancel takes no side
        with pytest.raises(ExchangeError) as info:
            await alice.submit_orders(bad.SerializeToString())
        assert info.value.reason is RejectReason.MALFORMED_MESSAGE
        with pytest.raises(ExchangeError) as garbage:
            await alice.submit_orders(b"\xff\xff\xff")
        assert garbage.value.reason is RejectReason.MALFORMED_MESSAGE  # answered as such, not a stream given up on a timeout
        assert (await alice.book(SYM)).bids == []
        assert (await alice.submit_orders(good)).outcome == [lean.ACCEPTED]

    run(transport, scenario)


def test_an_overloaded_gateway_refuses_a_lean_batch_and_a_retry_goes_through(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        batch = lean.encode_orders([limit("a1", BUY, 1000, PX - 100)])
        v.gateway._queued = v.gateway.config.buffer  # the queue is full (others' work in flight)
        try:
            with pytest.raises(Overloaded):
                await alice.submit_orders(batch)
        finally:
            v.gateway._queued = 0
        assert (await alice.submit_orders(batch)).outcome == [lean.ACCEPTED]

    run(transport, scenario, buffer=20)
