"""RabbitMQ with keys: the broker itself decides who may publish and consume where (docs/security.md, "RabbitMQ").

The generic suite (test_wires.py) shows what a trader notices; these tests
show what the issue asked of the broker: no guest, a user per key, and a
rogue holding a trader's valid key can neither take requests off the command
queue nor answer anyone, because only the exchange's user may consume it and
a key may publish only to the command exchange, under its own ``user_id``.
Real RabbitMQ (``auth_broker``: this process's guest-less node).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelAccessRefused, ChannelPreconditionFailed

from engine import Engine, Instrument, OrderAccepted, PlaceOrder, Side
from transports.amqp.client import AmqpClient
from transports.amqp.connection import connect, strip_name
from transports.amqp.local import serve_with_users
from transports.amqp.settings import AmqpNames
from transports.amqp.users import client_url
from transports.codec.proto_codec import encode_commands
from transports.core.auth import Authenticator
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.keys import Credential, Keyring, create_key, revoke_key
from transports.core.signing import AuthFailure

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001", reference_price="30000.00", price_band_bps=1000)
PX = 3_000_000


@asynccontextmanager
async def exchange(directory: Path) -> AsyncIterator[tuple[Gateway, str]]:
    gateway = Gateway(Engine(), GatewayConfig(journal=None))
    await gateway.start([INSTRUMENT])
    try:
        async with serve_with_users(gateway, Authenticator(Keyring(directory))) as url:
            yield gateway, url
    finally:
        await gateway.stop()


async def login(url: str, credential: Credential) -> aio_pika.abc.AbstractConnection:
    """A raw AMQP connection with a trader's valid login, as a rogue would make it."""
    base, _ = strip_name(url)
    return await aio_pika.connect(client_url(base, credential.key_id, credential.amqp_password))


async def refused(attempt: object, kind: type[Exception]) -> bool:
    """Whether the broker refused ``attempt`` (a coroutine using a fresh channel) with ``kind``."""
    assert asyncio.iscoroutine(attempt)
    try:
        await attempt
    except kind:
        return True
    return False


def test_a_rogue_with_a_traders_key_can_neither_take_nor_answer_requests(tmp_path: Path) -> None:
    alice, mallory = create_key(tmp_path, "alice"), create_key(tmp_path, "mallory")

    async def main() -> None:
        async with exchange(tmp_path) as (gateway, url):
            names = AmqpNames(strip_name(url)[1] or "dex")
            trader = AmqpClient("alice", url, credential=alice)
            await trader.connect()
            rogue = await login(url, mallory)
            seen: list[bytes] = []

            async def take(message: AbstractIncomingMessage) -> None:
                seen.append(message.body)

            async def consume_commands() -> None:
                queue = await (await rogue.channel()).get_queue(names.commands, ensure=False)
                await queue.consume(take)

            async def tap_command_exchange() -> None:  # a queue of its own, bound where the requests go
                channel = await rogue.channel()
                queue = await channel.declare_queue(f"{names.name}.md.{mallory.key_id}.tap", exclusive=True)
                await queue.bind(names.command_exchange, routing_key=names.commands)

            async def forge_reply() -> None:  # straight into alice's reply queue, through the default exchange
                channel = await rogue.channel(publisher_confirms=True)
                await channel.default_exchange.publish(aio_pika.Message(b"forged", correlation_id="x"), routing_key=trader._reply_name)

            async def act_as_alice() -> None:  # a request under alice's key id
                channel = await rogue.channel(publisher_confirms=True)
                exchange_ = await channel.get_exchange(names.command_exchange, ensure=False)
                body = encode_commands([PlaceOrder("alice", "m1", SYM, Side.SELL, 1000, PX + 100)], lambda s: INSTRUMENT, 1)
                message = aio_pika.Message(body.SerializeToString(), user_id=alice.key_id, type="batch", reply_to="x")
                await exchange_.publish(message, routing_key=names.commands)

            assert await refused(consume_commands(), ChannelAccessRefused)
            assert await refused(tap_command_exchange(), ChannelAccessRefused)
            assert await refused(forge_reply(), ChannelAccessRefused)
            assert await refused(act_as_alice(), ChannelPreconditionFailed)
            try:
                for i in range(10):
                    events = (await trader.submit([PlaceOrder("alice", f"a{i}", SYM, Side.BUY, 1000, PX - 100 - i)]))[0]
                    assert any(isinstance(e, OrderAccepted) and e.trader == "alice" for e in events), events
            finally:
                await trader.close()
                await rogue.close()
            assert seen == []  # the rogue took none of alice's requests
            assert len(gateway.open_orders("alice")) == 10  # each reached the exchange, and only the exchange
            assert [o.client_order_id for o in gateway.open_orders("alice")] == [f"a{i}" for i in range(10)]

    asyncio.run(asyncio.wait_for(main(), 120))


def test_no_guest_and_a_revoked_key_loses_its_broker_user(tmp_path: Path) -> None:
    bob = create_key(tmp_path, "bob")

    async def main() -> None:
        async with exchange(tmp_path) as (_, url):
            base, _ = strip_name(url)
            with pytest.raises(AuthFailure):  # the broker refused the login: guest is not there
                await connect(client_url(base, "guest", "guest"))
            connected = await login(url, bob)
            closed = asyncio.Event()
            connected.close_callbacks.add(lambda *_: closed.set())
            revoke_key(tmp_path, bob.key_id)
            await asyncio.wait_for(closed.wait(), 60)  # bounded: one keyring check, then rabbitmqctl delete_user
            client = AmqpClient("bob", url, credential=bob)
            with pytest.raises(AuthFailure):
                await client.connect()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_a_user_the_vhost_refuses_is_a_refused_login_and_a_keyed_client_waits_for_its_permissions(tmp_path: Path) -> None:
    """A key's broker user exists a moment before its permissions: the client retries, as for a user not yet made."""
    from transports.amqp.local import auth_broker
    from transports.amqp.users import permissions

    carol = create_key(tmp_path, "carol")

    async def main() -> None:
        async with exchange(tmp_path) as (_, url):
            base, name = strip_name(url)
            vhost = base.rsplit("/", 1)[1]
            ctl = auth_broker().ctl
            assert ctl("clear_permissions", "-p", vhost, carol.key_id).returncode == 0  # as just after the user was made
            with pytest.raises(AuthFailure):  # not NotConnected: the broker refused this user the vhost
                await connect(client_url(base, carol.key_id, carol.amqp_password))
            client = AmqpClient("carol", url, credential=carol)
            connecting = asyncio.create_task(client.connect())
            await asyncio.sleep(1.0)
            assert not connecting.done()  # still retrying the refused open
            allowed = permissions(name or "", carol.key_id)
            granted = ctl("set_permissions", "-p", vhost, carol.key_id, allowed["configure"], allowed["write"], allowed["read"])
            assert granted.returncode == 0, granted.stderr
            await asyncio.wait_for(connecting, 10)  # connected once the permissions landed, and trading
            (replies,) = await client.submit([PlaceOrder("", "c1", SYM, Side.BUY, 1, PX)])
            accepted = [e for e in replies if isinstance(e, OrderAccepted)]
            assert [a.trader for a in accepted] == ["carol"]
            await client.close()

    asyncio.run(asyncio.wait_for(main(), 120))
