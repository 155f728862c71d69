"""Private fills: each trader receives its own fills, as maker and as taker, and nobody else's (gRPC ``Fills``,
the WebSocket ``/ws/fills``), while public market data stays anonymous."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from engine import OrderAccepted, Side
from tests.contract.test_contract import BUY, PX, SELL, Venue, limit, of, one, run
from transports.core.fills import Fill

FILL_TRANSPORTS = ["grpc", "http"]


async def first(stream: AsyncIterator[Fill], count: int) -> list[Fill]:
    out: list[Fill] = []
    async for fill in stream:
        out.append(fill)
        if len(out) == count:
            break
    return out


@pytest.mark.parametrize("transport", FILL_TRANSPORTS)
def test_each_trader_receives_its_own_fills_as_maker_and_taker_and_nobody_elses(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        clients = {name: await v.client(name) for name in ("mïra", "theo", "olga")}
        streams = {name: c.fills() for name, c in clients.items()}
        got = {
            "mïra": asyncio.ensure_future(first(streams["mïra"], 2)),
            "theo": asyncio.ensure_future(first(streams["theo"], 1)),
            "olga": asyncio.ensure_future(first(streams["olga"], 1)),
        }
        for _ in range(200):  # bounded: until the server holds the three subscriptions
            if v.gateway.fills.subscriber_count == 3:
                break
            await asyncio.sleep(0.01)
        assert v.gateway.fills.subscriber_count == 3

        (rest,) = of(OrderAccepted, await one(clients["mïra"], limit("m-1", SELL, 5000, PX)))
        (take,) = of(OrderAccepted, await one(clients["theo"], limit("t-1", BUY, 2000, PX)))
        (later,) = of(OrderAccepted, await one(clients["olga"], limit("o-1", BUY, 1000, PX)))

        mira = await asyncio.wait_for(got["mïra"], 10)
        theo = await asyncio.wait_for(got["theo"], 10)
        olga = await asyncio.wait_for(got["olga"], 10)
        # The maker (a UTF-8 name) learns both fills of its resting order, without being told who took it.
        assert [(f.order_id, f.client_order_id, f.side, f.price, f.qty, f.remaining, f.maker) for f in mira] == [
            (rest.order_id, "m-1", Side.SELL, PX, 2000, 3000, True),
            (rest.order_id, "m-1", Side.SELL, PX, 1000, 2000, True),
        ]
        assert [(f.order_id, f.client_order_id, f.side, f.qty, f.remaining, f.maker) for f in theo] == [
            (take.order_id, "t-1", Side.BUY, 2000, 0, False)
        ]
        # olga's first fill is its own trade, not the earlier one between mira and theo.
        assert [(f.order_id, f.trade_id) for f in olga] == [(later.order_id, mira[1].trade_id)]
        assert mira[0].trade_id == theo[0].trade_id < mira[1].trade_id
        for stream in streams.values():
            await stream.aclose()  # type: ignore[attr-defined]  # an async generator

    run(transport, scenario)
