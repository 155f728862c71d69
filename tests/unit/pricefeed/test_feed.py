"""The feed loop and the ZeroMQ publisher, over a real PUB/SUB socket pair."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import zmq

from pricefeed.feed import run_feed
from pricefeed.publishers import ZmqPublisher, make_publishers
from pricefeed.sources import FileReplay, RandomWalk, SourceUnavailable
from pricefeed.update import PriceUpdate, Quote, Sequencer


class Collected:
    """A publisher that keeps what it is given (the feed loop's contract, without a broker)."""

    name = "collected"

    def __init__(self) -> None:
        self.updates: list[PriceUpdate] = []

    async def connect(self) -> None:
        return None

    async def publish(self, update: PriceUpdate) -> None:
        self.updates.append(update)

    async def close(self) -> None:
        return None


def test_feed_publishes_every_pair_each_round_with_increasing_seq():
    sink = Collected()
    stats = asyncio.run(run_feed(RandomWalk(1), [sink], ["BTC-USD", "ETH-USD"], 0.0, count=3, sequencer=Sequencer(start=10)))
    assert stats.published == 6
    assert [(u.pair, u.seq) for u in sink.updates] == [
        ("BTC-USD", 10), ("ETH-USD", 10), ("BTC-USD", 11), ("ETH-USD", 11), ("BTC-USD", 12), ("ETH-USD", 12),
    ]  # fmt: skip
    assert all(u.source == "random" and isinstance(u.price, Decimal) for u in sink.updates)


def test_feed_stops_at_the_end_of_a_replay(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("pair,price\nBTC-USD,1.00\nBTC-USD,1.01\n")
    sink = Collected()
    stats = asyncio.run(run_feed(FileReplay(path), [sink], ["BTC-USD"], 0.0, count=10))
    assert [u.price for u in sink.updates] == [Decimal("1.00"), Decimal("1.01")]
    assert stats.rounds == 3


def test_feed_survives_an_unavailable_source_and_retries_next_round():
    class Flaky:
        name = "flaky"
        calls = 0

        async def quotes(self, pairs: list[str]) -> list[Quote]:
            self.calls += 1
            if self.calls == 1:
                raise SourceUnavailable("kraken: unreachable")
            return [Quote("BTC-USD", Decimal(1), Decimal(2), Decimal("1.5"))]

        async def close(self) -> None:
            return None

    sink = Collected()
    stats = asyncio.run(run_feed(Flaky(), [sink], ["BTC-USD"], 0.0, count=2))
    assert stats.source_errors == 1
    assert len(sink.updates) == 1


def test_zmq_publisher_sends_pair_and_body_frames_to_a_subscriber():
    async def scenario() -> list[list[bytes]]:
        publisher = ZmqPublisher("tcp://127.0.0.1:0")
        await publisher.connect()
        context = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.connect(publisher.endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, b"ETH-USD")
        got: list[list[bytes]] = []
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:  # PUB drops until the subscription has propagated
            await run_feed(RandomWalk(1), [publisher], ["BTC-USD", "ETH-USD"], 0.0, count=1)
            await asyncio.sleep(0.05)
            while sub.poll(0):
                got.append(sub.recv_multipart())
        sub.close(0)
        context.term()
        await publisher.close()
        return got

    frames = asyncio.run(scenario())
    assert frames and all(f[0] == b"ETH-USD" for f in frames)
    assert PriceUpdate.from_json(frames[0][1]).pair == "ETH-USD"


def test_unknown_publish_target_is_refused():
    try:
        make_publishers("amqp,kafka", amqp_url="", nats_url="", zmq_endpoint="")
    except ValueError as exc:
        assert "kafka" in str(exc)
    else:
        raise AssertionError("kafka accepted")


def test_the_feed_can_take_its_pairs_from_the_bots_enabled_in_a_bot_database(tmp_path):
    from pricefeed.cli import active_pairs
    from traders.bots.store import BotStore, generate_bots

    store = BotStore(tmp_path / "bots.db")
    store.add(generate_bots(4, ["SOL-USD", "ETH-USD"]))
    store.set_enabled("b000000", False)
    store.set_enabled("b000002", False)  # both SOL-USD bots
    assert active_pairs(str(tmp_path / "bots.db")) == ["ETH-USD"]
