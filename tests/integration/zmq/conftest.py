"""Fixtures: ``dex-zmq`` on real loopback sockets, in a background thread with its own event loop.

Tests talk to it like any client (``ZmqClient`` through the registry, or raw
pyzmq sockets for malformed input); the server thread owns the gateway and
stops it at teardown. Ports are picked free by binding port 0.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import pytest
import uvloop

from engine import Instrument
from transports.core.gateway import Gateway, GatewayConfig
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.zmq.server import ZmqServer
from transports.zmq.settings import ZmqServerSettings

T = TypeVar("T")


class LiveZmqServer:
    def __init__(self, settings: ZmqServerSettings, config: GatewayConfig, instruments: tuple[Instrument, ...]) -> None:
        self.settings = settings
        self.config = config
        self.instruments = instruments
        self.url = ""
        self.pub_endpoint = ""
        self.orders_endpoint = ""
        self.gateway: Gateway | None = None
        self.server: ZmqServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dex-zmq-test", daemon=True)

    def start(self) -> LiveZmqServer:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("dex-zmq test server did not start in 15 s")
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
            server = ZmqServer(gateway, self.settings)
            server.start()
            self.server = server
            self.url, self.pub_endpoint, self.orders_endpoint = server.url, server.pub_endpoint, server.orders_endpoint
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await server.stop()
        finally:
            await gateway.stop()

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
        """Run ``factory()`` in the server's event loop (to read the gateway consistently)."""
        assert self.loop is not None

        async def run() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        assert not self._thread.is_alive(), "dex-zmq test server did not stop"
        if self._error is not None:
            raise self._error


StartServer = Callable[..., LiveZmqServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """``start_server(allow_admin=True, pub_sndhwm=1, gateway=GatewayConfig(...))`` -> a running ``LiveZmqServer``."""
    servers: list[LiveZmqServer] = []

    def start(
        *, gateway: GatewayConfig | None = None, instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS, **settings: Any
    ) -> LiveZmqServer:
        base = ZmqServerSettings(port=0, pub_port=0, journal=None, log_level="warning")
        server = LiveZmqServer(replace(base, **settings), gateway or GatewayConfig(journal=None), instruments)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> LiveZmqServer:
    return start_server()


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a test coroutine in a fresh event loop of the test's thread."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())
