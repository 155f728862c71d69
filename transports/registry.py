"""Every transport by name: how to build its client, and how to serve a gateway over it in-process.

::

    async with serve("http", gateway) as url:          # the caller starts/stops the gateway
        async with make_client("http", "alice", url) as client:
            await client.submit([...])

Adding a transport adds one entry to ``TRANSPORTS`` (and its folder); the
contract tests and the harness pick it up by name. Entries import their
transport lazily, so using one never needs the libraries of the others.
``inproc`` has no wire: its "URL" names a gateway served in this process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import MappingProxyType

from engine import RejectReason
from transports.core.client import TraderClient
from transports.core.gateway import Gateway

ClientFactory = Callable[[str, str | None], TraderClient]  # (trader, url or None for the default)
ServerFactory = Callable[[Gateway], AbstractAsyncContextManager[str]]  # yields the URL clients use
# Sends bytes that are not a command over the wire; returns the reason the server answered with.
MalformedProbe = Callable[[str], Awaitable[RejectReason]]


@dataclass(frozen=True, slots=True)
class Transport:
    name: str
    client: ClientFactory
    serve: ServerFactory
    send_malformed: MalformedProbe | None = None  # None: no wire (inproc)


# ------------------------------------------------------------------ inproc
_INPROC_GATEWAYS: dict[str, Gateway] = {}


def _inproc_client(trader: str, url: str | None) -> TraderClient:
    from transports.inproc.client import InProcClient

    gateway = _INPROC_GATEWAYS.get(url or "")
    if gateway is None:
        raise ValueError(f"no in-process gateway at {url!r}: use the URL that serve('inproc', gateway) yields")
    return InProcClient(gateway, trader)


@contextlib.asynccontextmanager
async def _inproc_serve(gateway: Gateway) -> AsyncIterator[str]:
    url = f"inproc://{id(gateway):x}"
    _INPROC_GATEWAYS[url] = gateway
    try:
        yield url
    finally:
        _INPROC_GATEWAYS.pop(url, None)


# -------------------------------------------------------------------- http
def _http_client(trader: str, url: str | None) -> TraderClient:
    from transports.http.client import HttpClient

    return HttpClient(trader, url)


def _http_serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.http.server import serve_http

    return serve_http(gateway)


# -------------------------------------------------------------------- grpc
def _grpc_client(trader: str, url: str | None) -> TraderClient:
    from transports.grpc.client import GrpcClient

    return GrpcClient(trader, url)


def _grpc_serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.grpc.server import serve_grpc

    return serve_grpc(gateway)


# --------------------------------------------------------------------- zmq
def _zmq_client(trader: str, url: str | None) -> TraderClient:
    from transports.zmq.client import ZmqClient

    return ZmqClient(trader, url)


def _zmq_serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.zmq.server import serve_zmq

    return serve_zmq(gateway)


# -------------------------------------------------------------------- amqp
# A broker is needed: serve() uses $DEX_AMQP_URL (set by the rabbitmq_broker test
# fixture), else starts one LocalRabbitMQ per process (transports/amqp/local.py).
def _amqp_client(trader: str, url: str | None) -> TraderClient:
    from transports.amqp.client import AmqpClient

    return AmqpClient(trader, url)


def _amqp_serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.amqp.server import serve_amqp

    return serve_amqp(gateway)


async def _amqp_malformed(url: str) -> RejectReason:
    from transports.amqp.probe import send_malformed

    return await send_malformed(url)


async def _http_malformed(url: str) -> RejectReason:
    from transports.http.probe import send_malformed

    return await send_malformed(url)


async def _grpc_malformed(url: str) -> RejectReason:
    from transports.grpc.probe import send_malformed

    return await send_malformed(url)


async def _zmq_malformed(url: str) -> RejectReason:
    from transports.zmq.probe import send_malformed

    return await send_malformed(url)


# -------------------------------------------------------------------- nats
def _nats_client(trader: str, url: str | None) -> TraderClient:
    from transports.nats.client import NatsClient

    return NatsClient(trader, url)


def _nats_serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    import os

    from transports.nats.server import NatsServerSettings, serve_nats
    from transports.nats.settings import URL_ENV

    # $DEX_NATS_URL names a running nats-server (the hostile suite's child servers get the session's); else a
    # private nats-server, started for the purpose and stopped by PID afterwards.
    url = os.environ.get(URL_ENV)
    return serve_nats(gateway, NatsServerSettings(url=url) if url else None)


async def _nats_malformed(url: str) -> RejectReason:
    from transports.nats.probe import send_malformed

    return await send_malformed(url)


# --------------------------------------------------------------------- dht
def _dht_client(trader: str, url: str | None) -> TraderClient:
    from transports.dht.client import DhtClient

    return DhtClient(trader, url)


def _dht_serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.dht.node import serve_dht

    return serve_dht(gateway)


async def _dht_malformed(url: str) -> RejectReason:
    from transports.dht.probe import send_malformed

    return await send_malformed(url)


TRANSPORTS: Mapping[str, Transport] = MappingProxyType(
    {
        "inproc": Transport("inproc", _inproc_client, _inproc_serve),
        "http": Transport("http", _http_client, _http_serve, _http_malformed),
        "grpc": Transport("grpc", _grpc_client, _grpc_serve, _grpc_malformed),
        "zmq": Transport("zmq", _zmq_client, _zmq_serve, _zmq_malformed),
        "amqp": Transport("amqp", _amqp_client, _amqp_serve, _amqp_malformed),
        "nats": Transport("nats", _nats_client, _nats_serve, _nats_malformed),
        "dht": Transport("dht", _dht_client, _dht_serve, _dht_malformed),
    }
)


def transport(name: str) -> Transport:
    entry = TRANSPORTS.get(name)
    if entry is None:
        raise ValueError(f"unknown transport {name!r}; known: {', '.join(TRANSPORTS)}")
    return entry


def make_client(name: str, trader: str, url: str | None = None) -> TraderClient:
    """A client of transport ``name`` acting for ``trader`` (``url`` None = the transport's default/env)."""
    return transport(name).client(trader, url)


def serve(name: str, gateway: Gateway) -> AbstractAsyncContextManager[str]:
    """Serve ``gateway`` over transport ``name`` in the running event loop, on a free loopback port."""
    return transport(name).serve(gateway)
