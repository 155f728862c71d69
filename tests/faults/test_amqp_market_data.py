"""Market data across a RabbitMQ restart: the subscriber sees the loss as a Gap, resynchronises from a snapshot, and continues."""

from __future__ import annotations

import asyncio

from engine import Engine, Instrument, PlaceOrder, Side
from transports.amqp.broker import LocalRabbitMQ
from transports.amqp.client import AmqpClient
from transports.amqp.server import AmqpServer, AmqpServerSettings
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.marketdata import BookSnapshot, Gap, MarketData, MarketUpdate

SYM = "BTC-USD"
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001")


def _bid(coid: str, price: int) -> PlaceOrder:
    return PlaceOrder("bob", coid, SYM, Side.BUY, 1000, price)


def test_updates_lost_while_the_broker_is_down_show_as_a_gap_then_a_snapshot(private_rabbitmq: LocalRabbitMQ) -> None:
    async def scenario() -> None:
        gateway = Gateway(Engine(), GatewayConfig(journal=None))
        await gateway.start([INSTRUMENT])
        server = AmqpServer(gateway, AmqpServerSettings(url=private_rabbitmq.url, name="mdfaults", journal=None))
        await server.start()
        alice = AmqpClient("alice", server.url, connect_timeout=5.0)
        await alice.connect()
        stream = alice.market_data([SYM])
        seen: list[MarketData] = []
        try:
            seen.append(await asyncio.wait_for(anext(stream), 10))
            assert isinstance(seen[0], BookSnapshot)
            await gateway.submit([_bid("b1", 2_000_000)])
            seen.append(await asyncio.wait_for(anext(stream), 10))
            assert isinstance(seen[-1], MarketUpdate)
            await asyncio.get_running_loop().run_in_executor(None, private_rabbitmq.stop)
            # Orders keep arriving at the gateway (over another transport) while the broker is down.
            await gateway.submit([_bid(f"down{i}", 2_000_010 + i) for i in range(5)])
            await asyncio.sleep(0.5)
            await asyncio.get_running_loop().run_in_executor(None, private_rabbitmq.start)
            await asyncio.sleep(6.0)  # client and server reconnect (backoff at most 5 s) and re-declare their queues
            await gateway.submit([_bid("after", 2_000_100)])
            # Bounded: the gap, the snapshot and the update after it arrive within 30 s.
            # Bounded: the gap and the snapshot arrive within 30 s (the snapshot holds "after": its update came after the jump).
            while not any(isinstance(item, BookSnapshot) and item is not seen[0] for item in seen):
                seen.append(await asyncio.wait_for(anext(stream), 30))
            # And the stream goes on: the next update is the snapshot's md_seq + 1.
            await gateway.submit([_bid("later", 2_000_200)])
            later = await asyncio.wait_for(anext(stream), 30)
            snapshot = seen[-1]
            assert isinstance(later, MarketUpdate) and isinstance(snapshot, BookSnapshot), (later, snapshot)
            assert later.md_seq == snapshot.md_seq + 1 and later.event.price == 2_000_200
            kinds = [type(item).__name__ for item in seen]
            assert "Gap" in kinds, kinds
            after_gap = seen[kinds.index("Gap") + 1]
            assert isinstance(after_gap, BookSnapshot)
            prices = {level.price for level in after_gap.depth.bids}
            assert {2_000_010 + i for i in range(5)} | {2_000_100} <= prices  # what was lost while the broker was down is in it
            gap = next(item for item in seen if isinstance(item, Gap))
            assert gap.dropped >= 1
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            await alice.close()
            await server.stop()
            await gateway.stop()

    asyncio.run(asyncio.wait_for(scenario(), 90))
