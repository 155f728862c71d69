"""NATS names and defaults: the subject layout, stream names, the server URL rules.

The subject layout (docs/nats.md) under one prefix (default ``dex``)::

    dex.lean                     request/reply: a lean OrderBatch -> an OutcomeBatch (header Dex-Trader)
    dex.cmd.<SYMBOL>             request/reply: a CommandBatch -> a ReplyBatch (header Dex-Trader)
    dex.q.<kind>                 request/reply queries: book, order, instruments, stats, snapshot, ping
    dex.md.<SYMBOL>              market data: MarketDataMessage (MarketUpdate with md_seq, or Gap)
    dex.stats                    the server's counters (Stats), published every second
    dex.nodes                    node announcements / heartbeats (JSON, with a TTL)
    dex.node.<NAME>.state        request/reply: a node's replica state (JSON: applied seq, state hash)
    dex.orders.<SYMBOL>          JetStream stream DEX_ORDERS: durable order input (Nats-Msg-Id)
    dex.results.<TRADER>         JetStream stream DEX_RESULTS: one result per input, in input order

With keys (``--auth keys``), the request subjects name the key, which the broker
checks (``transports/nats/users.py``): ``dex.cmd.<KEY>.<SYMBOL>``,
``dex.lean.<KEY>``, ``dex.q.<KEY>.<kind>``; replies to ``_INBOX.<KEY>.>``.

Invariant: a symbol or trader becomes one subject token (``token``); the
payload always carries the real name, so the token is a routing hint only.
"""

from __future__ import annotations

import os
import re
import socket

DEFAULT_URL = "nats://127.0.0.1:4222"
URL_ENV = "DEX_NATS_URL"
DEFAULT_PREFIX = "dex"
TRADER_HEADER = "Dex-Trader"
ERROR_HEADER = "Dex-Error"
INPUT_SEQ_HEADER = "Dex-Input-Seq"
LEADER_HEADER = "Dex-Leader"
MSG_ID_HEADER = "Nats-Msg-Id"
EXPECTED_LAST_SEQ_HEADER = "Nats-Expected-Last-Sequence"

ORDERS_STREAM = "DEX_ORDERS"
RESULTS_STREAM = "DEX_RESULTS"
LEASE_BUCKET = "dex_leader"
LEASE_KEY = "leader"

# Subscriptions are raised well above nats-py's defaults on purpose: a burst of
# batches must queue, not turn into slow-consumer drops (which are counted anyway).
PENDING_MSGS_LIMIT = 1_000_000
PENDING_BYTES_LIMIT = 1024 * 1024 * 1024
# Commands per request: a reply must fit the server's max_payload (1 MB by default).
MAX_COMMANDS_PER_REQUEST = 2000

_NOT_TOKEN = re.compile(r"[\s.*>]")


def token(name: str) -> str:
    """``name`` as one subject token (dots, spaces and wildcards become ``_``)."""
    return _NOT_TOKEN.sub("_", name) or "_"


def client_url(url: str | None) -> str:
    """The server a client uses: ``url``, else ``$DEX_NATS_URL``, else nats://127.0.0.1:4222."""
    return url or os.environ.get(URL_ENV) or DEFAULT_URL


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Subjects:
    """Every subject of one deployment, under ``prefix``."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self.commands_all = f"{prefix}.cmd.>"
        self.lean = f"{prefix}.lean"
        self.lean_keyed = f"{prefix}.lean.*"
        self.queries_all = f"{prefix}.q.*"
        self.queries_keyed = f"{prefix}.q.*.*"
        self.stats = f"{prefix}.stats"
        self.nodes = f"{prefix}.nodes"
        self.orders_all = f"{prefix}.orders.>"
        self.results_all = f"{prefix}.results.>"

    def command(self, symbol: str) -> str:
        return f"{self.prefix}.cmd.{token(symbol)}"

    def query(self, kind: str) -> str:
        return f"{self.prefix}.q.{kind}"

    # With keys (docs/security.md, "NATS"): every request names its key in its subject, where the broker checks it.
    def command_of(self, key_id: str, symbol: str) -> str:
        return f"{self.prefix}.cmd.{key_id}.{symbol if symbol == '>' else token(symbol)}"

    def lean_of(self, key_id: str) -> str:
        return f"{self.prefix}.lean.{key_id}"

    def query_of(self, key_id: str, kind: str) -> str:
        return f"{self.prefix}.q.{key_id}.{kind}"

    def key_of(self, subject: str, kind: str) -> str:
        """The key id a keyed request subject names (``kind``: "cmd", "lean" or "q"); "" if it names none."""
        head = f"{self.prefix}.{kind}."
        return subject[len(head) :].partition(".")[0] if subject.startswith(head) else ""

    def market_data(self, symbol: str) -> str:
        return f"{self.prefix}.md.{token(symbol)}"

    def node_state(self, name: str) -> str:
        return f"{self.prefix}.node.{token(name)}.state"

    def orders(self, symbol: str) -> str:
        return f"{self.prefix}.orders.{token(symbol)}"

    def results(self, trader: str) -> str:
        return f"{self.prefix}.results.{token(trader)}"
