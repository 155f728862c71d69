"""``TransportDescriptor``: everything the rest of the project needs to know about one transport, in one object.

Each ``transports/<name>/descriptor.py`` defines ``DESCRIPTOR``; ``transports/registry.py``
collects them from one list of module names. Everything that loops over
transports (``turbo-dex``, ``dex-trader``, ``dex-bench``, the contract suite,
the docs tables, the Makefile's extras check) reads the descriptors and lists
no transport of its own.

Invariants:

* A descriptor module imports nothing of its transport's third-party
  library at import time: every callable it names imports lazily, so
  reading the registry (or using one transport) never needs the libraries of
  the others.
* Every URL a descriptor names is loopback by default; a broker URL comes
  from its option or its environment variable, never from a guess.
* The texts (``acknowledged_after``, ``zero_configuration``,
  ``operational_parts``) are facts of the design that the transport's docs
  and fault tests check; the report's decision table prints them as given.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from engine import RejectReason
from transports.core.auth import Authenticator
from transports.core.client import TraderClient
from transports.core.gateway import Gateway
from transports.core.keys import Credential

Replies = Literal["events", "own_view"]
ClientFactory = Callable[[str, str | None], TraderClient]  # (trader, url or None for the default)
ServerFactory = Callable[[Gateway], AbstractAsyncContextManager[str]]  # serve in this loop; yields the URL clients use
# Sends bytes that are not a command over the wire; returns the reason the server answered with.
MalformedProbe = Callable[[str], Awaitable[RejectReason]]


class LocalProcess(Protocol):
    """A server of ours started as a local process (subprocesses stopped by PID when the context ends)."""

    @property
    def url(self) -> str: ...

    @property
    def pid(self) -> int: ...

    def log_tail(self, lines: int = 20) -> str: ...


# (workdir, extra server arguments) -> a context manager whose value is the running server.
LocalStarter = Callable[[Path, tuple[str, ...]], AbstractContextManager[LocalProcess]]
# Serves a gateway in turbo-dex's loop from its parsed options (the transport's own and its broker's URL).
MountServe = Callable[[Gateway, argparse.Namespace], AbstractAsyncContextManager[str]]


@dataclass(frozen=True, slots=True)
class Broker:
    """A broker a transport needs running before its server starts."""

    name: str  # for people: "nats-server", "RabbitMQ"
    option: str  # turbo-dex's option naming a running one, e.g. "--nats-url"
    env: str  # the environment variable naming a running one (servers, clients and tests read it)
    # Starts one on this machine for as long as the context lasts and names it in ``env``; yields its URL.
    start_local: Callable[[], AbstractContextManager[str]]

    @property
    def dest(self) -> str:
        """The attribute of turbo-dex's parsed options that holds ``option``."""
        return self.option.removeprefix("--").replace("-", "_")


@dataclass(frozen=True, slots=True)
class Mount:
    """How ``turbo-dex --transports`` serves its one gateway over this transport."""

    add_options: Callable[[argparse.ArgumentParser], None]  # the transport's own options (ports), never the broker URL
    serve: MountServe
    # Whether ``turbo-dex --shards N --fronts F`` may serve it from F front processes at once (docs/shards.md): the
    # mount reads ``args.front_index`` and shares its port (SO_REUSEPORT) or takes its own. A brokered wire would
    # hand every request to every front, so it says no.
    fronts: bool = False


@dataclass(frozen=True, slots=True)
class BenchDefaults:
    """What ``bench/<name>_bench.py`` and ``dex-bench`` take from the transport."""

    target_batch_per_s: float
    target_single_p99_us: float
    notes: tuple[str, ...] = ()
    # The broker is started once for the whole benchmark run (RabbitMQ); False: ``local_server`` brings its own.
    shared_broker: bool = False
    # ``bench/fanout.py``: what carries market data to a ``TraderClient.market_data`` subscriber ("ZeroMQ PUB"),
    # None: the fan-out does not measure this transport; and its p99 target at 100 subscribers (None: none set).
    market_data: str | None = None
    fanout_target_p99_us: int | None = None


@dataclass(frozen=True, slots=True)
class Authentication:
    """How a transport proves who is asking, the way its ecosystem does (docs/security.md).

    ``serve`` serves a gateway in this loop with every request authenticated by
    ``Authenticator`` (brokers it needs are set up with the keyring's users);
    ``client`` is a client that proves ``Credential``'s key. The registry's
    authentication suite (tests/auth) runs over every transport that has one.
    """

    mechanism: str  # for people and the docs table: "signed requests (Ed25519 or HMAC-SHA256)", "CURVE, ZAP", ...
    serve: Callable[[Gateway, Authenticator], AbstractAsyncContextManager[str]]
    client: Callable[[Credential, str], TraderClient]
    signed_requests: bool  # each request (or session logon) carries a timestamp and a signature: a replay is refused


@dataclass(frozen=True, slots=True)
class TransportDescriptor:
    name: str  # dex-trader --transport, the registry key
    title: str  # for people: "ZeroMQ"
    summary: str  # one sentence for the docs tables
    client: ClientFactory
    serve: ServerFactory
    acknowledged_after: str  # what a reply waits for
    zero_configuration: str
    operational_parts: str
    extra: str | None = None  # the optional-dependency extra in pyproject.toml (None: base dependencies)
    docs: str | None = None  # docs/<name>.md
    send_malformed: MalformedProbe | None = None  # None: no wire (inproc)
    console_script: str | None = None  # the standalone server, e.g. "dex-zmq"
    server_module: str | None = None  # the same as ``python -m``
    local_server: LocalStarter | None = None
    broker: Broker | None = None
    mount: Mount | None = None  # None: turbo-dex does not serve it (no wire, or a process kind of its own)
    bench: BenchDefaults | None = None
    no_fsync_to_turn_off: str | None = None  # why ``--fsync off`` means nothing here; None: it turns off a journal fsync
    echo_wire: str | None = None  # the library echo (bench/wire_ceiling.py) that bounds this wire
    # What a reply to ``submit`` holds: "events", every event of the engine for the commands (book deltas,
    # the counterparty on trades, stops triggered); "own_view", what concerns the submitter's own orders only
    # (as a FIX ExecutionReport: a trade's price, quantity and the taker's remaining; the book by query).
    replies: Replies = "events"
    auth: Authentication | None = None  # None: this transport cannot authenticate yet (docs/security.md, "Status")
