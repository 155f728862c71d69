"""Server state in one place, one name per server; ``make clean-state`` removes it; git ignores it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from transports.amqp.server import parse_args as dex_amqp
from transports.core.local_server import terminate
from transports.core.state_dir import STATE_DIR_ENV
from transports.grpc.server import parse_args as dex_grpc
from transports.http.server import parse_args as turbo_dex
from transports.nats.server import parse_args as dex_nats
from transports.zmq.server import parse_args as dex_zmq

REPO = Path(__file__).resolve().parents[2]
Parse = Callable[[list[str]], Any]
SERVERS: dict[str, Parse] = {"turbo-dex": turbo_dex, "dex-grpc": dex_grpc, "dex-zmq": dex_zmq, "dex-amqp": dex_amqp, "dex-nats": dex_nats}


@pytest.fixture(autouse=True)
def no_state_dir_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_every_servers_default_journal_is_var_slash_its_name(name: str) -> None:
    assert SERVERS[name]([]).journal == f"var/{name}.journal"


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_state_dir_moves_every_default_and_journal_still_wins(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parse = SERVERS[name]
    assert parse(["--state-dir", "/srv/dex"]).journal == f"/srv/dex/{name}.journal"
    monkeypatch.setenv(STATE_DIR_ENV, "/tmp/dex-state")
    assert parse([]).journal == f"/tmp/dex-state/{name}.journal"
    assert parse(["--journal", "/j/x.log", "--state-dir", "/srv/dex"]).journal == "/j/x.log"
    assert parse(["--no-journal"]).journal is None


def test_turbo_dex_writes_its_journal_under_the_state_dir(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("turbo-dex")), "--port", "0", "--state-dir", str(tmp_path / "state")],
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 20
        while "listening on" not in out.read_text() and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.05)
    finally:
        assert terminate(process) == 0
    assert re.search(rf"journal {re.escape(str(tmp_path))}/state/turbo-dex\.journal \(", out.read_text())
    assert (tmp_path / "state" / "turbo-dex.journal").exists()


def make(target: str, where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), target], cwd=where, check=False, capture_output=True, text=True)


def test_make_clean_state_removes_var_and_data(tmp_path: Path) -> None:
    (tmp_path / "var" / "dht").mkdir(parents=True)
    (tmp_path / "var" / "turbo-dex.journal").write_bytes(b"x" * 10)
    (tmp_path / "var" / "dht" / "raft-127.0.0.1-7001.journal").write_bytes(b"x")
    (tmp_path / "data" / "nats-auto").mkdir(parents=True)
    (tmp_path / "keep.txt").write_text("mine")
    done = make("clean-state", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "removing var/" in done.stdout and "removing data/" in done.stdout
    assert not (tmp_path / "var").exists() and not (tmp_path / "data").exists() and (tmp_path / "keep.txt").exists()
    again = make("clean-state", tmp_path)
    assert again.returncode == 0 and again.stdout == ""


def test_git_ignores_the_state_directories() -> None:
    done = subprocess.run(
        ["git", "check-ignore", "var/turbo-dex.journal", "data/nats-auto/x"], cwd=REPO, check=False, capture_output=True, text=True
    )
    assert done.stdout.split() == ["var/turbo-dex.journal", "data/nats-auto/x"]
