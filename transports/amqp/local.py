"""Brokers and servers of ours for the registry, benchmarks and tests: a shared broker, a ``dex-amqp`` subprocess.

* ``shared_broker_url()``: where the registry's ``serve('amqp', gateway)`` finds
  a broker (it has no access to pytest fixtures): ``$DEX_AMQP_URL`` when set
  (the ``rabbitmq_broker`` session fixture sets it), else a ``LocalRabbitMQ``
  started once per process, on first use, and stopped by ``atexit`` when the
  process ends (``shared_broker()``; the session fixture uses the same one, so
  a test run starts one broker, whichever asks first). Starting takes ~7 s; every later call returns at once.
* ``local_broker()``: one ``LocalRabbitMQ`` for as long as the context lasts,
  named in ``$DEX_AMQP_URL`` (what ``dex-bench`` starts once for every run).
* ``LocalAmqpServer``: one ``dex-amqp`` subprocess on a given broker with a
  unique queue/exchange prefix, journaling into its workdir; ready once its
  start-up line appears; stopped by its PID (SIGTERM: a clean shutdown).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.settings import URL_ENV, client_url
from transports.core.local_server import LocalServerProcess, ServerStartError

_lock = threading.Lock()
_shared: LocalRabbitMQ | None = None


def shared_broker() -> LocalRabbitMQ:
    """This process's own ``LocalRabbitMQ``, started on first use and stopped when the process exits."""
    global _shared  # noqa: PLW0603 - one broker per process, on first use
    with _lock:
        if _shared is None:
            broker = LocalRabbitMQ()
            broker.start()
            atexit.register(broker.close)
            _shared = broker
        return _shared


def _start_shared() -> str:
    return shared_broker().url


def shared_broker_sync() -> str:
    """``$DEX_AMQP_URL``, else the URL of this process's own ``LocalRabbitMQ`` (started on first use)."""
    return os.environ.get(URL_ENV) or _start_shared()


async def shared_broker_url() -> str:
    """``shared_broker_sync`` without blocking the event loop while a broker starts."""
    url = os.environ.get(URL_ENV)
    if url:
        return url
    return await asyncio.get_running_loop().run_in_executor(None, _start_shared)


@contextlib.contextmanager
def local_broker() -> Iterator[str]:
    """One RabbitMQ node, named to ``dex-amqp`` and the clients by ``$DEX_AMQP_URL`` while it runs; stopped by PID."""
    with LocalRabbitMQ() as broker:
        previous = os.environ.get(URL_ENV)
        os.environ[URL_ENV] = broker.url
        try:
            yield broker.url
        finally:
            if previous is None:
                os.environ.pop(URL_ENV, None)
            else:
                os.environ[URL_ENV] = previous


_LISTENING = re.compile(r"dex-amqp listening on (\S+)")


class LocalAmqpServer(LocalServerProcess):
    """``dex-amqp`` in a subprocess on the broker ``broker_url`` (default: ``$DEX_AMQP_URL``), under a unique name."""

    name = "dex-amqp"

    def __init__(
        self, workdir: str | Path, extra_args: tuple[str, ...] = (), host: str = "127.0.0.1", broker_url: str | None = None
    ) -> None:
        super().__init__(workdir, extra_args, host)
        self.broker_url = client_url(broker_url).partition("#")[0]
        self.exchange_name = f"dex-{secrets.token_hex(4)}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "transports.amqp.server",
            *("--url", self.broker_url, "--name", self.exchange_name, "--journal", str(self.journal_path), "--log-level", "warning"),
            *self.extra_args,
        ]

    def ready(self, output: str) -> bool:
        if _LISTENING.search(output):
            self.url = f"{self.broker_url}#{self.exchange_name}"  # the line hides the password; clients need it
            return True
        return False


__all__ = ["LocalAmqpServer", "ServerStartError", "local_broker", "shared_broker", "shared_broker_sync", "shared_broker_url"]
