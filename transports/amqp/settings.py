"""Settings of the AMQP transport: the broker URL, the names on the broker, and the bounds.

Where a broker is found (clients, the server, the registry's ``serve``):
``url`` argument, else ``$DEX_AMQP_URL``, else ``amqp://guest:guest@127.0.0.1:5672/``
(what ``scripts/rabbitmq.sh start`` runs). The registry's ``serve`` factory
starts a process-wide ``LocalRabbitMQ`` only when ``$DEX_AMQP_URL`` is unset
(``transports/amqp/local.py``).

Names on the broker (docs/amqp.md), all prefixed by the exchange's ``name``
(default ``dex``) so that several exchanges can share one broker:

* ``<name>.commands``: the durable RPC queue the server consumes (order batches
  and queries); replies go to the client's ``reply_to`` queue with its
  ``correlation_id``.
* ``<name>.cmd`` (with keys): the direct exchange bound to ``<name>.commands``,
  the only one a key's broker user may publish to (``transports/amqp/users.py``).
* ``<name>.md``: the durable topic exchange of market data; routing key
  ``<kind>.<symbol>`` (``update``; symbols with ``.`` are sent with ``.``
  replaced by ``_`` — see ``routing_symbol``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from transports.core.state_dir import default_journal

URL_ENV = "DEX_AMQP_URL"
NAME_ENV = "DEX_AMQP_NAME"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_NAME = "dex"
DEFAULT_JOURNAL = default_journal("dex-amqp")
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
PREFETCH = 256  # RPC messages the server holds unacknowledged (each is a batch of up to max_batch commands)
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0


def client_url(url: str | None = None) -> str:
    """The broker to use: ``url``, else ``$DEX_AMQP_URL``, else the default local broker."""
    return url or os.environ.get(URL_ENV) or DEFAULT_URL


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.partition(":")[0]
    return f"{scheme}://{user}@{host}"


def routing_symbol(symbol: str) -> str:
    """A symbol as one word of a topic routing key (``.`` separates words)."""
    return symbol.replace(".", "_")


def md_routing_key(kind: str, symbol: str) -> str:
    return f"{kind}.{routing_symbol(symbol)}"


@dataclass(frozen=True, slots=True)
class AmqpNames:
    """The queue and exchange names of one exchange on the broker."""

    name: str = DEFAULT_NAME

    @property
    def commands(self) -> str:
        return f"{self.name}.commands"

    @property
    def market_data(self) -> str:
        return f"{self.name}.md"

    @property
    def command_exchange(self) -> str:
        """With keys: the only exchange a key may publish to (direct, bound to ``commands``)."""
        return f"{self.name}.cmd"

    def reply_queue(self, key_id: str, session: str) -> str:
        """A client's reply queue: with keys, named by its key (the only replies it may read)."""
        return f"{self.name}.reply.{key_id}.{session}" if key_id else f"{self.name}.reply.{session}"

    def md_queue(self, key_id: str, session: str) -> str:
        return f"{self.name}.md.{key_id}.{session}" if key_id else f"{self.name}.md.{session}"


def default_names() -> AmqpNames:
    return AmqpNames(os.environ.get(NAME_ENV) or DEFAULT_NAME)
