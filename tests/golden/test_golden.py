"""Golden streams: commands in, the exact events out (docs/json-format.md).

Each ``NAME.commands.jsonl`` is replayed and must produce ``NAME.events.jsonl``
byte for byte. The expected files were reviewed by hand when written; to
regenerate after an intended change, run with ``DEX_UPDATE_GOLDEN=1`` and
review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from transports.replay import replay_lines

HERE = Path(__file__).parent
STREAMS = sorted(p.name.removesuffix(".commands.jsonl") for p in HERE.glob("*.commands.jsonl"))


@pytest.mark.parametrize("name", STREAMS)
def test_replay_matches_golden_events(name: str) -> None:
    commands = (HERE / f"{name}.commands.jsonl").read_text().splitlines()
    produced = b"".join(line + b"\n" for line in replay_lines(commands))
    expected_path = HERE / f"{name}.events.jsonl"
    if os.environ.get("DEX_UPDATE_GOLDEN") == "1":
        expected_path.write_bytes(produced)
    assert produced.decode() == expected_path.read_text()


def test_golden_streams_exist() -> None:
    assert {"basic", "controls"} <= set(STREAMS)


def test_dex_engine_cli_replays_a_file_and_reports_the_state_hash() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "transports.replay", "replay", str(HERE / "basic.commands.jsonl"), "--state-hash"],
        capture_output=True,
        check=True,
    )
    assert result.stdout.decode() == (HERE / "basic.events.jsonl").read_text()
    assert result.stderr.decode().startswith("state_hash ")
    # Deterministic: a second run gives the same hash.
    again = subprocess.run(
        [sys.executable, "-m", "transports.replay", "replay", str(HERE / "basic.commands.jsonl"), "--state-hash"],
        capture_output=True,
        check=True,
    )
    assert again.stderr == result.stderr


def test_dex_engine_cli_reads_stdin() -> None:
    commands = (HERE / "controls.commands.jsonl").read_bytes()
    result = subprocess.run([sys.executable, "-m", "transports.replay", "replay", "-"], input=commands, capture_output=True, check=True)
    assert result.stdout.decode() == (HERE / "controls.events.jsonl").read_text()


def test_dex_engine_cli_missing_file_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "transports.replay", "replay", "/nonexistent/commands.jsonl"], capture_output=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.decode().strip() == "dex-engine: cannot read /nonexistent/commands.jsonl: No such file or directory"
