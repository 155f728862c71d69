"""Strict values reach the same reason on every wire (docs/json-format.md, "Strict values").

A typed client encodes each command in its wire's form (JSON, protobuf or the
lean columns); whatever the form, a field the order type does not take, or a
negative price or quantity, comes back with the same reason, and nothing of it
rests in the book.
"""

from __future__ import annotations

import pytest

from engine import OrderType, PlaceOrder, RejectReason, TimeInForce
from tests.contract.test_contract import BUY, PX, SYM, Venue, reason_of, run

CASES = {
    "market with a price": (PlaceOrder("", "s1", SYM, BUY, 1000, PX, OrderType.MARKET), RejectReason.INVALID_ORDER),
    "stop price on a limit": (PlaceOrder("", "s2", SYM, BUY, 1000, PX, stop_price=PX - 100), RejectReason.INVALID_ORDER),
    "post-only IOC": (PlaceOrder("", "s3", SYM, BUY, 1000, PX - 100, tif=TimeInForce.IOC, post_only=True), RejectReason.INVALID_ORDER),
    "negative price": (PlaceOrder("", "s4", SYM, BUY, 1000, -PX), RejectReason.INVALID_PRICE),
    "negative quantity": (PlaceOrder("", "s5", SYM, BUY, -1000, PX - 100), RejectReason.INVALID_QUANTITY),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_outside_the_rules_gets_the_same_reason_on_every_wire(transport: str, case: str) -> None:
    command, reason = CASES[case]

    async def scenario(v: Venue) -> None:
        client = await v.client("strict")
        assert await reason_of(client, command) is reason
        assert v.gateway.open_orders("strict") == []

    run(transport, scenario)
