"""Brokers and servers of ours for the registry, benchmarks and tests: a shared broker, a ``dex-amqp`` subprocess.

* ``shared_broker_url()``: where the registry's ``serve('amqp', gateway)`` finds
  a broker (it has no access to pytest fixtures): ``$DEX_AMQP_URL`` when set
  (the ``rabbitmq_broker`` session fixture sets it), else a ``LocalRabbitMQ``
  started once per process, on first use, and stopped by ``atexit`` when the
  process ends (``shared_broker()``; the session fixture uses the same one, so
  a test run starts one broker, whichever asks first). Starting takes ~7 s; every later call returns at once.
* ``local_broker()``: one ``LocalRabbitMQ`` for as long as the context lasts,
  named in ``$DEX_AMQP_URL`` (what ``dex-bench`` starts once for every run).
* ``auth_broker()``: this process's RabbitMQ for exchanges with keys: no
  guest, users from keyrings (``transports/amqp/users.py``); started on first
  use, stopped by ``atexit``. ``serve_with_users`` serves a gateway on it in a
  vhost of its own, with the keyring's users kept in step (revocation deletes
  the broker user), and removes the vhost and its users afterwards.
* ``LocalAmqpServer``: one ``dex-amqp`` subprocess on a given broker with a
  unique queue/exchange prefix, journaling into its workdir; ready once its
  start-up line appears; stopped by its PID (SIGTERM: a clean shutdown).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import re
import secrets
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from transports.amqp.broker import HOST, LocalRabbitMQ
from transports.amqp.settings import URL_ENV, client_url
from transports.amqp.users import BrokerUsers, delete_guest
from transports.core.keys import RELOAD_CHECK_S
from transports.core.local_server import LocalServerProcess, ServerStartError

if TYPE_CHECKING:
    from transports.amqp.server import AmqpServerSettings
    from transports.core.auth import Authenticator
    from transports.core.gateway import Gateway

_lock = threading.Lock()
_shared: LocalRabbitMQ | None = None
_auth: LocalRabbitMQ | None = None
log = logging.getLogger("dex-amqp")


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


def auth_broker() -> LocalRabbitMQ:
    """This process's RabbitMQ for exchanges with keys (no guest), started on first use and stopped when the process exits."""
    global _auth  # noqa: PLW0603 - one broker per process, on first use
    with _lock:
        if _auth is None:
            broker = LocalRabbitMQ()
            broker.start()
            atexit.register(broker.close)
            try:
                delete_guest(broker.ctl)
            except BaseException:
                broker.close()
                raise
            _auth = broker
        return _auth


async def keep_users(users: BrokerUsers) -> None:
    """Sync ``users`` whenever the keyring changes (checked every ``RELOAD_CHECK_S``, rabbitmqctl in a thread)."""
    while True:
        await asyncio.sleep(RELOAD_CHECK_S)
        try:
            if await asyncio.to_thread(users.sync):
                log.info("RabbitMQ users of vhost %s synced from the keyring", users.vhost)
        except Exception:  # the server still refuses a revoked key per request; the next change tries again
            log.exception("cannot sync the RabbitMQ users of vhost %s", users.vhost)


@contextlib.asynccontextmanager
async def serve_with_users(
    gateway: Gateway,
    authenticator: Authenticator,
    broker: LocalRabbitMQ | None = None,
    settings: AmqpServerSettings | None = None,
    *,
    vhost: str | None = None,
    remove_after: bool = True,
) -> AsyncIterator[str]:
    """Serve ``gateway`` with keys on ``broker`` (default ``auth_broker()``); yields the URL without a login.

    The vhost is ``vhost``, else a fresh one; with ``remove_after`` it and its
    users are deleted afterwards (a standalone server keeps them: its durable
    queue holds the requests not yet acknowledged).
    """
    import dataclasses

    from transports.amqp.server import AmqpServerSettings, serve_amqp

    private = broker is None  # this process's own broker: it ends with the process, its users with it
    if broker is None:
        broker = await asyncio.get_running_loop().run_in_executor(None, auth_broker)
    base = settings or AmqpServerSettings(journal=None)
    name = base.name or "dex"
    vhost = vhost or f"dex-{secrets.token_hex(4)}"
    users = BrokerUsers(authenticator.keyring, broker.ctl, broker.workdir, vhost, name)
    await asyncio.to_thread(users.sync)
    watcher = asyncio.get_running_loop().create_task(keep_users(users))
    try:
        login = users.exchange.url(HOST, broker.state.port, vhost)
        settings = dataclasses.replace(base, url=login, name=name, auth=authenticator)
        async with serve_amqp(gateway, settings):
            yield f"amqp://{HOST}:{broker.state.port}/{vhost}#{name}"
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if remove_after:
            await asyncio.to_thread(users.remove, not private)


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


__all__ = [
    "LocalAmqpServer",
    "ServerStartError",
    "auth_broker",
    "local_broker",
    "serve_with_users",
    "shared_broker",
    "shared_broker_sync",
    "shared_broker_url",
]
