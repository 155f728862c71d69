"""gRPC authentication, what only this wire has: TLS before anything, signed call metadata, and its replays.

The registry's suite (test_wires.py) covers what every wire shares; here a
real ``grpc.aio`` server with ``--auth keys`` on a loopback port, and raw
channels where a test needs to send exactly the bytes an attacker would.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from engine import Engine, ExchangeError, Instrument, NotConnected, OrderAccepted, PlaceOrder, RejectReason, Side
from transports.codec import lean
from transports.codec.proto_codec import decode_error, pb
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.keys import RELOAD_CHECK_S, Credential, Keyring, create_key
from transports.core.signing import payload, sign
from transports.core.tls import TlsFiles
from transports.grpc.auth import KEY, NONCE, SIGNATURE, TIMESTAMP, WINDOW, channel_credentials, signed_metadata, with_ca
from transports.grpc.client import GrpcClient
from transports.grpc.local import LocalGrpcServer
from transports.grpc.server import serve_grpc
from transports.grpc.settings import ERROR_TRAILER, SERVICE_NAME, GrpcServerSettings, parse_grpc_url

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001", reference_price="30000.00", price_band_bps=1000)
GET_ORDER = f"/{SERVICE_NAME}/GetOrder"


class Venue:
    def __init__(self, gateway: Gateway, url: str, keys: Path, alice: Credential) -> None:
        self.gateway, self.url, self.keys, self.alice = gateway, url, keys, alice
        self.address = parse_grpc_url(url)

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(
            self.address.target, channel_credentials(self.address.ca), options=[("grpc.use_local_subchannel_pool", 1)]
        )


def run(tmp_path: Path, scenario: Callable[[Venue], Awaitable[None]]) -> None:
    keys = tmp_path / "keys"
    alice = create_key(keys, "alice")

    async def main() -> None:
        gateway = Gateway(Engine(), GatewayConfig(journal=None))
        await gateway.start([INSTRUMENT])
        settings = GrpcServerSettings(port=0, log_level="warning", graceful_shutdown_s=1.0, auth=Authenticator(Keyring(keys)))
        try:
            async with serve_grpc(gateway, settings) as url:
                await asyncio.wait_for(scenario(Venue(gateway, url, keys, alice)), 30)
        finally:
            await gateway.stop()

    asyncio.run(main())


async def _status(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    """The status a refused call ended with, and the message of its ``Error`` trailer."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    trailer = dict(info.value.trailing_metadata() or ())
    return info.value.code(), decode_error(trailer[ERROR_TRAILER]).message


def test_the_server_serves_tls_with_the_keyrings_certificate_made_on_first_start(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        files = TlsFiles.under(v.keys)
        assert v.url.startswith("grpcs://127.0.0.1:") and v.address.tls and v.address.ca == str(files.ca)
        assert files.exist() and stat.S_IMODE(files.key.stat().st_mode) == 0o600
        client = GrpcClient("alice", v.url, credential=v.alice)
        try:
            events = (await client.submit([PlaceOrder("", "a1", SYM, Side.BUY, 1000, 2_999_900)]))[0]
            assert any(isinstance(e, OrderAccepted) and e.trader == "alice" for e in events)
        finally:
            await client.close()
        # The CA can travel in the credential instead of the URL.
        client = GrpcClient("alice", v.url.partition("?")[0], credential=with_ca(v.alice, v.keys))
        try:
            status = await client.order(1)
            assert status is not None and status.client_order_id == "a1"
        finally:
            await client.close()

    run(tmp_path, scenario)


def test_a_plaintext_client_is_refused_by_the_tls_port(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        plaintext = GrpcClient("alice", f"grpc://{v.address.target}", connect_timeout=2.0, credential=v.alice)
        with pytest.raises(NotConnected):
            await plaintext.connect()  # the TLS handshake never completes: no call, not even a public one, is read
        await plaintext.close()
        # The same port answers a client that speaks TLS: the refusal was the plaintext, not a server that is down.
        client = GrpcClient("alice", v.url, credential=v.alice)
        try:
            assert [i.symbol for i in await client.instruments()] == [SYM]
        finally:
            await client.close()
        assert v.gateway.open_orders("alice") == []

    run(tmp_path, scenario)


def test_a_replayed_call_signature_is_refused(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        async with v.channel() as channel:
            get_order = channel.unary_unary(GET_ORDER, pb.OrderStatusRequest.SerializeToString, pb.OrderStatusReply.FromString)
            metadata = signed_metadata(v.alice, GET_ORDER)
            first = await get_order(pb.OrderStatusRequest(order_id=1), metadata=metadata, timeout=5)
            assert not first.HasField("order")  # accepted: alice has no order 1
            code, message = await _status(get_order(pb.OrderStatusRequest(order_id=1), metadata=metadata, timeout=5))
            assert code is grpc.StatusCode.UNAUTHENTICATED and message.startswith("replayed_request")
            # Signed for another method, the same metadata proves nothing here either.
            cancel = signed_metadata(v.alice, f"/{SERVICE_NAME}/CancelOnDisconnect")
            code, message = await _status(get_order(pb.OrderStatusRequest(order_id=1), metadata=cancel, timeout=5))
            assert code is grpc.StatusCode.UNAUTHENTICATED and message.startswith("bad_signature")

    run(tmp_path, scenario)


def test_unsigned_stale_and_forged_calls_are_refused_and_market_data_stays_public(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        async with v.channel() as channel:
            get_order = channel.unary_unary(GET_ORDER, pb.OrderStatusRequest.SerializeToString, pb.OrderStatusReply.FromString)
            request = pb.OrderStatusRequest(order_id=1)
            code, message = await _status(get_order(request, metadata=(("x-trader", "alice"),), timeout=5))
            assert code is grpc.StatusCode.UNAUTHENTICATED and message.startswith("missing_credentials")
            stamp = 1_700_000_000_000  # long ago: outside any window
            old = sign(v.alice, payload(stamp, 5000, "GRPC", GET_ORDER, "n1", b""))
            stale = ((KEY, v.alice.key_id), (TIMESTAMP, str(stamp)), (WINDOW, "5000"), (NONCE, "n1"), (SIGNATURE, old))
            code, message = await _status(get_order(request, metadata=stale, timeout=5))
            assert code is grpc.StatusCode.UNAUTHENTICATED and message.startswith("stale_request")
            stranger = create_key(v.keys.parent / "elsewhere", "alice")
            code, message = await _status(get_order(request, metadata=signed_metadata(stranger, GET_ORDER), timeout=5))
            assert code is grpc.StatusCode.UNAUTHENTICATED and message.startswith("unknown_key")
            # A public call needs no key (market data stays public), over the same TLS.
            listing = channel.unary_unary(
                f"/{SERVICE_NAME}/GetInstruments", pb.InstrumentsRequest.SerializeToString, pb.InstrumentList.FromString
            )
            assert [i.symbol for i in (await listing(pb.InstrumentsRequest(), timeout=5)).instruments] == [SYM]
        assert v.gateway.stats_dict()["refused_by_reason"].get("UNAUTHENTICATED", 0) >= 3

    run(tmp_path, scenario)


def test_a_client_without_a_key_can_read_market_data_but_not_trade(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        anonymous = GrpcClient("alice", v.url)
        try:
            assert (await anonymous.book(SYM)).symbol == SYM
            with pytest.raises(ExchangeError) as info:
                await anonymous.submit([PlaceOrder("", "x1", SYM, Side.BUY, 1000, 2_999_900)])
            assert info.value.reason is RejectReason.UNAUTHENTICATED
        finally:
            await anonymous.close()
        assert v.gateway.open_orders("alice") == []

    run(tmp_path, scenario)


def test_dex_grpc_with_keys_serves_tls_and_signed_calls(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    alice = create_key(keys, "alice")
    with LocalGrpcServer(tmp_path, ("--auth", "keys", "--keys", str(keys))) as server:
        assert server.url == f"grpcs://127.0.0.1:{parse_grpc_url(server.url).target.rpartition(':')[2]}?ca={TlsFiles.under(keys).ca}"

        async def scenario() -> None:
            client = GrpcClient("bob", server.url, credential=alice)  # the key names the trader, not the argument
            try:
                events = (await client.submit([PlaceOrder("", "a1", SYM, Side.BUY, 1000, 2_999_900)]))[0]
                assert any(isinstance(e, OrderAccepted) and e.trader == "alice" for e in events)
            finally:
                await client.close()

        asyncio.run(scenario())
    assert "authentication is off" not in server.log_tail(50)


def test_every_private_call_works_signed_fills_lean_orders_and_cancel_on_disconnect(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        maker = GrpcClient("alice", v.url, credential=v.alice)
        taker = GrpcClient("bob", v.url, credential=create_key(v.keys, "bob"))
        await asyncio.sleep(RELOAD_CHECK_S * 2 + 0.1)  # bob's key, added while the server runs, is seen
        try:
            assert await maker.cancel_on_disconnect(5000) == 5000
            fills = maker.fills()
            first_fill = asyncio.ensure_future(anext(fills))
            events = (await maker.submit([PlaceOrder("", "m1", SYM, Side.SELL, 1000, 3_000_000)]))[0]
            order_id = next(e for e in events if isinstance(e, OrderAccepted)).order_id
            await asyncio.sleep(0.2)  # the Fills stream is open before the trade
            outcomes = await taker.submit_orders(lean.encode_orders([PlaceOrder("", "t1", SYM, Side.BUY, 1000, 3_000_000)]))
            assert outcomes.accepted == 1 and outcomes.trades == 1
            fill = await asyncio.wait_for(first_fill, 5)
            assert fill.order_id == order_id and fill.maker and fill.remaining == 0
            status = await maker.order(order_id)
            assert status is not None and status.remaining == 0
        finally:
            await maker.close()
            await taker.close()

    run(tmp_path, scenario)
