"""The authenticated workloads on brokered transports: brokers that know the bench keyring's users.

With ``auth: keys`` a NATS or RabbitMQ server refuses a broker anyone may
use (``dex-nats``/``dex-amqp --auth keys``): the broker itself decides who
may publish and read where (docs/security.md). So for those workloads:

* **keys first** (``issue_keys``): every trader an authenticated workload's
  ``dex-trader`` will act as (``Workload.auth_traders``: a fixed run id, its
  workers, the control client, the watchdogs) gets its development key of the
  workload's ``key_scheme`` in ``BENCH_KEYS`` before any broker writes its
  users, so no client connects before the broker knows it.
* **NATS** (``auth_server``): a nats-server of the point's own, its users
  (one NKEY per key, with subject permissions: ``transports/nats/users.py``)
  written from the keyring when it starts, and a ``dex-nats --auth keys`` on
  it, as ``local_exchange`` starts the unauthenticated pair; both stopped by
  PID with the point.
* **RabbitMQ** (``amqp_auth_broker``): a second RabbitMQ node, without guest,
  started once for the whole run beside the unauthenticated one (whose
  guest the other workloads use) and stopped by PID at its end; named to
  ``dex-amqp --auth keys`` by ``$DEX_RABBITMQ_DIR``. Each ``dex-amqp`` sets
  the keyring's users on a vhost of its own (``transports/amqp/users.py``).

Invariants: nothing here runs for an unauthenticated workload; a broker that
cannot start fails the authenticated points of its transport, never the
others; only processes started here are ever signalled, by PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final, cast

from bench.e2e import BenchServer
from bench.workload_files import BENCH_KEYS, ORDER_PATH_MODES, Workload

BROKER_DIR_ENV: Final = "DEX_RABBITMQ_DIR"  # where dex-amqp --auth keys finds the broker whose users it sets
BROKERED: Final = ("nats", "amqp")  # the transports whose broker must know the keyring's users


def keyed(workloads: Sequence[Workload]) -> list[Workload]:
    """The authenticated order-path workloads (the only ones that start servers with ``--auth keys``)."""
    return [w for w in workloads if w.mode in ORDER_PATH_MODES and w.auth == "keys"]


def issue_keys(workloads: Sequence[Workload], directory: str = BENCH_KEYS) -> int:
    """Create, in ``directory``, the development key of every trader of every authenticated workload; how many were new."""
    from transports.core.keys import KEYRING_FILE, Scheme, dev_credential, read_records

    known = {r.key_id for r in read_records(Path(directory) / KEYRING_FILE)}
    created = 0
    for workload in keyed(workloads):
        scheme = cast(Scheme, workload.key_scheme)
        created += sum(dev_credential(directory, trader, scheme=scheme).key_id not in known for trader in workload.auth_traders())
    return created


def needs_amqp_broker(workloads: Sequence[Workload]) -> bool:
    return any("amqp" in w.targets() for w in keyed(workloads))


@contextlib.contextmanager
def amqp_auth_broker() -> Iterator[str]:
    """A RabbitMQ node without guest for ``dex-amqp --auth keys``, named in ``$DEX_RABBITMQ_DIR`` while it runs."""
    from transports.amqp.broker import LocalRabbitMQ
    from transports.amqp.users import delete_guest

    with tempfile.TemporaryDirectory(prefix="dex-bench-rabbitmq-keys-") as tmp, LocalRabbitMQ(Path(tmp)) as broker:
        delete_guest(broker.ctl)
        broker.save()  # dex-amqp loads the node's ports and name from its broker.json
        previous = os.environ.get(BROKER_DIR_ENV)
        os.environ[BROKER_DIR_ENV] = tmp
        try:
            yield tmp
        finally:
            if previous is None:
                os.environ.pop(BROKER_DIR_ENV, None)
            else:
                os.environ[BROKER_DIR_ENV] = previous


def auth_server(transport: str, workdir: Path, server_args: tuple[str, ...]) -> AbstractContextManager[BenchServer] | None:
    """The point's server when it is NATS or RabbitMQ with ``--auth keys``; None for every other (its descriptor's starter)."""
    if "--auth" not in server_args or transport not in BROKERED:
        return None
    keys = server_args[server_args.index("--keys") + 1] if "--keys" in server_args else BENCH_KEYS
    return _nats_with_users(workdir, server_args, keys) if transport == "nats" else _amqp_with_users(workdir, server_args)


@contextlib.contextmanager
def _nats_with_users(workdir: Path, server_args: tuple[str, ...], keys: str) -> Iterator[BenchServer]:
    from transports.core.keys import Keyring
    from transports.nats.local import LocalDexNats, LocalExchange, NatsServerProcess
    from transports.nats.users import BrokerUsers

    users = BrokerUsers(Keyring(keys))  # written into the broker's config when it starts: the keys exist by then
    with NatsServerProcess(workdir / "nats", users=users) as nats, LocalDexNats(workdir, (nats.url, *server_args)) as server:
        yield LocalExchange(nats, server)


_LISTENING: Final = re.compile(r"dex-amqp listening on (\S+)")


def _amqp_with_users(workdir: Path, server_args: tuple[str, ...]) -> AbstractContextManager[BenchServer]:
    from transports.amqp.broker import LocalRabbitMQ
    from transports.amqp.local import LocalAmqpServer
    from transports.core.local_server import ServerStartError

    class KeyedAmqpServer(LocalAmqpServer):
        """``dex-amqp --auth keys``: its URL is the one it prints (its own vhost on the keyed broker, no login)."""

        def ready(self, output: str) -> bool:
            match = _LISTENING.search(output)
            if match:
                self.url = match.group(1)
            return match is not None

    broker_dir = os.environ.get(BROKER_DIR_ENV)
    if not broker_dir or not (Path(broker_dir) / "broker.json").exists():
        raise ServerStartError("no RabbitMQ with the bench keyring's users runs (dex-bench starts one when an auth workload names amqp)")
    broker_url = LocalRabbitMQ.load(broker_dir).url  # only its host matters to dex-amqp: with keys it logs in as the exchange
    return KeyedAmqpServer(workdir, (*server_args, "--broker-dir", broker_dir), broker_url=broker_url)
