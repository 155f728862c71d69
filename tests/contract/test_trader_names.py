"""One rule for trader names on every wire (``transports.core.requests.check_trader``).

A name is 1 to 64 characters of UTF-8 text, printable, in Unicode NFC, with
surrounding blanks removed; it travels as UTF-8 bytes on every wire (HTTP
header bytes included; gRPC's binary ``x-trader-bin`` metadata when it is not
printable ASCII). So the same name is the same trader whichever wire it came
by, and a name outside the rule is refused with ``MALFORMED_MESSAGE`` on each.
With keys, the trader is the one its key names, and the rule holds where a
name enters: no key is issued for a name outside it (``create_key`` refuses it
with ``MALFORMED_MESSAGE``), so no wire ever acts as one.
"""

from __future__ import annotations

import pytest

from engine import ExchangeError, OrderAccepted, RejectReason
from tests.contract.test_contract import BUY, PX, Venue, limit, of, one, run

NAMES = ["zoë", "交易员-7", "Ωmega trader", "plain-ascii"]
REFUSED = {
    "a control character": "bell\u0007",
    "not NFC (e + combining acute)": "jose\u0301",
    "65 characters": "ü" * 65,
}


def test_a_utf8_name_reaches_the_same_trader_on_every_wire(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        for i, name in enumerate(NAMES):
            client = await v.client(name)
            (accepted,) = of(OrderAccepted, await one(client, limit(f"n{i}", BUY, 2, PX - 1000 - i)))
            assert accepted.trader == name
            view = v.gateway.order_status(name, accepted.order_id)
            assert view is not None and view.trader == name  # the gateway's trader is exactly the name sent
            mine = await client.order(accepted.order_id)
            assert mine is not None and mine.trader == name  # and the wire reads it back as the same trader

    run(transport, scenario)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_name_outside_the_rule_is_refused_on_every_wire(transport: str, case: str) -> None:
    async def scenario(v: Venue) -> None:
        with pytest.raises(ExchangeError) as refused:
            client = await v.client(REFUSED[case])
            await one(client, limit("r1", BUY, 2, PX - 1000))
        assert refused.value.reason is RejectReason.MALFORMED_MESSAGE
        assert v.gateway.open_orders(REFUSED[case]) == []

    run(transport, scenario)
