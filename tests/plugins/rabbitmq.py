"""Session fixtures for RabbitMQ: a real broker started by our own code (no systemd), stopped by PID.

Fixtures (loaded for every test folder by ``tests/conftest.py``):

* ``rabbitmq_broker`` (session): a ``transports.amqp.broker.LocalRabbitMQ``
  started ONCE per test process (~7 s) on free ports, bound to 127.0.0.1, in a
  temporary directory; stopped by PID when the test process exits (it is the
  process-wide broker the registry's ``serve("amqp", ...)`` uses too). While it runs,
  ``DEX_AMQP_URL`` is set to its URL, so the AMQP transport's registry
  ``serve``/client factories and any subprocess started by a test find it.
  It has ``url``, ``pid``, ``ctl(*args)`` (rabbitmqctl), ``restart()``,
  ``kill()``, ``status()``. Do not restart or kill it (other tests share it):
  use ``private_rabbitmq`` for that.
* ``rabbitmq_url`` (session): ``amqp://guest:guest@127.0.0.1:<port>/`` of
  ``rabbitmq_broker``. Use it with aio-pika:
  ``await aio_pika.connect_robust(rabbitmq_url)``. Tests share the broker:
  name queues/exchanges uniquely (e.g. with ``rabbitmq_prefix``), or delete them.
* ``rabbitmq_prefix`` (function): a unique name prefix (``t<hex>-``) for the
  queues and exchanges of one test.
* ``private_rabbitmq`` (function): a broker of the test's own (another ~7 s),
  free to ``restart()`` (same node, ports and data: durable queues and
  persistent messages survive) or ``kill()`` (SIGKILL: a crash). Stopped after
  the test. For fault tests.

A missing RabbitMQ is an error, never a skip (``make setup`` installs it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.local import shared_broker
from transports.amqp.settings import URL_ENV


@pytest.fixture(scope="session")
def rabbitmq_broker() -> Iterator[LocalRabbitMQ]:
    # The process-wide broker of transports.amqp.local: the registry's serve("amqp", ...) (the contract
    # suite) uses the same one, so a test run starts a single broker. It is stopped when pytest exits.
    broker = shared_broker()
    previous = os.environ.get(URL_ENV)
    os.environ[URL_ENV] = broker.url
    try:
        yield broker
    finally:
        if previous is None:
            os.environ.pop(URL_ENV, None)
        else:
            os.environ[URL_ENV] = previous


@pytest.fixture(scope="session")
def rabbitmq_url(rabbitmq_broker: LocalRabbitMQ) -> str:
    return rabbitmq_broker.url


@pytest.fixture
def rabbitmq_prefix() -> str:
    return f"t{secrets.token_hex(4)}-"


@pytest.fixture
def private_rabbitmq(tmp_path: Path) -> Iterator[LocalRabbitMQ]:
    broker = LocalRabbitMQ(tmp_path / "rabbitmq")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
