"""The RabbitMQ (AMQP 0-9-1) transport's descriptor (``transports.core.descriptor``): ``dex-amqp``. Imports lazily."""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path

from engine import RejectReason
from transports.amqp.settings import URL_ENV  # light: no broker library is imported
from transports.core.auth import Authenticator
from transports.core.client import TraderClient
from transports.core.descriptor import Authentication, BenchDefaults, Broker, LocalProcess, Mount, TransportDescriptor
from transports.core.gateway import Gateway
from transports.core.keys import Credential


def _client(trader: str, url: str | None) -> TraderClient:
    from transports.amqp.client import AmqpClient

    return AmqpClient(trader, url)


def _serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    # A broker is needed: $DEX_AMQP_URL (set by the rabbitmq_broker test fixture), else one LocalRabbitMQ per process.
    from transports.amqp.server import serve_amqp

    return serve_amqp(gateway)


async def _malformed(url: str) -> RejectReason:
    from transports.amqp.probe import send_malformed

    return await send_malformed(url)


def _local(workdir: Path, args: tuple[str, ...]) -> AbstractContextManager[LocalProcess]:
    from transports.amqp.local import LocalAmqpServer

    return LocalAmqpServer(workdir, args)  # on the broker named by $DEX_AMQP_URL (the broker's start_local sets it)


def _broker() -> AbstractContextManager[str]:
    from transports.amqp.local import local_broker

    return local_broker()


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amqp-name", default=None, help="queue/exchange prefix on the broker (default $DEX_AMQP_NAME, else dex)")


def _mount(gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    from transports.amqp.server import AmqpServerSettings, serve_amqp

    # The URL None: $DEX_AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/ (transports.amqp.settings.client_url).
    settings = AmqpServerSettings(
        url=args.amqp_url, name=args.amqp_name, host=args.host, journal=None, allow_admin=args.allow_admin, log_level=args.log_level
    )
    authenticator = getattr(args, "authenticator", None)
    if authenticator is not None:
        from transports.amqp.local import serve_with_users

        # Keys need a broker whose users we set: this process's own RabbitMQ without guest (not --amqp-url's).
        return serve_with_users(gateway, authenticator, settings=settings)
    return serve_amqp(gateway, settings)


def _auth_serve(gateway: Gateway, authenticator: Authenticator) -> AbstractAsyncContextManager[str]:
    from transports.amqp.local import serve_with_users

    return serve_with_users(gateway, authenticator)


def _auth_client(credential: Credential, url: str) -> TraderClient:
    from transports.amqp.client import AmqpClient

    return AmqpClient(credential.trader, url, credential=credential)


DESCRIPTOR = TransportDescriptor(
    name="amqp",
    title="RabbitMQ",
    summary=(
        "RabbitMQ RPC with persistent messages and publisher confirms, topic-exchange market data, reconnects; our own broker start-up."
    ),
    client=_client,
    serve=_serve,
    send_malformed=_malformed,
    extra="amqp",
    docs="docs/amqp.md",
    console_script="dex-amqp",
    server_module="transports.amqp.server",
    local_server=_local,
    broker=Broker("RabbitMQ", "--amqp-url", URL_ENV, _broker),
    mount=Mount(_options, _mount),
    bench=BenchDefaults(
        target_batch_per_s=50_000,
        target_single_p99_us=5_000,
        notes=(
            "One RabbitMQ 3.10 node (Debian package) on this machine, started once for the whole benchmark.",
            "Each harness trader has its own AMQP connection; a batch is one persistent message with a publisher confirm,"
            " answered on the trader's reply queue.",
        ),
        shared_broker=True,
        market_data="RabbitMQ topic",
    ),
    acknowledged_after="the broker's publisher confirm, then the server's journal fsync",
    zero_configuration="no: broker URL and credentials",
    operational_parts="the server + RabbitMQ",
    echo_wire="amqp",
    auth=Authentication(
        mechanism="one RabbitMQ user per key on the exchange's vhost, no guest; the broker-checked user_id names the key",
        serve=_auth_serve,
        client=_auth_client,
        signed_requests=False,
    ),
)
