"""The NATS transport's descriptor (``transports.core.descriptor``): request/reply, ``dex-nats``. Imports lazily."""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path

from engine import RejectReason
from transports.core.auth import Authenticator
from transports.core.client import TraderClient
from transports.core.descriptor import Authentication, BenchDefaults, Broker, LocalProcess, Mount, TransportDescriptor
from transports.core.gateway import Gateway
from transports.core.keys import Credential
from transports.nats.settings import URL_ENV  # light: no broker library is imported


def _client(trader: str, url: str | None) -> TraderClient:
    from transports.nats.client import NatsClient

    return NatsClient(trader, url)


def _serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    import os

    from transports.nats.server import NatsServerSettings, serve_nats

    # $DEX_NATS_URL names a running nats-server (the hostile suite's child servers get the session's); else a
    # private nats-server, started for the purpose and stopped by PID afterwards.
    url = os.environ.get(URL_ENV)
    return serve_nats(gateway, NatsServerSettings(url=url) if url else None)


async def _malformed(url: str) -> RejectReason:
    from transports.nats.probe import send_malformed

    return await send_malformed(url)


def _local(workdir: Path, args: tuple[str, ...]) -> AbstractContextManager[LocalProcess]:
    from transports.nats.local import local_exchange

    return local_exchange(workdir, args)


def _broker() -> AbstractContextManager[str]:
    from transports.nats.local import local_broker

    return local_broker()


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats-prefix", default=None, help="NATS subject prefix (default: dex-nats's own)")


def _mount(gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    import dataclasses
    import os

    from transports.nats.server import NatsServerSettings, serve_nats

    # No URL named: a private nats-server, started for the purpose and stopped by PID when turbo-dex stops.
    authenticator = getattr(args, "authenticator", None)
    # With keys, always a private nats-server: its users come from the keyring (a broker we did not start has none).
    settings = NatsServerSettings(
        url=None if authenticator is not None else args.nats_url or os.environ.get(URL_ENV) or None,
        host=args.host,
        allow_admin=args.allow_admin,
        log_level=args.log_level,
        auth=authenticator,
    )
    if args.nats_prefix:
        settings = dataclasses.replace(settings, prefix=args.nats_prefix)
    return serve_nats(gateway, settings)


def _auth_serve(gateway: Gateway, authenticator: Authenticator) -> AbstractAsyncContextManager[str]:
    from transports.nats.server import NatsServerSettings, serve_nats

    # Always a private nats-server: its users come from the keyring and are reloaded when it changes.
    return serve_nats(gateway, NatsServerSettings(auth=authenticator))


def _auth_client(credential: Credential, url: str) -> TraderClient:
    from transports.nats.client import NatsClient

    return NatsClient(credential.trader, url, credential=credential)


DESCRIPTOR = TransportDescriptor(
    name="nats",
    title="NATS",
    summary=(
        "NATS request/reply on per-symbol subjects, and `nats-auto`: a nats-server per node joined into one NATS cluster "
        "(beacon discovery, no single point of failure), heartbeat discovery, a JetStream KV lease election with fencing, "
        "a durable JetStream order path with hot replicas."
    ),
    client=_client,
    serve=_serve,
    send_malformed=_malformed,
    extra="nats",
    docs="docs/nats.md",
    console_script="dex-nats",
    server_module="transports.nats.server",
    local_server=_local,
    broker=Broker("nats-server", "--nats-url", URL_ENV, _broker),
    mount=Mount(_options, _mount),
    bench=BenchDefaults(
        target_batch_per_s=150_000,
        target_single_p99_us=800,
        notes=(
            "Core path: each harness trader has one NATS connection; a batch of 1000 is split into requests of at most 2000 commands.",
            "dex-nats publishes market data of a symbol once someone asked for its snapshot (the harness does not subscribe).",
        ),
        market_data="NATS",
        fanout_target_p99_us=10_000,
    ),
    acknowledged_after="the server's journal fsync (core request/reply); JetStream's stream ack on the durable path",
    zero_configuration="yes with `make nats-auto`: a nats-server per node in one cluster, elects the matcher",
    operational_parts="the server + nats-server",
    echo_wire="nats",
    auth=Authentication(
        mechanism="one nats-server user per key (NKEY) with subject permissions; the key id in the subject names the trader",
        serve=_auth_serve,
        client=_auth_client,
        signed_requests=False,
    ),
)
