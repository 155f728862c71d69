"""The live turbo-dex of the HTTP tests (a real uvicorn server on a loopback port) for the ccxt class."""

from __future__ import annotations

from tests.integration.http.conftest import LiveServer, StartServer, server, start_server

__all__ = ["LiveServer", "StartServer", "server", "start_server"]
