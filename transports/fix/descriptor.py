"""The FIX transport's descriptor (``transports.core.descriptor``): FIX 4.4 over TCP, ``python -m transports.fix.server``.

Imports lazily: reading the registry never needs ``simplefix``.
"""

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
    from transports.fix.client import FixClient

    return FixClient(trader, url)


def _serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.fix.server import serve_fix

    return serve_fix(gateway)


async def _malformed(url: str) -> RejectReason:
    from transports.fix.probe import send_malformed

    return await send_malformed(url)


def _local(workdir: Path, args: tuple[str, ...]) -> AbstractContextManager[LocalProcess]:
    from transports.fix.local import LocalFixServer

    return LocalFixServer(workdir, ("--log-level", "warning", *args))


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fix-port", type=int, default=9878, help="FIX 4.4 acceptor port (default 9878)")


def _mount(gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    from transports.core.state_dir import state_dir
    from transports.fix.server import serve_fix
    from transports.fix.settings import FixServerSettings

    settings = FixServerSettings(
        host=args.host,
        port=args.fix_port,
        state_dir=state_dir(getattr(args, "state_dir", None)),
        allow_admin=args.allow_admin,
        log_level=args.log_level,
        auth=getattr(args, "authenticator", None),  # turbo-dex's --auth keys
    )
    return serve_fix(gateway, settings)


def _serve_authenticated(gateway: Gateway, auth: Authenticator) -> AbstractAsyncContextManager[str]:
    from transports.fix.server import serve_fix

    return serve_fix(gateway, auth=auth)


def _signed_client(credential: Credential, url: str) -> TraderClient:
    from transports.fix.client import FixClient

    return FixClient(credential.trader, url, credential=credential)


DESCRIPTOR = TransportDescriptor(
    name="fix",
    title="FIX 4.4",
    summary="FIX 4.4 over TCP: a session per SenderCompID with persisted sequence numbers, ExecutionReports, W/X market data.",
    client=_client,
    serve=_serve,
    send_malformed=_malformed,
    extra="fix",
    docs="transports/fix/README.md",
    console_script="dex-fix",
    server_module="transports.fix.server",
    local_server=_local,
    mount=Mount(_options, _mount),
    bench=BenchDefaults(
        target_batch_per_s=3_000,
        target_single_p99_us=5_000,
        notes=(
            "Each harness trader has one FIX session (one TCP connection); a batch is one NewOrderSingle per order,"
            " each answered by its own ExecutionReports.",
            "simplefix parses and builds every message in Python (about 190 µs a message end to end), so the wire,"
            " not the engine, bounds it: a few thousand orders/s.",
        ),
        market_data="FIX W/X (MarketDataRequest)",
    ),
    acknowledged_after="the server's journal fsync (group commit); sequence numbers are stored without fsync",
    zero_configuration="no: clients name the server and their SenderCompID",
    operational_parts="the server",
    replies="own_view",  # an ExecutionReport is the submitter's own view: no book deltas, no counterparty
    # FIX rides plain asyncio TCP; the tcp echo (lean frames, shorter than FIX's text) bounds it from above.
    echo_wire="tcp",
    auth=Authentication(
        mechanism="a signed Logon: Username (553) = key id, RawData (96) = the signature over SendingTime, MsgSeqNum and CompIDs",
        serve=_serve_authenticated,
        client=_signed_client,
        signed_requests=True,
    ),
)
