"""Market data over FIX: a MarketDataRequest answered by a snapshot (W), then incremental refreshes (X)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import simplefix

from tests.fix.conftest import fix_exchange
from tests.fix.peer import FixPeer
from tests.fix.test_orders import field, order, reply
from transports.fix import protocol as p


def test_snapshot_then_incremental_refreshes_in_sequence(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fix_exchange(tmp_path) as (url, _):
            trader, watcher = await FixPeer.open(url, "trader"), await FixPeer.open(url, "watcher")
            await trader.logon(reset=True)
            await watcher.logon(reset=True)
            await trader.send(p.NEW_ORDER_SINGLE, *order("b1", "1", "0.5", "29000.00"))
            await reply(trader)

            request = [(p.MD_REQ_ID, "md1"), (p.SUBSCRIPTION_REQUEST_TYPE, "1"), (p.MARKET_DEPTH, 0), (p.NO_RELATED_SYM, 1)]
            await watcher.send(p.MARKET_DATA_REQUEST, *request, (p.SYMBOL, "BTC-USD"))
            (snapshot,) = await reply(watcher)
            assert field(snapshot, p.MSG_TYPE) == "W" and field(snapshot, p.MD_REQ_ID) == "md1"
            assert [field(snapshot, t) for t in (p.NO_MD_ENTRIES, p.MD_ENTRY_TYPE, p.MD_ENTRY_PX, p.MD_ENTRY_SIZE)] == [
                "1", "0", "29000.00", "0.5000"
            ]  # fmt: skip
            rpt_seq = int(field(snapshot, p.RPT_SEQ))

            await trader.send(p.NEW_ORDER_SINGLE, *order("s1", "2", "0.7", "31000.00"))
            await reply(trader)
            taker = await FixPeer.open(url, "taker")
            await taker.logon(reset=True)
            await taker.send(p.NEW_ORDER_SINGLE, *order("t1", "1", "0.2", "31000.00"))
            await reply(taker)

            updates: list[simplefix.FixMessage] = []
            while len(updates) < 3:
                message = await watcher.read()
                if message.get(p.MSG_TYPE) == p.MARKET_DATA_INCREMENTAL:
                    updates.append(message)
            assert [int(field(u, p.RPT_SEQ)) for u in updates] == [rpt_seq + 1, rpt_seq + 2, rpt_seq + 3]
            new_ask, trade, ask_after = updates
            assert [field(new_ask, t) for t in (p.MD_UPDATE_ACTION, p.MD_ENTRY_TYPE, p.MD_ENTRY_PX, p.MD_ENTRY_SIZE)] == [
                "1", "1", "31000.00", "0.7000"
            ]  # fmt: skip
            assert [field(trade, t) for t in (p.MD_ENTRY_TYPE, p.MD_ENTRY_PX, p.MD_ENTRY_SIZE)] == ["2", "31000.00", "0.2000"]
            assert (field(ask_after, p.MD_ENTRY_TYPE), field(ask_after, p.MD_ENTRY_SIZE)) == ("1", "0.5000")

            await watcher.send(p.MARKET_DATA_REQUEST, (p.MD_REQ_ID, "md2"), (p.SUBSCRIPTION_REQUEST_TYPE, "0"), (p.NO_RELATED_SYM, 1),
                               (p.SYMBOL, "NOPE"))  # fmt: skip
            (rejected,) = await reply(watcher)
            assert field(rejected, p.MSG_TYPE) == "Y" and field(rejected, p.MD_REQ_REJ_REASON) == "0"

    asyncio.run(scenario())
