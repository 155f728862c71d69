"""One wire of the registry served in a process of its own, for the hostile-input suite.

``python -m tests.hostile.venue <transport>`` builds a gateway with the
default instruments (no journal), serves it with ``transports.registry.serve``
exactly as the contract suite does, prints ``hostile venue listening on <url>``
and serves until SIGTERM. A separate process, so that the suite can read its
resident memory (``/proc/<pid>/status``) and so that an attack that blocks
its event loop cannot hide by blocking the measuring client too.

Brokers come from the environment the suite passes down: ``DEX_AMQP_URL``
and ``DEX_NATS_URL`` (the session fixtures' brokers).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from transports.core.gateway import Gateway, GatewayConfig
from transports.core.server_cli import freeze_startup_heap
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import serve

READY = "hostile venue listening on "


async def _serve(transport: str) -> None:
    gateway = Gateway(config=GatewayConfig(journal=None))
    await gateway.start(DEFAULT_INSTRUMENTS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serve(transport, gateway) as url:
            freeze_startup_heap()
            print(f"{READY}{url}", flush=True)
            await stop.wait()
    finally:
        await gateway.stop()


def main() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(sys.argv[1]))


if __name__ == "__main__":
    main()
