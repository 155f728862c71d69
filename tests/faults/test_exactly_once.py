"""kill -9 between a cancel's journal write and its reply: the retry after a restart is answered, and cancels once.

A real ``dex-zmq`` process is started with the fault hook ``DEX_TEST_KILL_AFTER_JOURNAL`` naming a request id: once
the command carrying it is in the journal (and fsynced: ``--fsync batch``) and before its reply is released, the
server SIGKILLs itself. The client never hears the answer. A fresh server on the same journal (the hook off) recovers;
the client retries the cancel with the same request id and is answered with the original outcome: the order was
cancelled exactly once, the retry adds no event (the engine sequence does not move) and the order stays cancelled.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from engine import CancelOrder, CancelReason, NotConnected, OrderAccepted, OrderCancelled, OrderStatus, PlaceOrder, Side
from transports.zmq.client import ZmqClient
from transports.zmq.local import LocalZmqServer

REQUEST_ID = 4242
TRADER = "alice"


def test_a_cancel_retried_after_kill_9_between_journal_and_reply_is_answered_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workdir = tmp_path / "exchange"
    monkeypatch.setenv("DEX_TEST_KILL_AFTER_JOURNAL", str(REQUEST_ID))
    doomed = LocalZmqServer(workdir, ("--fsync", "batch")).start()
    try:
        order_id = asyncio.run(_place_then_cancel_into_the_kill(doomed.url))
        assert doomed.process is not None
        assert doomed.process.wait(timeout=30) == -signal.SIGKILL  # it died by the hook, not by a clean shutdown
    finally:
        doomed.stop()
    monkeypatch.delenv("DEX_TEST_KILL_AFTER_JOURNAL")
    with LocalZmqServer(workdir, ("--fsync", "batch")) as server:
        first, second, seq_before, stats, status = asyncio.run(_retry(server.url, order_id))
    for answer in (first, second):
        assert [type(e) for e in answer if not _is_delta(e)] == [OrderCancelled]
        cancelled = answer[0]
        assert isinstance(cancelled, OrderCancelled)
        assert (cancelled.order_id, cancelled.reason, cancelled.qty) == (order_id, CancelReason.USER, 5)
    assert first == second
    assert stats["engine_seq"] == seq_before  # the retries added no event: the cancel happened once, before the kill
    assert stats["repeated_requests"] == 2
    assert stats["cancelled_by_reason"] == {}  # this process cancelled nothing itself
    assert status == OrderStatus.CANCELLED


def _is_delta(event: object) -> bool:
    return type(event).__name__ == "BookDelta"


async def _place_then_cancel_into_the_kill(url: str) -> int:
    async with ZmqClient(TRADER, url, timeout=5.0) as client:
        instrument = (await client.instruments())[0]
        price = instrument.reference_price or 100  # inside the price band
        [placed] = await client.submit([PlaceOrder(TRADER, "c1", instrument.symbol, Side.BUY, 5, price)])
        accepted = placed[0]
        assert isinstance(accepted, OrderAccepted)
        with pytest.raises(NotConnected):
            await client.cancel(accepted.order_id, request_id=REQUEST_ID)  # journaled, then the server is killed
        return accepted.order_id


async def _retry(url: str, order_id: int) -> tuple[list[object], list[object], int, dict[str, object], OrderStatus | None]:
    async with ZmqClient(TRADER, url, timeout=10.0) as client:
        seq_before = (await client.stats())["engine_seq"]
        [first] = await client.submit([CancelOrder(TRADER, order_id, request_id=REQUEST_ID)])
        second = await client.cancel(order_id, request_id=REQUEST_ID)
        stats = await client.stats()
        view = await client.order(order_id)
        return list(first), list(second), int(seq_before), stats, view.status if view is not None else None
