"""The README's bots flow, as a user runs it: RabbitMQ, ``dex-amqp`` on it, the price feed, ``dex-bots run``, Ctrl-C.

Real processes and a real broker. ``dex-bots run`` is started with no
``--transport`` and no ``--server``: the defaults must reach the exchange the
README pairs the bots with (dex-amqp on the same RabbitMQ). Ctrl-C is a
SIGINT to the whole process group, as a terminal sends it (the supervisor and
every worker receive it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.bots.support import ROOT, ledger, start_feed, stop, wait_until
from traders.bots.cli import main
from transports.amqp.local import LocalAmqpServer
from transports.amqp.settings import NAME_ENV, URL_ENV

STATUS = re.compile(r"^dex-bots: (\d)/2 workers, (\d+)/4 partitions \| updates (\d+) \| orders (\d+)", re.MULTILINE)


@pytest.fixture
def amqp_exchange(tmp_path: Path, rabbitmq_url: str) -> Iterator[LocalAmqpServer]:
    server = LocalAmqpServer(tmp_path / "exchange", ("--fsync", "interval"), broker_url=rabbitmq_url).start()
    try:
        yield server
    finally:
        server.stop()


def test_run_with_the_defaults_trades_on_dex_amqp_prints_one_status_line_a_second_and_a_summary_at_ctrl_c(
    tmp_path: Path, rabbitmq_url: str, rabbitmq_prefix: str, amqp_exchange: LocalAmqpServer
) -> None:
    db = str(tmp_path / "bots.db")
    assert main(["init", "--db", db, "--bots", "60", "--partitions", "4"]) == 0
    env = {**os.environ, URL_ENV: rabbitmq_url, NAME_ENV: amqp_exchange.exchange_name}  # as make amqp-server's defaults
    log = tmp_path / "run.log"
    run = subprocess.Popen(
        [sys.executable, "-m", "traders.bots.cli", "run", "--db", db, "--workers", "2",
         "--exchange", f"{rabbitmq_prefix}price_updates", "--queue-prefix", rabbitmq_prefix, "--max-age-ms", "30000"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    feed = None

    def read() -> str:
        return log.read_text(errors="replace")

    def orders() -> int:
        lines = STATUS.findall(read())
        return int(lines[-1][3]) if lines else 0

    try:
        wait_until(
            lambda: re.search(r"^dex-bots: 2/2 workers, 4/4 partitions", read(), re.MULTILINE) is not None,
            40,
            "every partition owned",
            detail=lambda: read()[-3000:],
        )
        feed = start_feed(tmp_path, rabbitmq_url, rabbitmq_prefix, "--interval", "0.2", "--quiet")
        wait_until(lambda: orders() > 0, 40, f"orders in the status line: {read()[-2000:]}")
        before, started = len(STATUS.findall(read())), time.monotonic()
        time.sleep(5.0)
        lines = len(STATUS.findall(read())) - before
        elapsed = time.monotonic() - started
        assert elapsed - 2 <= lines <= elapsed + 1, f"{lines} status lines in {elapsed:.1f} s"
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in a terminal
        assert run.wait(30) == 0
    finally:
        if feed is not None:
            stop(feed)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
    out = read()
    assert "Traceback" not in out and "Reconnecting" not in out, out[-3000:]
    assert "exited with" not in out, f"a worker crashed: {out[-3000:]}"
    ownership = re.findall(r"^dex-bots: partitions w0 (\S+) \| w1 (\S+)$", out, re.MULTILINE)
    assert ownership == [("0,2", "1,3")], f"partition ownership should be printed once: {ownership}"
    sent = re.search(r"^dex-bots summary: .* (\d+) orders sent, (\d+) acknowledged", out, re.MULTILINE)
    assert sent is not None and int(sent[1]) > 0 and int(sent[2]) > 0, out[-3000:]
    assert re.search(r"^dex-bots summary: bots \d+ of 60 traded", out, re.MULTILINE), out[-3000:]
    book = ledger(amqp_exchange.journal_path)
    assert book.orders > 0, "no bot order reached dex-amqp"
    assert book.doubled() == {}


def test_run_without_a_database_says_how_to_make_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--db", str(tmp_path / "none.db"), "--workers", "2"]) == 2
    assert "make bots-init" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_run_that_cannot_reach_the_broker_stops_with_a_hint_instead_of_restarting_forever(tmp_path: Path) -> None:
    db = str(tmp_path / "bots.db")
    assert main(["init", "--db", db, "--bots", "10", "--partitions", "2"]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "traders.bots.cli", "run", "--db", db, "--workers", "2", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "cannot reach the exchange over amqp at amqp://guest@127.0.0.1:1/" in out and "make amqp-server" in out
    assert "restarting it" not in out and "Traceback" not in out and "guest:guest" not in out
