"""The old tools' single-dash spellings work in every command; what has no meaning yet is refused with one line."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from traders.harness import cli as dex_trader
from transports.amqp.server import parse_args as dex_amqp
from transports.core import legacy_flags
from transports.core.legacy_flags import SHARDS_REASON, WORKERS_REASON, modern_argv
from transports.grpc.server import parse_args as dex_grpc
from transports.http.server import parse_args as turbo_dex
from transports.launcher import _parser as launcher_parser
from transports.nats.auto import parse_args as nats_auto
from transports.nats.server import parse_args as dex_nats
from transports.zmq.server import parse_args as dex_zmq

BIN = Path(sys.executable).parent


def small_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--port", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--name")
    return parser


def test_known_old_spellings_become_double_dash_and_nothing_else_is_touched() -> None:
    argv = ["-port", "8080", "-rate=5", "--name", "-1", "-x", "--", "-port"]
    assert modern_argv(small_parser(), argv) == ["--port", "8080", "--rate=5", "--name", "-1", "-x", "--", "-port"]


def test_an_old_spelling_the_command_lacks_reaches_argparse_as_typed() -> None:
    assert modern_argv(small_parser(), ["-server", "x"]) == ["-server", "x"]


@pytest.mark.parametrize("flag", ["-shards", "--shards", "-shards=80"])
def test_shards_are_refused_in_one_line_saying_why(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        legacy_flags.parse_args(small_parser(), ["-port", "1", flag, "80"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == f"tool: {flag.partition('=')[0]} is not supported: {SHARDS_REASON}\n"


def test_every_server_takes_port_and_buffer_with_one_dash() -> None:
    assert (turbo_dex(["-port", "9001", "-buffer", "500", "--no-journal"]).port, turbo_dex(["-buffer", "500"]).buffer) == (9001, 500)
    assert (dex_grpc(["-port", "50099"]).port, dex_grpc(["-buffer", "7"]).buffer) == (50099, 7)
    assert (dex_zmq(["-port", "5599"]).port, dex_zmq(["-buffer", "7"]).buffer) == (5599, 7)
    assert dex_amqp(["-buffer", "7"]).buffer == 7
    nats = dex_nats(["-buffer", "7", "-nats", "nats://127.0.0.1:4999"])
    assert (nats.buffer, nats.url) == (7, "nats://127.0.0.1:4999")


def test_nats_auto_takes_the_old_spellings() -> None:
    settings = nats_auto(["-mode", "server", "-traders", "5", "-rate", "10", "-batch", "3", "-duration", "30s", "-nats", "nats://h:1"])
    assert (settings.mode, settings.traders, settings.rate, settings.batch, settings.duration, settings.nats) == (
        "server",
        5,
        10.0,
        3,
        30.0,
        "nats://h:1",
    )


def test_dex_trader_takes_the_old_spellings() -> None:
    args = legacy_flags.parse_args(
        dex_trader.build_parser(), ["-server", "http://h:1", "-workers", "20", "-batch", "1000", "-duration", "60s", "-rate", "5"]
    )
    config = dex_trader.config_from_args(args)
    assert (config.server, config.workers, config.batch, config.duration_s, config.rate) == ("http://h:1", 20, 1000, 60.0, 5.0)
    assert legacy_flags.parse_args(dex_trader.build_parser(), ["-traders", "100"]).workers == 100


def test_dex_node_takes_the_old_buffer_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    from transports.dht.node import main as dex_node

    with pytest.raises(SystemExit):
        dex_node(["-buffer", "0"])
    assert "--buffer must be at least 1" in capsys.readouterr().err  # -buffer reached the --buffer check


def test_a_server_refuses_workers_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        dex_zmq(["-workers", "4"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"dex-zmq: -workers is not supported: {WORKERS_REASON}\n"


def test_the_old_turbo_dex_command_line_means_shards_and_fronts() -> None:
    # -workers 40 -shards 80 was the system this replaces; here they are --fronts and --shards (docs/shards.md).
    parser = launcher_parser()
    args = parser.parse_args(modern_argv(parser, ["-port", "8080", "-workers", "40", "-shards", "80"]))
    assert (args.port, args.fronts, args.shards) == (8080, 40, 80)
    done = subprocess.run(
        [str(BIN / "turbo-dex"), "-port", "8080", "-shards", "600"], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == "turbo-dex: error: 1 to 512 shards, got 600"
    done = subprocess.run(
        [str(BIN / "turbo-dex"), "-port", "8080", "-workers", "4"], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "--fronts needs --shards" in done.stderr
