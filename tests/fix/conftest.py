"""Fixtures of the FIX tests: a gateway with the default instruments served by ``dex-fix`` in this event loop.

``fix_exchange(state_dir)`` starts one and stops it; starting another on the same
state directory (and journal) is a server restart: its sessions' sequence
numbers and its book come back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from transports.core.gateway import Gateway, GatewayConfig
from transports.fix.server import serve_fix
from transports.fix.settings import FixServerSettings
from transports.instruments import DEFAULT_INSTRUMENTS


@asynccontextmanager
async def fix_exchange(state_dir: Path, buffer: int = 100_000, **settings: Any) -> AsyncIterator[tuple[str, Gateway]]:
    gateway = Gateway(config=GatewayConfig(buffer=buffer, journal=str(state_dir / "journal.log"), fsync="off"))
    await gateway.start(DEFAULT_INSTRUMENTS)
    try:
        async with serve_fix(gateway, replace(FixServerSettings(port=0, state_dir=str(state_dir)), **settings)) as url:
            yield url, gateway
    finally:
        await gateway.stop()
