"""The in-process "transport"'s descriptor: no wire, the gateway in the caller's own process (the ceiling).

Its "URL" names a gateway served in this process by ``serve``; a client
built from any other URL is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from transports.core.client import TraderClient
from transports.core.descriptor import TransportDescriptor
from transports.core.gateway import Gateway

_GATEWAYS: dict[str, Gateway] = {}


def _client(trader: str, url: str | None) -> TraderClient:
    from transports.inproc.client import InProcClient

    gateway = _GATEWAYS.get(url or "")
    if gateway is None:
        raise ValueError(f"no in-process gateway at {url!r}: use the URL that serve('inproc', gateway) yields")
    return InProcClient(gateway, trader)


@contextlib.asynccontextmanager
async def _serve(gateway: Gateway) -> AsyncIterator[str]:
    url = f"inproc://{id(gateway):x}"
    _GATEWAYS[url] = gateway
    try:
        yield url
    finally:
        _GATEWAYS.pop(url, None)


DESCRIPTOR = TransportDescriptor(
    name="inproc",
    title="in-process",
    summary="No wire: the harness and the gateway in one process, the ceiling every wire is measured against.",
    client=_client,
    serve=_serve,
    acknowledged_after="nothing: no wire and no journal (the ceiling)",
    zero_configuration="-",
    operational_parts="one process (library use)",
)
