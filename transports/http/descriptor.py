"""The HTTP transport's descriptor (``transports.core.descriptor``): FastAPI/uvicorn, ``turbo-dex``. Imports lazily."""

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

_FSYNC = "the server's journal fsync (group commit)"


def _client(trader: str, url: str | None) -> TraderClient:
    from transports.http.client import HttpClient

    return HttpClient(trader, url)


def _serve(gateway: Gateway) -> AbstractAsyncContextManager[str]:
    from transports.http.server import serve_http

    return serve_http(gateway)


async def _malformed(url: str) -> RejectReason:
    from transports.http.probe import send_malformed

    return await send_malformed(url)


def _local(workdir: Path, args: tuple[str, ...]) -> AbstractContextManager[LocalProcess]:
    from transports.http.local import LocalServer

    return LocalServer(workdir, args)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")


def _mount(gateway: Gateway, args: argparse.Namespace) -> AbstractAsyncContextManager[str]:
    from transports.http.server import serve_http
    from transports.http.settings import HttpServerSettings

    auth = getattr(args, "authenticator", None)  # turbo-dex builds one for every transport it mounts
    shared = getattr(args, "fronts", 1) > 1
    settings = HttpServerSettings(
        host=args.host, port=args.port, allow_admin=args.allow_admin, log_level=args.log_level, auth=auth, shared_port=shared
    )
    return serve_http(gateway, settings)


def _serve_signed(gateway: Gateway, authenticator: Authenticator) -> AbstractAsyncContextManager[str]:
    from transports.http.server import serve_http
    from transports.http.settings import HttpServerSettings

    return serve_http(gateway, HttpServerSettings(port=0, log_level="warning", auth=authenticator))


def _signed_client(credential: Credential, url: str) -> TraderClient:
    from transports.http.client import HttpClient

    return HttpClient(credential.trader, url, credential=credential)


DESCRIPTOR = TransportDescriptor(
    name="http",
    title="HTTP",
    summary="FastAPI/uvicorn server, WebSocket market data and own fills, Prometheus metrics.",
    client=_client,
    serve=_serve,
    send_malformed=_malformed,
    extra="http",
    docs="docs/http.md",
    console_script="turbo-dex",
    server_module="transports.launcher",
    local_server=_local,
    mount=Mount(_options, _mount, fronts=True),
    bench=BenchDefaults(
        target_batch_per_s=100_000,
        target_single_p99_us=2_000,
        notes=(
            "Each harness trader has its own HttpClient (httpx, HTTP/1.1 keep-alive) and posts to /orders/batch.",
            "Every reply carries every event of its commands (book deltas included), decoded by the client.",
        ),
        market_data="WebSocket",
        fanout_target_p99_us=50_000,
    ),
    acknowledged_after=_FSYNC,
    zero_configuration="no: clients name the server",
    operational_parts="the server",
    echo_wire="http",
    auth=Authentication(
        mechanism="signed requests: DEX-KEY, DEX-TIMESTAMP, DEX-WINDOW, DEX-SIGNATURE headers over method, path, query and body "
        "(Ed25519 or HMAC-SHA256); a private WebSocket signs its upgrade",
        serve=_serve_signed,
        client=_signed_client,
        signed_requests=True,
    ),
)
