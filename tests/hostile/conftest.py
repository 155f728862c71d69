"""Fixtures of the hostile-input suite: one server process per wire, and the report.

``wire_server(name)`` starts the wire's server (``venue.py``) and its steady
client for the module that asks for it, and stops both by PID afterwards.
NATS and RabbitMQ come from the session's broker fixtures (tests/plugins):
a missing broker fails the suite, it is never skipped.

With ``$HOSTILE_REPORT`` naming a file, the session writes what every case
measured there (``make bench-hostile`` writes reports/hostile.json).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.support import REPORT_ENV, RESULTS, Wire, write_report


def started(wire: str, workdir: Path, env: dict[str, str] | None = None) -> Iterator[Wire]:
    server = Wire(wire, workdir, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(REPORT_ENV)
    if path and RESULTS:
        write_report(Path(path))
