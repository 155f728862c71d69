"""Fixtures: turbo-dex's app on a real uvicorn server, in a background thread with its own event loop.

The tests talk to it over loopback sockets like any client (httpx, websockets,
``HttpClient``); the server thread owns the gateway and stops it at teardown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import pytest
import uvloop

from engine import Instrument
from transports.core.gateway import Gateway, GatewayConfig
from transports.http.server import serve_http
from transports.http.settings import HttpServerSettings
from transports.instruments import DEFAULT_INSTRUMENTS

T = TypeVar("T")


class LiveServer:
    def __init__(self, settings: HttpServerSettings, config: GatewayConfig, instruments: tuple[Instrument, ...]) -> None:
        self.settings = settings
        self.config = config
        self.instruments = instruments
        self.url = ""
        self.gateway: Gateway | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="turbo-dex-test", daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("turbo-dex test server did not start in 15 s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        gateway = Gateway(config=self.config)
        self.gateway = gateway
        await gateway.start(self.instruments)
        try:
            async with serve_http(gateway, self.settings) as url:
                self.url = url
                self._ready.set()
                await self._stop.wait()
        finally:
            await gateway.stop()

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
        """Run ``factory()`` in the server's event loop (e.g. to poke the gateway) and return its result."""
        assert self.loop is not None

        async def run() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        assert not self._thread.is_alive(), "turbo-dex test server did not stop"
        if self._error is not None:
            raise self._error


StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """``start_server(allow_admin=True, gateway=GatewayConfig(...), instruments=(...))`` -> a running ``LiveServer``."""
    servers: list[LiveServer] = []

    def start(
        *, gateway: GatewayConfig | None = None, instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS, **settings: Any
    ) -> LiveServer:
        server = LiveServer(replace(HttpServerSettings(port=0, log_level="warning"), **settings), gateway or GatewayConfig(), instruments)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> LiveServer:
    return start_server()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
