"""Where the harness sends: one ``TraderClient`` per trader, for any registered transport.

``inproc`` starts a ``Gateway`` in this process (the default instruments, no
journal) and serves it through the registry's in-process entry. Every other
transport is a server at a URL; ``transports.registry.make_client`` builds
its clients by name, so a new transport needs nothing here. With
``credentials`` (``dex-trader --key``/``--keys``, ``traders.harness.keys``)
each client proves its trader's key with the transport's authenticating
client instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from traders.harness.keys import Credentials
from transports.core.client import TraderClient
from transports.core.gateway import Gateway, GatewayConfig
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import TRANSPORTS, make_client, serve

ClientFactory = Callable[[str], TraderClient]


class UnknownTransport(ValueError):
    """A ``--transport`` name no registered transport answers to."""


def transport_names() -> list[str]:
    return sorted(TRANSPORTS)


def _check_server_transport(transport: str) -> None:
    if transport not in TRANSPORTS or transport == "inproc":
        known = ", ".join(n for n in transport_names() if n != "inproc")
        raise UnknownTransport(f"unknown server transport {transport!r}; known: {known}")


def remote_client(transport: str, trader: str, url: str | None) -> TraderClient:
    """A client for ``trader`` on the ``transport`` server at ``url`` (not yet connected)."""
    _check_server_transport(transport)
    return make_client(transport, trader, url)


@asynccontextmanager
async def open_exchange(transport: str, url: str | None, credentials: Credentials | None = None) -> AsyncIterator[ClientFactory]:
    """Yield a factory of clients; for ``inproc``, the gateway lives as long as the context."""
    if transport != "inproc":
        _check_server_transport(transport)  # an unknown name fails here, before any process starts
        if credentials is not None:
            yield lambda trader: credentials.client(trader, url)
            return
        yield lambda trader: remote_client(transport, trader, url)
        return
    gateway = Gateway(config=GatewayConfig(journal=None))
    await gateway.start(DEFAULT_INSTRUMENTS)
    try:
        async with serve("inproc", gateway) as local_url:
            yield lambda trader: make_client("inproc", trader, local_url)
    finally:
        await gateway.stop()
