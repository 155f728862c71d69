"""Options a user types: durations, and combinations that cannot run."""

from __future__ import annotations

import pytest

from traders.harness.cli import build_parser, config_from_args
from traders.harness.config import ConfigError, HarnessConfig, parse_duration
from transports.core import legacy_flags


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m", 60.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        ("2h", 7200.0),
        ("250us", 0.00025),
        ("3", 3.0),
        ("0.25", 0.25),
        (" 60s ", 60.0),
    ],
)
def test_durations_in_go_style(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "ten seconds", "-5s", "5s10", "1m-3s", "nan", "inf"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_bad_duration_on_the_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--duration", "soon"])
    assert exit_info.value.code == 2
    assert "bad duration" in capsys.readouterr().err


def test_the_old_single_dash_flags_still_work(monkeypatch):
    monkeypatch.delenv("DEX_SERVER", raising=False)
    old = ["-server", "http://10.0.0.2:8080", "-workers", "20", "-batch", "2000", "-duration", "60s"]
    args = legacy_flags.parse_args(build_parser(), old)  # as main() parses: one helper for every command
    config = config_from_args(args)
    assert (config.server, config.workers, config.batch, config.duration_s) == ("http://10.0.0.2:8080", 20, 2000, 60.0)


def test_without_server_each_transport_uses_its_own_default_and_variable(monkeypatch):
    from transports.registry import make_client

    monkeypatch.setenv("DEX_SERVER", "http://dex-server.local:8080")
    assert config_from_args(build_parser().parse_args([])).server is None
    assert config_from_args(build_parser().parse_args(["--server", "http://other:9000"])).server == "http://other:9000"
    # None reaches the client, which reads its own variable (DEX_SERVER for HTTP, DEX_GRPC_SERVER for gRPC, ...).
    from transports.http.client import HttpClient

    client = make_client("http", "t", None)
    assert isinstance(client, HttpClient) and client.url == "http://dex-server.local:8080"


def test_inproc_runs_in_one_process_only():
    with pytest.raises(ConfigError, match="--procs must be 1"):
        HarnessConfig(transport="inproc", procs=2)


def test_inproc_with_procs_exits_2_with_one_line(capsys):
    from traders.harness.cli import main

    assert main(["--transport", "inproc", "--procs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--procs must be 1" in err
    assert "Traceback" not in err


def test_open_loop_schedule_spreads_the_rate_over_every_trader():
    config = HarnessConfig(transport="http", workers=4, procs=2, batch=10, rate=1000)
    # 8 traders x 10 commands per batch at 1,000/s in total: each trader sends a batch every 80 ms.
    assert config.batch_interval_s == pytest.approx(0.08)
    assert HarnessConfig(rate=0).batch_interval_s == 0.0


def test_config_survives_the_trip_to_a_spawned_process():
    config = HarnessConfig(transport="http", workers=3, procs=2, symbols=("BTC-USD",), rate=500.0)
    assert HarnessConfig.from_dict(config.to_dict()) == config
