"""``dex-bots`` commands as a user runs them: init/add/list/disable, and ``run --workers 2`` under SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.bots.support import ROOT, exchange, ledger, wait_until
from traders.bots.cli import main


def test_init_add_list_and_disable(tmp_path, capsys):
    db = str(tmp_path / "bots.db")
    assert main(["init", "--db", db, "--bots", "6", "--partitions", "4", "--pairs", "BTC-USD,ETH-USD"]) == 0
    assert "4 partitions, 6 bots added, 6 enabled" in capsys.readouterr().out
    assert main(["add", "--db", db, "--id", "mine", "--pair", "SOL-USD", "--strategy", "grid", "--size", "2",
                 "--max-position", "20", "--max-exposure", "5000", "--param", "step_bps=15"]) == 0  # fmt: skip
    assert main(["disable", "--db", db, "b000001"]) == 0
    assert main(["disable", "--db", db, "nobody"]) == 1
    capsys.readouterr()
    assert main(["list", "--db", db]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 7
    assert {"bot_id": "mine", "pair": "SOL-USD", "strategy": "grid", "size": "2", "enabled": True} in rows
    assert [r["enabled"] for r in rows if r["bot_id"] == "b000001"] == [False]
    with pytest.raises(SystemExit) as refused:
        main(["add", "--db", db, "--id", "bad", "--pair", "BTC-USD", "--strategy", "grid", "--size", "-1",
              "--max-position", "1", "--max-exposure", "1"])  # fmt: skip
    assert refused.value.code == 2
    assert "must be a positive decimal" in capsys.readouterr().err


def test_run_starts_the_workers_they_trade_and_sigterm_stops_them_all(tmp_path, rabbitmq_url, rabbitmq_prefix):
    server = exchange(tmp_path / "exchange")
    db = str(tmp_path / "bots.db")
    assert main(["init", "--db", db, "--bots", "60", "--partitions", "4"]) == 0
    exchange_name = f"{rabbitmq_prefix}price_updates"
    common = ["--amqp-url", rabbitmq_url, "--exchange", exchange_name, "--queue-prefix", rabbitmq_prefix, "--max-age-ms", "30000"]
    log = tmp_path / "run.log"
    run = subprocess.Popen(
        [sys.executable, "-m", "traders.bots.cli", "run", "--db", db, "--workers", "2", "--transport", "zmq",
         "--server", server.url, *common],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    feed = None

    def read() -> str:
        return log.read_text(errors="replace")

    try:
        wait_until(lambda: len(re.findall(r"ready:", read())) == 2, 40, "two workers ready")
        pids = [int(p) for p in re.findall(r"dex-bots: worker \d pid (\d+)", read())]
        assert len(pids) == 2
        feed = subprocess.Popen(
            [sys.executable, "-m", "pricefeed.cli", "--amqp-url", rabbitmq_url, "--exchange", exchange_name,
             "--interval", "0.1", "--quiet"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: ledger(server.journal_path).orders > 0, 40, "bot orders on the exchange")
        wait_until(lambda: re.search(r"dex-bots: \d/2 workers, \d+/4 partitions \| updates [1-9]", read()) is not None, 20, "a status line")
        os.kill(run.pid, signal.SIGTERM)
        assert run.wait(30) == 0
        for pid in pids:  # the workers are gone too
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"worker {pid} still runs")
    finally:
        if feed is not None:
            feed.terminate()
            feed.wait(10)
        if run.poll() is None:
            run.kill()
            run.wait(10)
        server.stop()
    status = next(line for line in read().splitlines() if re.match(r"dex-bots: \d/2 workers", line))
    for word in ("partitions", "updates", "orders", "acked", "fills", "risk held", "refused", "backlog", "latency"):
        assert word in status
    assert re.search(r"dex-bots summary: .* [1-9]\d* orders sent", read()), read()[-2000:]
    assert ledger(server.journal_path).doubled() == {}
