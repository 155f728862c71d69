"""Who may act, on every wire that authenticates: one suite, run through the registry.

Each test runs once per transport whose descriptor has ``auth``
(``transports.registry.authenticating``): a fresh gateway is served over the
transport with a fresh keyring (alice, bob, an admin, and a key limited to a
few requests per second), and clients prove their keys the wire's own way.
A new transport that authenticates passes this suite without editing it.

What a refusal looks like differs by wire: a signed-request wire answers
``UNAUTHENTICATED``; a channel that authenticates at connection time
(ZeroMQ CURVE, NATS users, RabbitMQ users, a FIX Logon) does not let the
client in at all. Either way the test asserts what a user would notice:
the attempt raised or was refused with ``UNAUTHENTICATED``/``UNAUTHORIZED``,
and nothing of it reached the book.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engine import (
    AddInstrument,
    Engine,
    ExchangeError,
    Instrument,
    OrderAccepted,
    OrderRejected,
    PlaceOrder,
    RejectReason,
    Side,
)
from tests.support.auth import TraderKeys, authentication, keyed_client, serve_keyed
from transports.core import auth as auth_module
from transports.core.client import TraderClient
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.keys import RELOAD_CHECK_S, Credential, create_key, revoke_key
from transports.core.ratelimit import DEFAULT_RATE_PER_S
from transports.core.signing import MAX_WINDOW_MS, now_ms
from transports.registry import authenticating

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001", reference_price="30000.00", price_band_bps=1000)
PX = 3_000_000
REFUSED = (RejectReason.UNAUTHENTICATED, RejectReason.UNAUTHORIZED)
WIRES = authenticating()
SIGNED_WIRES = tuple(name for name in WIRES if authentication(name).signed_requests)


class Keys(TraderKeys):
    """A keyring in a temporary directory, and the credentials its clients hold."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, ("alice", "bob", "carol"), admins=("ops",))
        self.alice, self.bob, self.limited = self.credential("alice"), self.credential("bob"), self.credential("carol")
        self.admin = self.credential("ops", "admin")

    def stranger(self, elsewhere: Path) -> Credential:
        """A well-formed key for alice that this exchange never issued."""
        return create_key(elsewhere, "alice")


class Venue:
    def __init__(self, transport: str, gateway: Gateway, url: str, keys: Keys) -> None:
        self.transport, self.gateway, self.url, self.keys = transport, gateway, url, keys
        self._clients: list[TraderClient] = []

    async def client(self, credential: Credential) -> TraderClient:
        client = keyed_client(self.transport, credential, self.url)
        self._clients.append(client)
        await asyncio.wait_for(client.connect(), 10)
        return client

    async def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)


@contextlib.asynccontextmanager
async def venue(transport: str, keys: Keys, *, rate_limited: bool = False) -> AsyncIterator[Venue]:
    gateway = Gateway(Engine(), GatewayConfig(journal=None))
    await gateway.start([INSTRUMENT])
    try:
        async with serve_keyed(transport, gateway, keys.keyring, rate_per_s=5 if rate_limited else DEFAULT_RATE_PER_S) as url:
            v = Venue(transport, gateway, url, keys)
            try:
                yield v
            finally:
                await v.close()
    finally:
        await gateway.stop()


def run(transport: str, tmp_path: Path, scenario: Callable[[Venue], Awaitable[None]], **kw: bool) -> None:
    keys = Keys(tmp_path / "keys")

    async def main() -> None:
        async with venue(transport, keys, **kw) as v:
            await asyncio.wait_for(scenario(v), 60)

    asyncio.run(main())


def order(coid: str, trader: str = "", side: Side = Side.BUY, price: int = PX - 100) -> PlaceOrder:
    return PlaceOrder(trader, coid, SYM, side, 1000, price)


async def refused(attempt: Awaitable[object]) -> bool:
    """True when ``attempt`` was refused for who it is: it raised, or came back rejected UNAUTHENTICATED/UNAUTHORIZED."""
    try:
        replies = await asyncio.wait_for(attempt, 10)
    except (ExchangeError, ConnectionError, OSError, TimeoutError) as exc:
        return not isinstance(exc, ExchangeError) or exc.reason in REFUSED
    except Exception:  # each wire's library raises its own kind for a refused connection
        return True
    events = replies[0] if isinstance(replies, list) and replies and isinstance(replies[0], list) else []
    return any(isinstance(e, OrderRejected) and e.reason in REFUSED for e in events)


def resting(v: Venue, trader: str) -> list[int]:
    """The prices of ``trader``'s resting orders, read from the engine (the test's own view, no wire)."""
    return sorted((o.price for o in v.gateway.open_orders(trader)), reverse=True)


@pytest.fixture(params=WIRES)
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ------------------------------------------------------------ refusals
def test_a_client_without_credentials_is_refused(wire: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        from transports.registry import make_client

        anonymous = make_client(wire, "alice", v.url)
        try:
            assert await refused(_connect_and_submit(anonymous, order("anon")))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(anonymous.close(), 5)
        assert resting(v, "alice") == []

    run(wire, tmp_path, scenario)


def test_a_key_the_exchange_never_issued_is_refused(wire: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        stranger = v.keys.stranger(tmp_path / "elsewhere")
        client = keyed_client(wire, stranger, v.url)
        try:
            assert await refused(_connect_and_submit(client, order("forged")))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)
        assert resting(v, "alice") == []

    run(wire, tmp_path, scenario)


def test_a_revoked_key_is_refused_within_one_reload(wire: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        bob = await v.client(v.keys.bob)
        accepted = (await bob.submit([order("b1")]))[0]
        assert any(isinstance(e, OrderAccepted) for e in accepted)
        revoke_key(v.keys.directory, v.keys.bob.key_id)
        await asyncio.sleep(RELOAD_CHECK_S * 2 + 0.1)
        assert await refused(bob.submit([order("b2", price=PX - 200)]))
        assert resting(v, "bob") == [PX - 100]

    run(wire, tmp_path, scenario)


def test_alice_can_neither_act_nor_read_as_bob(wire: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        alice, bob = await v.client(v.keys.alice), await v.client(v.keys.bob)
        events = (await bob.submit([order("b1")]))[0]
        bob_order = next(e for e in events if isinstance(e, OrderAccepted)).order_id
        # A command that names bob acts for alice, its key's trader.
        events = (await alice.submit([order("a1", trader="bob", price=PX - 300)]))[0]
        assert next(e for e in events if isinstance(e, OrderAccepted)).trader == "alice"
        cancel = await alice.cancel(bob_order)
        assert any(isinstance(e, OrderRejected) and e.reason is RejectReason.UNKNOWN_ORDER for e in cancel)
        assert await _order_or_refusal(alice, bob_order) is None  # bob's order does not exist for alice
        assert resting(v, "bob") == [PX - 100] and resting(v, "alice") == [PX - 300]

    run(wire, tmp_path, scenario)


def test_adding_an_instrument_needs_the_admin_role(wire: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        alice, ops = await v.client(v.keys.alice), await v.client(v.keys.admin)
        new = Instrument.create("ETH-USD", "0.01", "0.001")
        assert await refused(alice.submit([AddInstrument(new)]))
        assert v.gateway.instrument("ETH-USD") is None
        await ops.submit([AddInstrument(new)])
        assert v.gateway.instrument("ETH-USD") is not None

    run(wire, tmp_path, scenario)


def test_the_rate_limit_per_key_holds_and_is_counted(wire: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        carol = await v.client(v.keys.limited)
        reasons: list[RejectReason] = []
        for i in range(20):  # bounded: 20 requests against 5 per second
            try:
                events = (await carol.submit([order(f"c{i}", price=PX - 100 - i)]))[0]
            except ExchangeError as exc:
                reasons.append(exc.reason)
                continue
            reasons.extend(e.reason for e in events if isinstance(e, OrderRejected))
        limited = reasons.count(RejectReason.RATE_LIMITED)
        assert limited >= 10, reasons
        assert len(resting(v, "carol")) == 20 - limited  # every refusal is a whole request, nothing half applied
        assert v.gateway.stats_dict()["refused_by_reason"].get("RATE_LIMITED", 0) >= limited

    run(wire, tmp_path, scenario, rate_limited=True)


def test_no_secret_or_signature_appears_in_any_log_line(wire: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(v: Venue) -> None:
        alice = await v.client(v.keys.alice)
        await alice.submit([order("a1")])
        revoke_key(v.keys.directory, v.keys.alice.key_id)
        await asyncio.sleep(RELOAD_CHECK_S * 2 + 0.1)
        await refused(alice.submit([order("a2")]))
        secrets_ = [v.keys.alice.private_key, v.keys.alice.curve_secret, v.keys.alice.amqp_password]
        text = caplog.text
        assert not [s for s in secrets_ if s and s in text]

    run(wire, tmp_path, scenario)


# ------------------------------------------------------------ replays (signed-request wires)
# A replay is what an attacker on the network does: record a client's bytes and send them again. The client talks
# through a recording TCP proxy; once it is gone, its recorded connections are sent again, byte for byte, straight
# to the server, within the request's window. Nothing of them may reach the book. A plaintext wire must refuse them
# as replays (its answer names ``replayed_request``, or its UNAUTHENTICATED count rises); over TLS the recording
# cannot even get past the handshake. Staleness is the server's clock moved past every window: every wire checks a
# signed request's time in ``Authenticator.verify_signed``, which reads ``transports.core.auth.now_ms``.
@pytest.fixture(params=SIGNED_WIRES)
def signed_wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Recorder:
    """A TCP proxy to ``target`` that keeps what each client connection sent."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.sent: list[bytearray] = []
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection(*self.target)
        record = bytearray()
        self.sent.append(record)
        pipes = [asyncio.ensure_future(self._pipe(reader, upstream, record)), asyncio.ensure_future(self._pipe(upstream_reader, writer))]
        self._pipes.update(pipes)
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in pipes:
            pipe.cancel()
        for w in (writer, upstream):
            w.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bytearray | None = None) -> None:
        while data := await source.read(65536):
            if record is not None:
                record += data
            sink.write(data)
            await sink.drain()

    async def close(self) -> None:
        for pipe in self._pipes:
            pipe.cancel()
        if self._server is not None:
            self._server.close()

    async def replay(self) -> bytes:
        """Send every recorded connection again, each on a new connection to the server; what the server answered."""
        answers = bytearray()
        for record in self.sent:
            reader, writer = await asyncio.open_connection(*self.target)
            writer.write(bytes(record))
            with contextlib.suppress(OSError, TimeoutError):
                while data := await asyncio.wait_for(reader.read(65536), 1.0):
                    answers += data
            writer.close()
        return bytes(answers)


def _through(url: str, port: int) -> str:
    """``url`` with its port replaced by ``port`` (the same host: a certificate still matches it)."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.hostname}:{port}").geturl()


def test_a_replayed_signed_request_is_refused(signed_wire: str, tmp_path: Path) -> None:
    async def scenario(v: Venue) -> None:
        target = urlsplit(v.url)
        assert target.hostname and target.port, v.url
        recorder = Recorder(target.hostname, target.port)
        try:
            alice = keyed_client(signed_wire, v.keys.alice, _through(v.url, await recorder.start()))
            await asyncio.wait_for(alice.connect(), 10)
            events = (await alice.submit([order("once")]))[0]
            assert any(isinstance(e, OrderAccepted) for e in events)
            await asyncio.wait_for(alice.close(), 5)
            assert recorder.sent and any(recorder.sent)
            before = v.gateway.stats_dict()
            answer = await recorder.replay()
        finally:
            await recorder.close()
        after = v.gateway.stats_dict()
        assert sum(after["by_transport"].values()) == sum(before["by_transport"].values())  # nothing reached the book
        assert resting(v, "alice") == [PX - 100]
        tls = all(record[:1] == b"\x16" for record in recorder.sent if record)  # a TLS handshake record
        counted = _unauthenticated(after) > _unauthenticated(before)
        assert tls or b"replayed_request" in answer or counted, answer[:500]

    run(signed_wire, tmp_path, scenario)


def test_a_signed_request_outside_its_window_is_refused(signed_wire: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module, "now_ms", lambda: now_ms() + 2 * MAX_WINDOW_MS)  # the server's clock: past any window

    async def scenario(v: Venue) -> None:
        late = keyed_client(signed_wire, v.keys.alice, v.url)
        try:
            assert await refused(_connect_and_submit(late, order("late")))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(late.close(), 5)
        assert resting(v, "alice") == []

    run(signed_wire, tmp_path, scenario)


def _unauthenticated(stats: dict[str, object]) -> int:
    refused_ = stats["refused_by_reason"]
    assert isinstance(refused_, dict)
    return int(refused_.get("UNAUTHENTICATED", 0))


async def _order_or_refusal(client: TraderClient, order_id: int) -> object:
    try:
        return await client.order(order_id)
    except ExchangeError as exc:
        assert exc.reason is RejectReason.UNKNOWN_ORDER, exc
        return None


async def _connect_and_submit(client: TraderClient, command: PlaceOrder) -> object:
    await client.connect()
    return await client.submit([command])
