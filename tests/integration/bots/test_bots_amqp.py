"""Price feed -> RabbitMQ -> bot workers -> a real exchange process, all real processes.

Checks what a user sees: the feed's prices become bot orders accepted by the
exchange (read back from the exchange's journal), every partition runs on
exactly one worker, and a redelivered price update places no second order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from engine import OrderView
from pricefeed.publishers import AmqpPublisher
from pricefeed.update import PriceUpdate
from tests.integration.bots.support import (
    eager_momentum_bots,
    exchange,
    ledger,
    log_of,
    make_db,
    ready,
    rising_prices,
    start_feed,
    start_worker,
    stop,
    wait_until,
    worker_stats,
)
from traders.bots.partition import partition_of
from transports.registry import make_client
from transports.zmq.local import LocalZmqServer

PAIRS = ("BTC-USD", "ETH-USD")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalZmqServer]:
    process = exchange(tmp_path / "exchange")
    try:
        yield process
    finally:
        process.stop()


async def _order_view(url: str, trader: str, order_id: int) -> OrderView | None:
    async with make_client("zmq", trader, url) as client:
        return await client.order(order_id)


def test_feed_prices_become_orders_on_the_exchange_with_each_partition_on_one_worker(tmp_path, server, rabbitmq_url, rabbitmq_prefix):
    bots = eager_momentum_bots(12, PAIRS)
    db = make_db(tmp_path / "bots.db", bots, partitions=6)
    workers = [start_worker(tmp_path, i, 2, db, rabbitmq_url, server.url, rabbitmq_prefix) for i in range(2)]
    try:
        wait_until(lambda: all(ready(tmp_path, i) for i in range(2)), 30, "workers to start")
        prices = rising_prices(tmp_path / "prices.csv", PAIRS, steps=8)
        feed = start_feed(
            tmp_path,
            rabbitmq_url,
            rabbitmq_prefix,
            "--source",
            "replay",
            "--file",
            str(prices),
            "--interval",
            "0.1",
            "--pairs",
            ",".join(PAIRS),
        )
        assert feed.wait(60) == 0, log_of(tmp_path, "feed.log")
        # 8 rising steps per pair: from the 2nd on each of the 12 bots buys once per update (IOC, nobody sells: accepted, cancelled).
        wait_until(
            lambda: ledger(server.journal_path).orders >= 12 * 7, 30, f"84 bot orders on the exchange; {log_of(tmp_path, 'worker0.log')}"
        )
        (trader, coid), (order_id,) = next(iter(ledger(server.journal_path).accepted.items()))
        view = asyncio.run(_order_view(server.url, trader, order_id))  # the exchange's own API shows the order
        assert view is not None and view.client_order_id == coid and view.trader == trader
    finally:
        for worker in workers:
            stop(worker)
    book = ledger(server.journal_path)
    assert book.orders == 12 * 7
    assert book.doubled() == {}
    assert {coid.rsplit("-", 1)[0] for _, coid in book.accepted} == {b.bot_id for b in bots}
    for (trader, coid), _ in book.accepted.items():
        assert trader == f"bots-p{partition_of(coid.rsplit('-', 1)[0], 6):03d}"  # a bot trades as its partition's trader
    ran = [set(worker_stats(tmp_path, i)["partitions"]) for i in range(2)]
    assert ran[0].isdisjoint(ran[1])
    assert ran[0] | ran[1] == {partition_of(b.bot_id, 6) for b in bots}
    assert ran[0] and ran[1]  # both workers had work
    assert sum(worker_stats(tmp_path, i)["orders"] for i in range(2)) == 12 * 7


def test_a_redelivered_update_places_no_second_order(tmp_path, server, rabbitmq_url, rabbitmq_prefix):
    bots = eager_momentum_bots(3, ["BTC-USD"])
    db = make_db(tmp_path / "bots.db", bots, partitions=2)
    worker = start_worker(tmp_path, 0, 1, db, rabbitmq_url, server.url, rabbitmq_prefix)

    def update(seq: int, price: str) -> PriceUpdate:
        p = Decimal(price)
        return PriceUpdate("BTC-USD", seq, p, p - Decimal("0.01"), p + Decimal("0.01"), "test", time.time_ns())

    async def publish(*updates: PriceUpdate) -> None:
        publisher = AmqpPublisher(rabbitmq_url, f"{rabbitmq_prefix}price_updates")
        await publisher.connect()
        for u in updates:
            await publisher.publish(u)
        await publisher.close()

    try:
        wait_until(lambda: ready(tmp_path, 0), 30, "the worker to start")
        rise = update(2, "30010.00")
        asyncio.run(publish(update(1, "30000.00"), rise))
        wait_until(lambda: ledger(server.journal_path).orders == 3, 20, "one order per bot")
        asyncio.run(publish(rise, rise))  # the same update delivered twice more
        asyncio.run(publish(update(3, "30020.00")))  # a new one: orders again (so the redeliveries were processed before it)
        wait_until(lambda: ledger(server.journal_path).orders == 6, 20, f"one more order per bot; {log_of(tmp_path, 'worker0.log')}")
        asyncio.run(asyncio.sleep(1.2))  # a stats write
    finally:
        stop(worker)
    book = ledger(server.journal_path)
    assert book.orders == 6
    assert book.doubled() == {}
    assert sorted(coid for _, coid in book.accepted) == sorted(f"{b.bot_id}-{s}" for b in bots for s in (2, 3))
    queues = len({partition_of(b.bot_id, 2) for b in bots})  # each update reaches every partition queue with a bot of its pair
    assert worker_stats(tmp_path, 0)["updates"] == 5 * queues


def test_an_update_redelivered_after_a_crash_before_the_save_is_refused_by_the_exchange(tmp_path, server, rabbitmq_url, rabbitmq_prefix):
    """The worst case: orders sent, the worker dies before saving positions; the update comes again.

    The crash is reproduced exactly: the positions table is put back to its state
    before the update (what a worker killed between the exchange's reply and the
    commit leaves), then a new worker receives the same update.
    """
    bots = eager_momentum_bots(3, ["BTC-USD"])
    db = make_db(tmp_path / "bots.db", bots, partitions=2)
    exchange_name = f"{rabbitmq_prefix}price_updates"

    async def publish(*updates: PriceUpdate) -> None:
        publisher = AmqpPublisher(rabbitmq_url, exchange_name)
        await publisher.connect()
        for u in updates:
            await publisher.publish(u)
        await publisher.close()

    def update(seq: int, price: str) -> PriceUpdate:
        p = Decimal(price)
        return PriceUpdate("BTC-USD", seq, p, p - Decimal("0.01"), p + Decimal("0.01"), "test", time.time_ns())

    first = start_worker(tmp_path, 0, 1, db, rabbitmq_url, server.url, rabbitmq_prefix)
    try:
        wait_until(lambda: ready(tmp_path, 0), 30, "the worker to start")
        asyncio.run(publish(update(1, "30000.00")))
        time.sleep(1.0)
        before = sqlite3.connect(db).execute("SELECT * FROM positions").fetchall()  # after update 1: no order yet
        asyncio.run(publish(update(2, "30010.00")))
        wait_until(lambda: ledger(server.journal_path).orders == 3, 20, "one order per bot")
        # Let it commit and acknowledge update 2: the only redelivery is then the one this test makes (a broker
        # redelivery of update 2 alone would find the new worker without price history: no order at all).
        saved = "SELECT COUNT(*) FROM positions WHERE last_seq = 2"
        wait_until(lambda: sqlite3.connect(db).execute(saved).fetchone()[0] == 3, 20, "update 2 saved")
        time.sleep(0.5)
    finally:
        stop(first)
    (tmp_path / "worker0.log").rename(tmp_path / "first-worker.log")  # the second worker logs afresh
    (tmp_path / "worker0.json").rename(tmp_path / "first-worker.json")
    with sqlite3.connect(db) as connection:  # the crash: positions as they were before update 2
        connection.execute("DELETE FROM positions")
        connection.executemany(f"INSERT INTO positions VALUES ({','.join('?' * 8)})", before)
    second = start_worker(tmp_path, 0, 1, db, rabbitmq_url, server.url, rabbitmq_prefix)
    try:
        wait_until(lambda: ready(tmp_path, 0), 30, "the second worker to start")
        asyncio.run(publish(update(1, "30000.00"), update(2, "30010.00")))  # the redelivery, as the broker would
        wait_until(lambda: ledger(server.journal_path).duplicates == 3, 20, f"three refused duplicates; {log_of(tmp_path, 'worker0.log')}")
        time.sleep(1.2)  # a stats write
    finally:
        stop(second)
    book = ledger(server.journal_path)
    assert book.orders == 3
    assert book.doubled() == {}
    assert worker_stats(tmp_path, 0)["duplicates"] == 3
    positions = {row[0]: row for row in sqlite3.connect(db).execute("SELECT bot_id, last_seq FROM positions")}
    assert all(positions[b.bot_id][1] == 2 for b in bots)  # the update is applied once, after all


def test_bots_with_keys_trade_on_an_exchange_that_wants_keys_and_without_keys_say_so_at_start(tmp_path, rabbitmq_url, rabbitmq_prefix):
    """``--keys DIR``: each partition's trader proves its own development key (docs/bots.md, "Keys")."""
    keys = tmp_path / "keys"
    keyed = LocalZmqServer(tmp_path / "exchange", ("--log-level", "warning", "--fsync", "interval", "--auth", "keys", "--keys", str(keys)))
    keyed.start()
    bots = eager_momentum_bots(4, PAIRS)
    db = make_db(tmp_path / "bots.db", bots, partitions=2)
    try:
        (tmp_path / "unkeyed").mkdir()
        unkeyed = start_worker(tmp_path / "unkeyed", 0, 1, db, rabbitmq_url, keyed.url, rabbitmq_prefix)
        assert unkeyed.wait(60) == 2
        refusal = log_of(tmp_path / "unkeyed", "worker0.log")
        assert "refused the bots' trader" in refusal and "UNAUTHENTICATED" in refusal.upper() and "--keys" in refusal, refusal

        worker = start_worker(tmp_path, 0, 1, db, rabbitmq_url, keyed.url, rabbitmq_prefix, "--keys", str(keys))
        try:
            wait_until(lambda: ready(tmp_path, 0), 30, "the keyed worker to start", detail=lambda: log_of(tmp_path, "worker0.log"))
            prices = rising_prices(tmp_path / "prices.csv", PAIRS, steps=4)
            feed = start_feed(tmp_path, rabbitmq_url, rabbitmq_prefix, "--source", "replay", "--file", str(prices), "--interval", "0.1",
                              "--pairs", ",".join(PAIRS))  # fmt: skip
            assert feed.wait(60) == 0, log_of(tmp_path, "feed.log")
            log = lambda: log_of(tmp_path, "worker0.log")  # noqa: E731
            wait_until(lambda: ledger(keyed.journal_path).orders >= 4 * 3, 30, "12 keyed bot orders", detail=log)
        finally:
            stop(worker)
    finally:
        keyed.stop()
    book = ledger(keyed.journal_path)
    assert book.orders == 4 * 3 and book.doubled() == {}
    assert {trader for trader, _ in book.accepted} == {f"bots-p{partition_of(b.bot_id, 2):03d}" for b in bots}
    keyring = (keys / "keyring.json").read_text()
    assert all(f"bots-p{p:03d}" in keyring for p in range(2))  # a key per partition's trader, created by the worker
