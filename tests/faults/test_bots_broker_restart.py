"""Fault: RabbitMQ restarts under a running price feed and ``dex-bots run``.

Real processes: a broker of this test's own, a dex-zmq exchange, the price
feed and ``dex-bots run --workers 2`` (the supervisor users run). The broker
is restarted (same node and data: the durable partition queues and their
persistent updates survive). The feed reconnects and keeps publishing; the
workers lose their connection, exit, and the supervisor starts them again;
the bots trade again on updates published after the restart, and no client
order id is ever accepted twice on the exchange.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.bots.support import ROOT, eager_momentum_bots, exchange, ledger, make_db, start_feed, stop, wait_until

PARTITIONS = 4


def test_feed_and_workers_resume_after_a_broker_restart_and_nothing_is_placed_twice(tmp_path: Path, private_rabbitmq) -> None:
    url = private_rabbitmq.url
    prefix = "restart-"
    server = exchange(tmp_path / "exchange")
    db = make_db(tmp_path / "bots.db", eager_momentum_bots(40, ["BTC-USD", "ETH-USD"]), PARTITIONS)
    log = tmp_path / "run.log"
    run = subprocess.Popen(
        [sys.executable, "-m", "traders.bots.cli", "run", "--db", str(db), "--workers", "2", "--transport", "zmq",
         "--server", server.url, "--amqp-url", url, "--exchange", f"{prefix}price_updates", "--queue-prefix", prefix,
         "--max-age-ms", "30000", "--quiet"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    feed = None

    def read() -> str:
        return log.read_text(errors="replace")

    try:
        wait_until(lambda: len(re.findall(r" ready:", read())) == 2, 60, f"two workers ready: {read()[-2000:]}")
        feed = start_feed(tmp_path, url, prefix, "--pairs", "BTC-USD,ETH-USD", "--interval", "0.1", "--seed", "5", "--quiet")
        wait_until(lambda: ledger(server.journal_path).orders > 10, 60, "bot orders before the restart")
        private_rabbitmq.restart()
        restarted_ms = time.time_ns() // 1_000_000
        wait_until(lambda: "restarting it" in read(), 60, f"the supervisor to see its workers exit: {read()[-2000:]}")

        def trading_again() -> bool:
            book = ledger(server.journal_path)
            return any(int(coid.rsplit("-", 1)[1]) > restarted_ms for _, coid in book.accepted)

        wait_until(trading_again, 90, f"orders on updates published after the restart: {read()[-2000:]}")
        assert feed.poll() is None, "the price feed died with the broker instead of reconnecting"
    finally:
        if feed is not None:
            stop(feed)
        stop(run, timeout=30)
        server.stop()
    book = ledger(server.journal_path)
    assert book.doubled() == {}, "a client order id was accepted twice"
    assert len(book.accepted) == book.orders
