"""NATS with keys: the broker itself decides who may publish and subscribe where (docs/security.md, "NATS").

The generic suite (test_wires.py) shows what a trader notices; these tests
show what the issue asked of the broker: a key's NKEY is its Ed25519 key, and
a rogue holding a trader's valid key can neither see another trader's
requests nor answer any of them, because only the exchange's user may
subscribe to request subjects. Real nats-server, started by ``serve_nats``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nkeys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nats.aio.client import Client
from nats.aio.msg import Msg

from engine import Engine, Instrument, OrderAccepted, PlaceOrder, Side
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.keys import RELOAD_CHECK_S, Credential, Keyring, create_key, revoke_key, unb64
from transports.core.signing import AuthFailure
from transports.nats.client import NatsClient
from transports.nats.connection import ConnectionErrors, connect
from transports.nats.server import NatsServerSettings, connect_exchange, serve_nats
from transports.nats.settings import Subjects
from transports.nats.users import BrokerUsers, inbox_prefix, public_nkey, user_seed

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001", reference_price="30000.00", price_band_bps=1000)
PX = 3_000_000


def test_a_keys_nkey_is_its_ed25519_key(tmp_path: Path) -> None:
    alice = create_key(tmp_path, "alice")
    record = Keyring(tmp_path).lookup(alice.key_id)
    assert record is not None
    pair = nkeys.from_seed(bytearray(user_seed(alice).encode()))
    # The broker's view (from the keyring's public key only) is the key pair's own public NKEY.
    assert bytes(pair.public_key).decode() == public_nkey(unb64(record.public_key))
    # What the NKEY signs (the broker's nonce) verifies with the keyring's Ed25519 public key.
    nonce = b"a nonce the broker sent"
    Ed25519PublicKey.from_public_bytes(unb64(record.public_key)).verify(pair.sign(nonce), nonce)


@asynccontextmanager
async def exchange(directory: Path) -> AsyncIterator[tuple[Gateway, str]]:
    gateway = Gateway(Engine(), GatewayConfig(journal=None))
    await gateway.start([INSTRUMENT])
    try:
        async with serve_nats(gateway, NatsServerSettings(auth=Authenticator(Keyring(directory)))) as url:
            yield gateway, url
    finally:
        await gateway.stop()


async def rogue_connection(url: str, credential: Credential, errors: ConnectionErrors) -> Client:
    """A raw NATS connection logged in with a trader's valid key, as a rogue would make it."""
    seed = user_seed(credential)
    return await connect(url, "rogue", errors, nkeys_seed_str=seed, inbox_prefix=inbox_prefix(credential.key_id))


def test_a_rogue_with_a_traders_key_can_neither_see_nor_answer_requests(tmp_path: Path) -> None:
    alice, mallory = create_key(tmp_path, "alice"), create_key(tmp_path, "mallory")
    subjects = Subjects()

    async def main() -> None:
        async with exchange(tmp_path) as (gateway, url):
            errors = ConnectionErrors()
            rogue = await rogue_connection(url, mallory, errors)
            seen: list[str] = []

            async def answer(msg: Msg) -> None:  # what a rogue responder does: forge an "accepted"
                seen.append(msg.subject)
                if msg.reply:
                    await rogue.publish(msg.reply, b"forged")

            for subject in (">", "dex.>", "dex.cmd.>", f"dex.cmd.{alice.key_id}.>", "dex.lean.*", "dex.q.>", "_INBOX.>"):
                await rogue.subscribe(subject, cb=answer)
                await rogue.subscribe(subject, queue="responders", cb=answer)
            await rogue.publish(f"{inbox_prefix(alice.key_id)}.forged.1", b"forged")  # an unsolicited "reply" to alice
            await rogue.flush()
            trader = NatsClient("alice", url, credential=alice)
            await trader.connect()
            try:
                for i in range(20):
                    events = (await trader.submit([PlaceOrder("alice", f"a{i}", SYM, Side.BUY, 1000, PX - 100 - i)]))[0]
                    assert any(isinstance(e, OrderAccepted) and e.trader == "alice" for e in events), events
                # mallory publishing alice's request subject is refused by the broker: nothing reaches the book.
                await rogue.publish(subjects.command_of(alice.key_id, SYM), b"x", reply=f"{inbox_prefix(mallory.key_id)}.x")
                await rogue.flush()
                await asyncio.sleep(0.2)
            finally:
                await trader.close()
                await rogue.close()
            assert seen == []  # the rogue saw none of alice's requests or replies
            assert len(gateway.open_orders("alice")) == 20  # every request reached the exchange, and only the exchange
            assert gateway.open_orders("mallory") == []
            # One permission error per refused subscription (14) and publish (2): the broker said no each time.
            assert errors.permission_errors >= 16, errors.permission_errors

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_revoked_key_is_cut_off_by_the_broker(tmp_path: Path) -> None:
    bob = create_key(tmp_path, "bob")

    async def main() -> None:
        async with exchange(tmp_path) as (_, url):
            errors = ConnectionErrors()
            connected = await rogue_connection(url, bob, errors)
            try:
                revoke_key(tmp_path, bob.key_id)
                for _ in range(50):  # bounded: the users are reloaded within about two keyring checks
                    await asyncio.sleep(RELOAD_CHECK_S)
                    if not connected.is_connected:
                        break
                assert not connected.is_connected  # the broker closed the revoked key's connection
                try:
                    await rogue_connection(url, bob, ConnectionErrors())
                except AuthFailure as exc:
                    assert exc.cause == "unknown_key"
                else:
                    raise AssertionError("the broker let a revoked key connect")
            finally:
                await connected.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_keys_refuse_a_broker_that_lets_anyone_in(nats_url: str, tmp_path: Path) -> None:
    create_key(tmp_path, "alice")

    async def main() -> None:
        users = BrokerUsers(Keyring(tmp_path))
        try:
            nc = await connect_exchange(nats_url, ConnectionErrors(), users)
        except OSError as exc:
            assert "lets anyone connect" in str(exc)
        else:
            await nc.close()
            raise AssertionError("dex-nats with keys served on a nats-server without users")

    asyncio.run(asyncio.wait_for(main(), 30))
