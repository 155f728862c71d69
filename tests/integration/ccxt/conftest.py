"""The live turbo-dex servers of the ccxt tests.

``server``: the HTTP tests' in-process uvicorn server (``--auth off``: ``apiKey``
names the trader). ``keyed``: a ``turbo-dex --auth keys --keys DIR`` process,
one per test module, with HMAC keys for alice and bob and an Ed25519 key for
carol created before it starts; stopped by its PID.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.http.conftest import LiveServer, StartServer, server, start_server
from transports.core.keys import Credential, create_key
from transports.http.local import LocalServer


@dataclass
class KeyedExchange:
    url: str
    alice: Credential  # HMAC-SHA256
    bob: Credential  # HMAC-SHA256
    carol: Credential  # Ed25519
    keys: Path


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedExchange]:
    workdir = tmp_path_factory.mktemp("turbo-dex-ccxt-keys")
    keys = workdir / "keys"
    alice = create_key(keys, "alice", scheme="hmac")
    bob = create_key(keys, "bob", scheme="hmac")
    carol = create_key(keys, "carol")
    process = LocalServer(workdir, ("--auth", "keys", "--keys", str(keys), "--log-level", "warning")).start()
    try:
        yield KeyedExchange(process.url, alice, bob, carol, keys)
    finally:
        assert process.stop() == 0, process.log_tail()


__all__ = ["KeyedExchange", "LiveServer", "StartServer", "keyed", "server", "start_server"]
