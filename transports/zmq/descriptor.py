"""The ZeroMQ transport's descriptor (``transports.core.descriptor``): ROUTER/DEALER, PUB/SUB, ``dex-zmq``. Imports lazily."""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path

from engine import RejectReason
from transports.core.auth import Authenticator
from transports.core.client import TraderClient
from transports.core.descriptor import Authentication, BenchDefaults, LocalProcess, Mount, TransportDescriptor
from transports.core.gateway import Gateway
from transports.core.keys import Credential


def _client(trader: str, url: str | None) -> TraderClient:
    from transports.zmq.client import ZmqClient

    return ZmqClient(trader, url)


def _serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.zmq.server import serve_zmq

    return serve_zmq(gateway)


async def _malformed(url: str) -> RejectReason:
    from transports.zmq.probe import send_malformed

    return await send_malformed(url)


def _serve_authenticated(gateway: Gateway, auth: Authenticator) -> AbstractAsyncContextManager[str]:
    from transports.zmq.server import serve_zmq
    from transports.zmq.settings import ZmqServerSettings

    # The URL names the server's CURVE public key (?key=): a client trusts it.
    return serve_zmq(gateway, ZmqServerSettings(port=0, pub_port=0, journal=None, auth=auth))


def _authenticated_client(credential: Credential, url: str) -> TraderClient:
    from transports.zmq.client import ZmqClient

    return ZmqClient(credential.trader, url, credential=credential)


def _local(workdir: Path, args: tuple[str, ...]) -> AbstractContextManager[LocalProcess]:
    from transports.zmq.local import LocalZmqServer

    return LocalZmqServer(workdir, ("--log-level", "warning", *args))


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zmq-port", type=int, default=5555, help="ZeroMQ ROUTER port for orders (default 5555)")
    parser.add_argument("--zmq-pub-port", type=int, default=5556, help="ZeroMQ PUB port for market data (default 5556)")


def _mount(gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    from transports.zmq.server import serve_zmq
    from transports.zmq.settings import ZmqServerSettings

    # A ROUTER port is one process's: front K of several takes the ports 2K above the ones given (0 stays any free one).
    step = 2 * getattr(args, "front_index", 0)
    settings = ZmqServerSettings(
        host=args.host,
        port=args.zmq_port + step if args.zmq_port else 0,
        pub_port=args.zmq_pub_port + step if args.zmq_pub_port else 0,
        allow_admin=args.allow_admin,
        log_level=args.log_level,
        auth=getattr(args, "authenticator", None),
    )
    return serve_zmq(gateway, settings)


DESCRIPTOR = TransportDescriptor(
    name="zmq",
    title="ZeroMQ",
    summary="ROUTER/DEALER orders with correlation ids, PUB/SUB market data with gap → snapshot recovery.",
    client=_client,
    serve=_serve,
    send_malformed=_malformed,
    extra="zmq",
    docs="docs/zmq.md",
    console_script="dex-zmq",
    server_module="transports.zmq.server",
    local_server=_local,
    mount=Mount(_options, _mount, fronts=True),
    bench=BenchDefaults(
        target_batch_per_s=250_000,
        target_single_p99_us=400,
        notes=(
            "Each harness trader has its own DEALER (one TCP connection); a batch is one frame holding a CommandBatch, "
            "its reply one frame holding the ReplyBatch with the same batch_id.",
            "Nobody subscribes to market data during the runs, so the server encodes none (XPUB tells it nobody reads).",
        ),
        market_data="ZeroMQ PUB",
        fanout_target_p99_us=10_000,
    ),
    acknowledged_after="the server's journal fsync (group commit)",
    zero_configuration="no: clients name the server",
    operational_parts="the server",
    echo_wire="zmq",
    auth=Authentication(
        mechanism="CURVE; a ZAP handler maps the client's public key to its key, checked again on every request",
        serve=_serve_authenticated,
        client=_authenticated_client,
        signed_requests=False,
    ),
)
