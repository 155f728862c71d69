"""Fault: a bot worker is killed (SIGKILL, by PID) under load.

Real processes: a dex-zmq exchange, RabbitMQ, three ``dex-bots worker``
processes and ``dex-pricefeed``. After the kill, the dead worker's partitions
must be served by the survivors (the broker's single-active-consumer hand-over),
its bots must keep trading, and the exchange (its journal, replayed) must show
at most one accepted order per client order id: updates the dead worker had
taken but not acknowledged are redelivered and refused as duplicates.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.bots.support import (
    eager_momentum_bots,
    exchange,
    ledger,
    log_of,
    make_db,
    ready,
    start_feed,
    start_worker,
    stop,
    wait_until,
    worker_stats,
)
from traders.bots.partition import partition_of
from transports.zmq.local import LocalZmqServer

PARTITIONS = 12
WORKERS = 3


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalZmqServer]:
    process = exchange(tmp_path / "exchange")
    try:
        yield process
    finally:
        process.stop()


def test_killed_workers_bots_resume_on_the_others_and_no_order_is_placed_twice(tmp_path, server, rabbitmq_url, rabbitmq_prefix):
    bots = eager_momentum_bots(120, ["BTC-USD", "ETH-USD"])
    db = make_db(tmp_path / "bots.db", bots, PARTITIONS)
    workers = [start_worker(tmp_path, i, WORKERS, db, rabbitmq_url, server.url, rabbitmq_prefix) for i in range(WORKERS)]
    feed = None
    try:
        wait_until(lambda: all(ready(tmp_path, i) for i in range(WORKERS)), 30, "workers to start")
        time.sleep(1.0)  # the standbys subscribe (in rank order) just after the owners
        feed = start_feed(
            tmp_path, rabbitmq_url, rabbitmq_prefix, "--pairs", "BTC-USD,ETH-USD", "--interval", "0.05", "--seed", "3", "--quiet"
        )
        wait_until(lambda: all(worker_stats(tmp_path, i).get("orders", 0) > 20 for i in range(WORKERS)), 40, "orders from every worker")
        victim = workers[1]
        before = [set(worker_stats(tmp_path, i)["partitions"]) for i in range(WORKERS)]
        assert sum(map(len, before)) == len(set().union(*before)) == PARTITIONS, f"overlap or gap before the kill: {before}"
        lost = before[1]
        assert lost, "worker 1 ran no partition"
        killed_ms = time.time_ns() // 1_000_000
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        moved = {b.bot_id for b in bots if partition_of(b.bot_id, PARTITIONS) in lost}

        def resumed() -> bool:
            book = ledger(server.journal_path)
            after = {coid.rsplit("-", 1)[0] for _, coid in book.accepted if int(coid.rsplit("-", 1)[1]) > killed_ms + 500}
            return len(after & moved) >= len(moved) // 2

        wait_until(resumed, 40, f"the dead worker's bots to trade again; {log_of(tmp_path, 'worker0.log')}")
    finally:
        if feed is not None:
            stop(feed)
        for worker in workers:
            stop(worker)
    book = ledger(server.journal_path)
    assert book.doubled() == {}, "a client order id was accepted twice"
    survivors = [set(worker_stats(tmp_path, i)["partitions"]) for i in (0, 2)]
    assert lost <= survivors[0] | survivors[1], "a partition of the dead worker was not taken over"
    assert survivors[0].isdisjoint(survivors[1]), "a partition ran on two live workers"
    assert len(book.accepted) == book.orders  # one order id per (trader, client order id)
    print(f"orders {book.orders}, refused duplicates {book.duplicates}, moved partitions {sorted(lost)}")
