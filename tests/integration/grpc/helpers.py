"""Shared by the gRPC tests: a real ``grpc.aio`` server on a loopback port, in the test's own event loop.

``run_exchange(scenario)`` starts a gateway (no journal unless given), serves
it with ``serve_grpc`` on 127.0.0.1:<free port>, runs ``scenario(exchange)``
and stops both. Clients (``GrpcClient`` or raw channels with the ``pb``
messages) talk to it over the socket like any other process would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import grpc
import grpc.aio

from engine import Instrument
from transports.codec.proto_codec import pb
from transports.core.gateway import Gateway, GatewayConfig
from transports.grpc.client import GrpcClient
from transports.grpc.server import serve_grpc
from transports.grpc.settings import ERROR_TRAILER, SERVICE_NAME, GrpcServerSettings, channel_target
from transports.instruments import DEFAULT_INSTRUMENTS

T = TypeVar("T")
BTC = DEFAULT_INSTRUMENTS[0]  # tick 0.01, lot 0.0001, 10% band around 30000.00
METHOD = f"/{SERVICE_NAME}/"


def trader(name: str) -> tuple[tuple[str, str]]:
    return (("x-trader", name),)


@dataclass
class Exchange:
    gateway: Gateway
    url: str
    _channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def target(self) -> str:
        return channel_target(self.url)

    def client(self, name: str, **kwargs: Any) -> GrpcClient:
        return GrpcClient(name, self.url, **kwargs)

    def channel(self) -> grpc.aio.Channel:
        """A raw channel of its own (one TCP connection), closed at the end of the scenario."""
        channel = grpc.aio.insecure_channel(self.target, options=[("grpc.use_local_subchannel_pool", 1)])
        self._channels.append(channel)
        return channel

    def unary(self, channel: grpc.aio.Channel, name: str, response: type[Any]) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        return channel.unary_unary(METHOD + name, _serialize, response.FromString)

    def trade(self, channel: grpc.aio.Channel, *, raw: bool = False) -> grpc.aio.StreamStreamMultiCallable[Any, Any]:
        """The Trade rpc; ``raw`` sends bytes as they are (to send what is not a CommandBatch)."""
        return channel.stream_stream(METHOD + "Trade", None if raw else _serialize, pb.ReplyBatch.FromString)


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def run_exchange(
    scenario: Callable[[Exchange], Awaitable[T]],
    *,
    config: GatewayConfig | None = None,
    instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS,
    **settings: Any,
) -> T:
    async def main() -> T:
        gateway = Gateway(config=config or GatewayConfig(journal=None))
        await gateway.start(instruments)
        try:
            server_settings = replace(GrpcServerSettings(port=0, log_level="warning", graceful_shutdown_s=2.0), **settings)
            async with serve_grpc(gateway, server_settings) as url:
                exchange = Exchange(gateway, url)
                try:
                    return await asyncio.wait_for(scenario(exchange), 60)
                finally:
                    for channel in exchange._channels:
                        await channel.close()
        finally:
            await gateway.stop()

    return asyncio.run(main())


def error_of(exc: grpc.aio.AioRpcError) -> pb.Error:
    """The ``Error`` a failed call carries in its trailer (the test fails if it has none)."""
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_TRAILER:
            assert isinstance(value, bytes)
            return pb.Error.FromString(value)
    raise AssertionError(f"no {ERROR_TRAILER} trailer on {exc.code()} {exc.details()}")


def place(symbol: str = "BTC-USD", side: int = pb.SIDE_BUY, qty: str = "0.0001", price: str = "29000.00", **fields: Any) -> pb.Command:
    return pb.Command(place=pb.PlaceOrder(symbol=symbol, side=side, qty=qty, price=price, **fields))
