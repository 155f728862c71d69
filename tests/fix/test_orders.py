"""Order entry over FIX: NewOrderSingle, cancel, replace and mass cancel, and the ExecutionReports they give."""

from __future__ import annotations

import asyncio
from pathlib import Path

import simplefix

from engine import RejectReason
from tests.fix.conftest import fix_exchange
from tests.fix.peer import FixPeer
from transports.fix import protocol as p

Pairs = list[tuple[int, object]]


def order(cl_ord_id: str, side: str, qty: str, price: str = "", ord_type: str = "2", *extra: tuple[int, object]) -> Pairs:
    pairs: Pairs = [(p.CL_ORD_ID, cl_ord_id), (p.SYMBOL, "BTC-USD"), (p.SIDE, side), (p.ORDER_QTY, qty)]
    pairs.append((p.ORD_TYPE, ord_type))
    if price:
        pairs.append((p.PRICE, price))
    return [*pairs, (p.TRANSACT_TIME, p.sending_time()), *extra]


def field(message: simplefix.FixMessage, tag: int) -> str:
    return (message.get(tag) or b"").decode()


async def reply(peer: FixPeer) -> list[simplefix.FixMessage]:
    """Every message of the next answer (up to the one marked DEX_REPLY=Y); unsolicited ones are skipped."""
    out: list[simplefix.FixMessage] = []
    while True:
        message = await peer.read()
        if message.get(p.DEX_REPLY) is None:
            continue
        out.append(message)
        if message.get(p.DEX_REPLY) == b"Y":
            return out


async def two_traders(url: str) -> tuple[FixPeer, FixPeer]:
    maker, taker = await FixPeer.open(url, "maker"), await FixPeer.open(url, "taker")
    await maker.logon(reset=True)
    await taker.logon(reset=True)
    return maker, taker


def test_place_partial_fill_fill_cancel_and_replace(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            maker, taker = await two_traders(url)
            await maker.send(p.NEW_ORDER_SINGLE, *order("m1", "2", "0.5", "30000.00"))
            (new,) = await reply(maker)
            assert (field(new, p.EXEC_TYPE), field(new, p.ORD_STATUS), field(new, p.LEAVES_QTY)) == ("0", "0", "0.5000")
            order_id = field(new, p.ORDER_ID)

            await taker.send(p.NEW_ORDER_SINGLE, *order("t1", "1", "0.2", "30000.00"))
            accepted, trade = await reply(taker)
            assert field(accepted, p.EXEC_TYPE) == "0"
            assert [field(trade, t) for t in (p.EXEC_TYPE, p.ORD_STATUS, p.CUM_QTY, p.LEAVES_QTY, p.LAST_PX, p.LAST_QTY)] == [
                "F", "2", "0.2000", "0.0000", "30000.00", "0.2000"
            ]  # fmt: skip
            maker_fill = await maker.expect(p.EXECUTION_REPORT)  # unsolicited: the resting order was hit
            assert maker_fill.get(p.DEX_REPLY) is None
            assert [field(maker_fill, t) for t in (p.CL_ORD_ID, p.ORDER_ID, p.EXEC_TYPE, p.ORD_STATUS, p.CUM_QTY, p.LEAVES_QTY)] == [
                "m1", order_id, "F", "1", "0.2000", "0.3000"
            ]  # fmt: skip

            await taker.send(p.NEW_ORDER_SINGLE, *order("t2", "1", "0.1", "30001.50"))
            await reply(taker)
            second = await maker.expect(p.EXECUTION_REPORT)
            assert (field(second, p.CUM_QTY), field(second, p.AVG_PX)) == ("0.3000", "30000")

            await maker.send(p.ORDER_CANCEL_REPLACE_REQUEST, *order("m2", "2", "0.6", "30100.00"), (p.ORIG_CL_ORD_ID, "m1"))
            (replaced,) = await reply(maker)
            assert [field(replaced, t) for t in (p.EXEC_TYPE, p.CL_ORD_ID, p.ORIG_CL_ORD_ID, p.PRICE, p.ORDER_QTY, p.LEAVES_QTY)] == [
                "5", "m2", "m1", "30100.00", "0.6000", "0.3000"
            ]  # fmt: skip

            await maker.send(p.ORDER_CANCEL_REQUEST, (p.CL_ORD_ID, "m3"), (p.ORIG_CL_ORD_ID, "m2"), (p.SYMBOL, "BTC-USD"), (p.SIDE, "2"))
            (cancelled,) = await reply(maker)
            assert [field(cancelled, t) for t in (p.EXEC_TYPE, p.ORD_STATUS, p.CL_ORD_ID, p.ORIG_CL_ORD_ID, p.CUM_QTY, p.LEAVES_QTY)] == [
                "4", "4", "m3", "m2", "0.3000", "0.0000"
            ]  # fmt: skip

            await maker.send(p.ORDER_CANCEL_REQUEST, (p.CL_ORD_ID, "m4"), (p.ORIG_CL_ORD_ID, "m2"), (p.SYMBOL, "BTC-USD"), (p.SIDE, "2"))
            (too_late,) = await reply(maker)
            assert field(too_late, p.MSG_TYPE) == "9" and field(too_late, p.CXL_REJ_REASON) == "1"
            assert field(too_late, p.DEX_REASON) == str(int(RejectReason.UNKNOWN_ORDER))

    asyncio.run(scenario())


def test_order_types_and_refusals(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            maker, taker = await two_traders(url)
            await maker.send(p.NEW_ORDER_SINGLE, *order("m1", "2", "0.3", "30000.00"))
            await reply(maker)

            await taker.send(p.NEW_ORDER_SINGLE, *order("mkt", "1", "0.1", "", "1"))  # market
            assert [field(m, p.EXEC_TYPE) for m in await reply(taker)] == ["0", "F"]
            await taker.send(p.NEW_ORDER_SINGLE, *order("ioc", "1", "0.5", "30000.00", "2", (p.TIME_IN_FORCE, "3")))
            ioc = await reply(taker)
            assert [field(m, p.EXEC_TYPE) for m in ioc] == ["0", "F", "4"]
            assert field(ioc[-1], p.TEXT) == "IOC_REMAINDER" and field(ioc[-1], p.CUM_QTY) == "0.2000"
            await taker.send(p.NEW_ORDER_SINGLE, *order("fok", "1", "1", "30000.00", "2", (p.TIME_IN_FORCE, "4")))
            fok = await reply(taker)
            assert [field(m, p.EXEC_TYPE) for m in fok][-1] == "4" and "F" not in [field(m, p.EXEC_TYPE) for m in fok]

            await maker.send(p.NEW_ORDER_SINGLE, *order("m2", "2", "0.3", "30000.00"))
            await reply(maker)
            await taker.send(p.NEW_ORDER_SINGLE, *order("po", "1", "0.1", "30000.00", "2", (p.EXEC_INST, "6")))
            (post_only,) = await reply(taker)
            assert (field(post_only, p.EXEC_TYPE), field(post_only, p.DEX_REASON)) == ("8", str(int(RejectReason.POST_ONLY_WOULD_TAKE)))

            await taker.send(p.NEW_ORDER_SINGLE, *order("stop", "1", "0.1", "", "3", (p.STOP_PX, "31000.00")))
            (stop,) = await reply(taker)
            assert (field(stop, p.EXEC_TYPE), field(stop, p.ORD_TYPE)) == ("0", "3")

            await taker.send(p.NEW_ORDER_SINGLE, *order("tick", "1", "0.1", "30000.001"))
            (off_tick,) = await reply(taker)
            assert (field(off_tick, p.EXEC_TYPE), field(off_tick, p.DEX_REASON)) == ("8", str(int(RejectReason.INVALID_PRICE)))
            assert field(off_tick, p.CL_ORD_ID) == "tick"
            unknown_symbol = [(t, "NOPE" if t == p.SYMBOL else v) for t, v in order("sym", "1", "0.1", "1")]
            await taker.send(p.NEW_ORDER_SINGLE, *unknown_symbol)
            (unknown,) = await reply(taker)
            assert (field(unknown, p.EXEC_TYPE), field(unknown, p.ORD_REJ_REASON)) == ("8", "1")
            assert field(unknown, p.DEX_REASON) == str(int(RejectReason.UNKNOWN_SYMBOL))

    asyncio.run(scenario())


def test_mass_cancel_reports_each_order_and_the_count(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            maker, _ = await two_traders(url)
            for n in range(3):
                await maker.send(p.NEW_ORDER_SINGLE, *order(f"m{n}", "1", "0.1", f"2900{n}.00"))
                await reply(maker)
            await maker.send(p.ORDER_MASS_CANCEL_REQUEST, (p.CL_ORD_ID, "mc"), (p.MASS_CANCEL_REQUEST_TYPE, "7"))
            answer = await reply(maker)
            assert [field(m, p.MSG_TYPE) for m in answer] == ["8", "8", "8", "r"]
            assert sorted(field(m, p.CL_ORD_ID) for m in answer[:3]) == ["m0", "m1", "m2"]
            assert (field(answer[-1], p.TOTAL_AFFECTED_ORDERS), field(answer[-1], p.MASS_CANCEL_RESPONSE)) == ("3", "7")

    asyncio.run(scenario())
