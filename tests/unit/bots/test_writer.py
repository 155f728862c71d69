"""Group commit: an update is acknowledged only once the positions it changed are in the database."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from traders.bots.model import Position
from traders.bots.store import BotStore
from traders.bots.writer import PositionWriter


def test_acks_come_after_the_commit_of_their_positions_and_pending_work_is_saved_at_stop(tmp_path):
    db = str(tmp_path / "bots.db")
    BotStore(db).close()
    seen_at_ack: list[dict[str, Position]] = []

    async def scenario() -> int:
        writer = PositionWriter(db, max_delay_s=0.001)
        running = asyncio.create_task(writer.run())

        def ack_for(bot_ids: list[str]):  # type: ignore[no-untyped-def]
            async def ack() -> None:
                seen_at_ack.append(BotStore(db).positions(bot_ids))

            return ack

        writer.submit({"a": Position(qty=Decimal("1.5"), last_seq=7)}, ack_for(["a"]))
        writer.submit({"b": Position(qty=Decimal("-2"), last_seq=8)}, ack_for(["a", "b"]))
        for _ in range(200):
            if len(seen_at_ack) == 2:
                break
            await asyncio.sleep(0.01)
        writer.submit({"c": Position(qty=Decimal("3"), last_seq=9)}, ack_for(["c"]))
        running.cancel()  # stopping before the next commit: the pending position is still saved, its ack is not sent
        await asyncio.gather(running, return_exceptions=True)
        return writer.commits

    commits = asyncio.run(scenario())
    assert seen_at_ack[0]["a"].qty == Decimal("1.5")
    assert seen_at_ack[1]["b"].last_seq == 8
    assert len(seen_at_ack) == 2
    assert commits >= 1
    assert BotStore(db).positions(["c"])["c"].qty == Decimal("3")
