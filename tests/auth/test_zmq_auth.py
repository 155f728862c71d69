"""ZeroMQ authentication, what only this wire has: CURVE, the ZAP handler, and keys checked on every request.

The registry's suite (test_wires.py) covers what every wire shares; here a
real ``dex-zmq`` server with ``--auth keys`` in the test's loop, and raw
DEALER/SUB sockets where a test needs to be exactly what an outsider is.
"""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from engine import Engine, ExchangeError, Instrument, OrderAccepted, PlaceOrder, RejectReason, Side
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.keys import RELOAD_CHECK_S, SERVER_DIR, Credential, Keyring, create_key, revoke_key
from transports.core.signing import AuthFailure
from transports.zmq import protocol as proto
from transports.zmq.client import ZmqClient
from transports.zmq.curve import KEY_FILE, PUBLIC_FILE, server_public_key, with_server_key
from transports.zmq.local import LocalZmqServer
from transports.zmq.server import ZmqServer
from transports.zmq.settings import ZmqServerSettings, parse_url

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001", reference_price="30000.00", price_band_bps=1000)
PX = 3_000_000


class Venue:
    def __init__(self, gateway: Gateway, server: ZmqServer, keys: Path, alice: Credential, bob: Credential) -> None:
        self.gateway, self.server, self.keys, self.alice, self.bob = gateway, server, keys, alice, bob
        self.url = server.url

    def client(self, credential: Credential | None, **kw: Any) -> ZmqClient:
        return ZmqClient(credential.trader if credential else "alice", self.url, credential=credential, connect_timeout=3.0, **kw)


def run(tmp_path: Path, scenario: Callable[[Venue], Awaitable[None]]) -> None:
    keys = tmp_path / "keys"
    alice, bob = create_key(keys, "alice"), create_key(keys, "bob")

    async def main() -> None:
        gateway = Gateway(Engine(), GatewayConfig(journal=None))
        await gateway.start([INSTRUMENT])
        server = ZmqServer(gateway, ZmqServerSettings(port=0, pub_port=0, journal=None, auth=Authenticator(Keyring(keys))))
        server.start()
        try:
            await asyncio.wait_for(scenario(Venue(gateway, server, keys, alice, bob)), 30)
        finally:
            await server.stop()
            await gateway.stop()

    asyncio.run(main())


def order(coid: str, price: int = PX - 100) -> PlaceOrder:
    return PlaceOrder("", coid, SYM, Side.BUY, 1000, price)


async def _answer(sock: zmq.Socket[bytes], frames: list[bytes], wait_s: float) -> list[bytes] | None:
    """The reply to ``frames`` sent on a raw DEALER, or None if none came within ``wait_s``."""
    sock.send_multipart(frames)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            return sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            await asyncio.sleep(0.02)
    return None


def _raw_dealer(v: Venue, public: bytes, secret: bytes) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_serverkey = server_public_key(v.keys).encode()
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.connect(parse_url(v.url).orders_endpoint)
    return sock


def test_the_server_key_pair_is_made_on_first_start_and_named_by_the_url(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        server_dir = v.keys / SERVER_DIR
        assert stat.S_IMODE((server_dir / KEY_FILE).stat().st_mode) == 0o600
        public = (server_dir / PUBLIC_FILE).read_text().strip()
        assert parse_url(v.url).server_key == public == v.server.server_key
        # The key can also travel in the credential instead of the URL.
        plain_url = v.url.partition("?")[0]
        client = ZmqClient("alice", plain_url, credential=with_server_key(v.alice, v.keys))
        try:
            events = (await client.submit([order("a1")]))[0]
            assert any(isinstance(e, OrderAccepted) and e.trader == "alice" for e in events)
        finally:
            await client.close()
        with pytest.raises(AuthFailure, match="missing_credentials"):  # no server key anywhere: nothing to trust
            await ZmqClient("alice", plain_url, credential=v.alice).connect()

    run(tmp_path, scenario)


def test_an_unknown_curve_key_never_gets_an_answer(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        public, secret = zmq.curve_keypair()
        sock = _raw_dealer(v, public, secret)
        try:
            assert await _answer(sock, [proto.HELLO, b"\x00\x01", b"alice"], 1.0) is None
        finally:
            sock.close(0)
        # Our client says why: the ZAP handler refused its key.
        stranger = create_key(v.keys.parent / "elsewhere", "alice")
        with pytest.raises(AuthFailure, match="unknown_key") as info:
            await v.client(stranger).connect()
        assert info.value.reason is RejectReason.UNAUTHENTICATED
        assert v.gateway.open_orders("alice") == []

    run(tmp_path, scenario)


def test_a_client_without_curve_is_refused_and_says_so(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        with pytest.raises(AuthFailure, match="missing_credentials"):
            await v.client(None).connect()

    run(tmp_path, scenario)


def test_the_hello_name_is_ignored_the_key_names_the_trader(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        sock = _raw_dealer(v, v.alice.curve_public.encode(), v.alice.curve_secret.encode())
        try:
            reply = await _answer(sock, [proto.HELLO, b"\x00\x01", b"bob"], 3.0)
            assert reply is not None and reply[2] == b"alice"
        finally:
            sock.close(0)

    run(tmp_path, scenario)


def test_a_key_revoked_while_connected_is_refused_on_its_next_request_and_reconnect(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        bob = v.client(v.bob)
        try:
            assert any(isinstance(e, OrderAccepted) for e in (await bob.submit([order("b1")]))[0])
            revoke_key(v.keys, v.bob.key_id)
            await asyncio.sleep(RELOAD_CHECK_S * 2 + 0.1)
            for attempt in (bob.submit([order("b2", PX - 200)]), bob.order(1), bob.book(SYM)):
                with pytest.raises(ExchangeError) as info:
                    await attempt
                assert info.value.reason is RejectReason.UNAUTHENTICATED, info.value
        finally:
            await bob.close()
        with pytest.raises(AuthFailure, match="unknown_key"):  # a new connection does not get past ZAP
            await v.client(v.bob).connect()
        assert [o.price for o in v.gateway.open_orders("bob")] == [PX - 100]

    run(tmp_path, scenario)


def test_market_data_stays_public_on_a_plain_sub(tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        sub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, proto.topic(SYM))
        sub.connect(v.server.pub_endpoint)
        alice = v.client(v.alice)
        try:
            await asyncio.sleep(0.3)  # the subscription reaches the XPUB
            await alice.submit([order("a1")])
            received = None
            for _ in range(100):
                try:
                    received = sub.recv_multipart(zmq.NOBLOCK)
                    break
                except zmq.Again:
                    await asyncio.sleep(0.02)
            assert received is not None and received[0] == proto.topic(SYM)
        finally:
            sub.close(0)
            await alice.close()

    run(tmp_path, scenario)


def test_dex_zmq_with_keys_serves_curve_and_prints_its_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    alice = create_key(keys, "alice")
    with LocalZmqServer(tmp_path, ("--auth", "keys", "--keys", str(keys), "--log-level", "warning")) as server:
        assert parse_url(server.url).server_key == server_public_key(keys)

        async def scenario() -> None:
            client = ZmqClient("bob", server.url, credential=alice)  # the key names the trader, not the argument
            try:
                events = (await client.submit([order("a1")]))[0]
                assert any(isinstance(e, OrderAccepted) and e.trader == "alice" for e in events)
            finally:
                await client.close()

        asyncio.run(scenario())
    assert "authentication is off" not in server.log_tail(50)
