"""Console and JSON logs carry no terminal escape codes (uvicorn's ``color_message`` extra included)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transports.core.local_server import terminate
from transports.core.logs import configure_logging

TURBO_DEX = Path(sys.executable).with_name("turbo-dex")


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_coloured_extra_and_escape_codes_never_reach_a_line(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("info", fmt, stream=out)  # type: ignore[arg-type]
    try:
        # uvicorn's own loggers may be configured not to propagate by an earlier test's server: same record, our name
        logging.getLogger("dex.test.uvicorn").info(
            "Started server process [%d]", 42, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
        )
        logging.getLogger("dex.test").warning("painted", extra={"note": "\x1b[31mred\x1b[0m"})
        lines = out.getvalue().splitlines()
        assert len(lines) == 2 and not any("\x1b" in line or "color_message" in line for line in lines)
        assert "Started server process [42]" in lines[0] and "red" in lines[1]
        if fmt == "json":
            assert json.loads(lines[1])["note"] == "red"
    finally:
        configure_logging("warning", "console")


def test_turbo_dex_console_log_is_plain_text(tmp_path: Path) -> None:
    err = tmp_path / "stderr.log"
    with (tmp_path / "stdout.log").open("wb") as out, err.open("wb") as errors:
        process = subprocess.Popen([str(TURBO_DEX), "--port", "0", "--no-journal"], stdout=out, stderr=errors)
    try:
        deadline = time.monotonic() + 20
        while "listening on" not in (tmp_path / "stdout.log").read_text() and time.monotonic() < deadline:
            assert process.poll() is None, err.read_text()
            time.sleep(0.05)
    finally:
        assert terminate(process) == 0
    text = err.read_text()
    assert "Started server process" in text and "Finished server process" in text
    assert "color_message" not in text and "\x1b" not in text
