"""One contract, every transport.

Each test runs once per transport registered in ``transports.registry`` (the
in-process one included): a fresh gateway is served over the transport in this
event loop, and clients built by the registry talk to it. A new transport
registers and passes this suite without editing it.

Each test runs a second time, with keys (``--auth keys``), over every
transport that authenticates (``transports.registry.authenticating``; test
ids ``http-keys``, ``nats-keys``, ...; ``inproc`` has no wire, so it runs
unauthenticated only). That venue has a fresh keyring
(``tests.support.auth.TraderKeys``) holding a key for each trader of
``TRADERS`` (any other trader a test names gets one on first use), and each
client proves its trader's key the wire's own way: the trader comes from the
key, never from a name the client sends. Both passes run every test and
assert the same outcomes; where authentication changes what a user sees (an
outsider's bytes are refused before they are read), the test asserts each
mode's own outcome.

A descriptor's ``replies`` says what a reply holds: ``"events"``, every event
of the engine for the commands; ``"own_view"`` (FIX), the submitter's own view
(its order accepted, its fills with the taker's remaining, its cancels), as a
venue must not name a counterparty. Where the two differ, a test asserts the
own-view projection of the same outcome, and what a reply leaves out it reads
from the book and order queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import (
    AddInstrument,
    BookDelta,
    CancelOrder,
    CancelReason,
    Command,
    Engine,
    Event,
    ExchangeError,
    Instrument,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderType,
    Overloaded,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    RiskLimits,
    Side,
    TimeInForce,
    TradeExecuted,
)
from tests.support.auth import TraderKeys, keyed_client, serve_keyed
from transports.codec import lean
from transports.core.client import TraderClient
from transports.core.gateway import Gateway, GatewayConfig
from transports.core.marketdata import BookSnapshot, MarketUpdate, PublicTrade
from transports.registry import TRANSPORTS, make_client, serve

SYM = "BTC-USD"
# Tick 0.01 and lot 0.001; quantities between 0.001 and 100; 10% band around 30000.
INSTRUMENT = Instrument.create(SYM, "0.01", "0.001", min_qty="0.002", max_qty="100", price_band_bps=1000, reference_price="30000.00")
PX = 3_000_000  # 30000.00 in ticks
BUY, SELL = Side.BUY, Side.SELL
RISK = {"risky": RiskLimits(max_order_qty=Decimal("5"), max_notional=Decimal("60000"), max_open_orders=2)}
# Every trader the contract tests act as: a keyed venue issues their keys up front, in one keyring write each and one
# broker sync, instead of one reload per trader mid-test.
TRADERS = ("alice", "bob", "carol", "hitter", "maker", "mallory", "other", "quitter", "risky", "stayer", "strict", "taker", "watcher")


class Wire(str):
    """A transport's name, and whether the contract venue serves it with keys: the suite's ``transport`` parameter.

    It is the name itself (``TRANSPORTS[wire]`` and ``full_replies(wire)`` read it as one), so a test that takes
    ``transport: str`` runs in both modes without knowing which.
    """

    keys: bool

    def __new__(cls, name: str, keys: bool = False) -> Wire:
        wire = super().__new__(cls, name)
        wire.keys = keys
        return wire


def with_keys(transport: str) -> bool:
    return isinstance(transport, Wire) and transport.keys


class Venue:
    """A gateway served over one transport, and a way to get clients for it (each proving its trader's key, with keys)."""

    def __init__(self, transport: str, gateway: Gateway, url: str, keys: TraderKeys | None = None) -> None:
        self.transport = str(transport)
        self.gateway = gateway
        self.url = url
        self.keys = keys  # None: --auth off, a client is whoever it names
        self._clients: list[TraderClient] = []

    async def client(self, trader: str) -> TraderClient:
        if self.keys is None:
            client = make_client(self.transport, trader, self.url)
        else:
            client = keyed_client(self.transport, self.keys.credential(trader), self.url)
        await client.connect()
        self._clients.append(client)
        return client

    async def close_clients(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.close()
        self._clients.clear()


@contextlib.asynccontextmanager
async def venue(transport: str, journal: Path | None = None, **config: Any) -> AsyncIterator[Venue]:
    gateway = Gateway(Engine(trader_limits=RISK), GatewayConfig(journal=str(journal) if journal else None, **config))
    await gateway.start([INSTRUMENT])
    try:
        with contextlib.ExitStack() as keyring_dir:
            keys: TraderKeys | None = None
            if with_keys(transport):  # a fresh keyring per venue, gone with it
                keys = TraderKeys(Path(keyring_dir.enter_context(tempfile.TemporaryDirectory(prefix="dex-keys-"))), TRADERS)
            async with serve(transport, gateway) if keys is None else serve_keyed(transport, gateway, keys.keyring) as url:
                v = Venue(transport, gateway, url, keys)
                try:
                    yield v
                finally:
                    await v.close_clients()
    finally:
        await gateway.stop()


def run(transport: str, scenario: Callable[[Venue], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        async with venue(transport, **config) as v:
            await asyncio.wait_for(scenario(v), 60)

    asyncio.run(main())


def limit(coid: str, side: Side, qty: int, price: int, **kw: Any) -> PlaceOrder:
    return PlaceOrder("", coid, SYM, side, qty, price, **kw)


async def aclose(stream: object) -> None:
    """Close a market-data stream (every client returns an async generator)."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


def of(kind: type[Any], events: list[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def full_replies(transport: str) -> bool:
    """Whether a reply carries every event of the engine (else the submitter's own view: ``own_view``)."""
    return TRANSPORTS[transport].replies == "events"


def own_view(events: list[Event], trader: str) -> list[tuple[object, ...]]:
    """What a reply tells ``trader`` about its own orders: no book deltas, no counterparty, no one else's orders."""
    seen: list[tuple[object, ...]] = []
    for e in events:
        if isinstance(e, OrderAccepted) and e.trader == trader:
            seen.append(("accepted", e.order_id, e.client_order_id, e.side, e.order_type, e.tif, e.price, e.qty))
        elif isinstance(e, TradeExecuted) and e.taker_trader == trader:
            seen.append(("traded", e.price, e.qty, e.taker_order_id, e.taker_remaining))
        elif isinstance(e, OrderCancelled) and e.trader == trader:
            seen.append(("cancelled", e.order_id, e.reason, e.qty, e.remaining))
        elif isinstance(e, OrderReplaced) and e.trader == trader:
            seen.append(("replaced", e.order_id, e.price, e.qty, e.priority_kept))
        elif isinstance(e, OrderRejected) and e.trader == trader:
            seen.append(("rejected", e.client_order_id, e.reason))
    return seen


async def one(client: TraderClient, command: Command) -> list[Event]:
    return (await client.submit([command]))[0]


async def outsider_refused(probe: Callable[[str], Awaitable[RejectReason]], url: str) -> bool:
    """Whether a keyed venue refused the malformed probe of a client that holds no key.

    A wire that reads each request answers ``UNAUTHENTICATED`` (HTTP, DHT), or
    a FIX server ends a session whose first message is no Logon (the probe
    reads that Logout as ``MALFORMED_MESSAGE``); a wire that authenticates the
    connection lets it in nowhere: a broker refuses the login (NATS, RabbitMQ:
    ``UNAUTHENTICATED``), a TLS or CURVE handshake never completes (gRPC,
    ZeroMQ: the library's own error or timeout).
    """
    try:
        reason = await asyncio.wait_for(probe(url), 15)
    except ExchangeError as exc:
        return exc.reason is RejectReason.UNAUTHENTICATED
    except Exception:  # each wire's library raises its own kind for a connection it could not open
        return True
    return reason in (RejectReason.UNAUTHENTICATED, RejectReason.MALFORMED_MESSAGE)


async def reason_of(client: TraderClient, command: Command) -> RejectReason:
    """The reject reason, whether the engine rejected it or the wire refused it before the engine."""
    try:
        events = await one(client, command)
    except ExchangeError as exc:
        return exc.reason
    rejected: list[OrderRejected] = of(OrderRejected, events)
    assert rejected, f"expected a reject, got {events}"
    return rejected[0].reason


# ------------------------------------------------------------------ basics
def test_place_rests_and_shows_in_the_book(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        events = await one(alice, limit("a1", BUY, 1500, PX - 100))
        accepted = of(OrderAccepted, events)[0]
        assert (accepted.trader, accepted.client_order_id, accepted.price, accepted.qty) == ("alice", "a1", PX - 100, 1500)
        if full_replies(v.transport):
            assert of(BookDelta, events)[0].qty == 1500
        else:  # the book is public data: read from the book query below, never in a private reply
            assert not of(BookDelta, events)
        book = await alice.book(SYM, 5)
        assert [(lvl.price, lvl.qty, lvl.order_count) for lvl in book.bids] == [(PX - 100, 1500, 1)]
        status = await alice.order(accepted.order_id)
        assert status is not None and status.status is OrderStatus.NEW and status.remaining == 1500

    run(transport, scenario)


def test_partial_then_full_fill_at_the_makers_price(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        carol, alice, bob = await v.client("carol"), await v.client("alice"), await v.client("bob")
        maker = of(OrderAccepted, await one(carol, limit("c1", SELL, 5000, PX)))[0]
        first = of(TradeExecuted, await one(alice, limit("a1", BUY, 3000, PX + 500)))
        if full_replies(v.transport):
            makers_view = [(t.price, t.qty, t.maker_trader, t.taker_trader, t.maker_remaining) for t in first]
            assert makers_view == [(PX, 3000, "carol", "alice", 2000)]
        else:  # the taker's own view: its fill at the maker's price, the maker unnamed (its remaining: the order query)
            assert [(t.price, t.qty, t.maker_trader, t.taker_trader, t.taker_remaining) for t in first] == [(PX, 3000, "", "alice", 0)]
        partial = await carol.order(maker.order_id)
        assert partial is not None and partial.status is OrderStatus.PARTIALLY_FILLED and partial.filled == 3000
        assert partial.remaining == 2000
        second = of(TradeExecuted, await one(bob, limit("b1", BUY, 2000, PX)))
        if full_replies(v.transport):
            assert [(t.qty, t.maker_remaining, t.taker_remaining) for t in second] == [(2000, 0, 0)]
        else:
            assert [(t.price, t.qty, t.maker_trader, t.taker_remaining) for t in second] == [(PX, 2000, "", 0)]
        done = await carol.order(maker.order_id)
        assert done is not None and done.status is OrderStatus.FILLED
        assert (await carol.book(SYM)).asks == []

    run(transport, scenario)


def test_cancel_own_order_and_not_anothers(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice, mallory = await v.client("alice"), await v.client("mallory")
        order_id = of(OrderAccepted, await one(alice, limit("a1", BUY, 1000, PX - 10)))[0].order_id
        assert await reason_of(mallory, CancelOrder("", order_id)) is RejectReason.UNKNOWN_ORDER
        assert await mallory.order(order_id) is None
        cancelled = of(OrderCancelled, await alice.cancel(order_id))
        assert [(c.order_id, c.reason, c.qty) for c in cancelled] == [(order_id, CancelReason.USER, 1000)]
        assert (await alice.book(SYM)).bids == []

    run(transport, scenario)


def test_replace_keeps_priority_on_a_decrease_and_loses_it_on_a_price_change(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice, bob, taker = await v.client("alice"), await v.client("bob"), await v.client("taker")
        first = of(OrderAccepted, await one(alice, limit("a1", SELL, 4000, PX)))[0].order_id
        second = of(OrderAccepted, await one(bob, limit("b1", SELL, 4000, PX)))[0].order_id
        kept = of(OrderReplaced, await one(alice, ReplaceOrder("", first, 0, 2000, SYM)))[0]
        assert kept.priority_kept and kept.qty == 2000
        trades = of(TradeExecuted, await one(taker, limit("t1", BUY, 1000, PX)))
        if full_replies(v.transport):
            assert [t.maker_trader for t in trades] == ["alice"]  # still first in the queue
        else:  # the taker is not told whom it traded with: the makers' own orders say who was first
            assert [(t.qty, t.maker_trader) for t in trades] == [(1000, "")]
            alices, bobs = await alice.order(first), await bob.order(second)
            assert alices is not None and (alices.filled, alices.remaining) == (1000, 1000)  # still first in the queue
            assert bobs is not None and (bobs.filled, bobs.remaining) == (0, 4000)
        moved = of(OrderReplaced, await one(alice, ReplaceOrder("", first, PX + 1, 0, SYM)))[0]
        assert not moved.priority_kept and moved.price == PX + 1
        book = await alice.book(SYM)
        assert [(lvl.price, lvl.qty) for lvl in book.asks] == [(PX, 4000), (PX + 1, 1000)]

    run(transport, scenario)


def test_mass_cancel_takes_only_the_callers_orders(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice, bob = await v.client("alice"), await v.client("bob")
        await alice.submit([limit(f"a{i}", BUY, 1000, PX - 10 - i) for i in range(3)])
        await bob.submit([limit("b1", BUY, 1000, PX - 50)])
        cancelled = of(OrderCancelled, await alice.mass_cancel(SYM))
        assert len(cancelled) == 3 and {c.reason for c in cancelled} == {CancelReason.MASS_CANCEL}
        assert [(lvl.price, lvl.qty) for lvl in (await bob.book(SYM)).bids] == [(PX - 50, 1000)]

    run(transport, scenario)


def test_ioc_fok_market_and_stop_orders(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        maker, taker, hitter = await v.client("maker"), await v.client("taker"), await v.client("hitter")
        await maker.submit([limit("m1", SELL, 2000, PX), limit("m2", SELL, 2000, PX + 100)])
        fok = await one(taker, limit("t1", BUY, 9000, PX + 100, tif=TimeInForce.FOK))
        assert not of(TradeExecuted, fok) and of(OrderCancelled, fok)[0].reason is CancelReason.FOK_NOT_FILLED
        ioc = await one(taker, limit("t2", BUY, 3000, PX, tif=TimeInForce.IOC))
        assert [t.qty for t in of(TradeExecuted, ioc)] == [2000]
        assert of(OrderCancelled, ioc)[0].reason is CancelReason.IOC_REMAINDER
        stop = await one(taker, PlaceOrder("", "t3", SYM, BUY, 500, 0, OrderType.STOP_MARKET, stop_price=PX + 100))
        stop_id = of(OrderAccepted, stop)[0].order_id
        market = await one(hitter, PlaceOrder("", "h1", SYM, BUY, 500, 0, OrderType.MARKET))
        kinds = [type(e).__name__ for e in market]
        if full_replies(v.transport):
            assert "StopTriggered" in kinds, kinds  # the market buy printed at PX+100 and fired the stop
        else:  # the hitter sees its own fill; the taker's stop, fired by it, is the taker's to read
            assert [(t.price, t.qty, t.taker_remaining) for t in of(TradeExecuted, market)] == [(PX + 100, 500, 0)]
            assert "StopTriggered" not in kinds, kinds
            fired = await taker.order(stop_id)
            assert fired is not None and (fired.status, fired.filled) == (OrderStatus.FILLED, 500)
        # 2000 at PX+100, less 500 (the market buy) and 500 (the triggered stop).
        assert [(lvl.price, lvl.qty) for lvl in (await taker.book(SYM)).asks] == [(PX + 100, 1000)]

    run(transport, scenario)


# ----------------------------------------------------------------- rejects
def test_every_reject_reason_reaches_the_client(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice, risky, other = await v.client("alice"), await v.client("risky"), await v.client("other")
        assert await reason_of(alice, PlaceOrder("", "x1", "NOPE-USD", BUY, 1000, PX)) is RejectReason.UNKNOWN_SYMBOL
        assert await reason_of(alice, limit("x2", BUY, 1000, 0)) is RejectReason.INVALID_PRICE
        assert await reason_of(alice, limit("x3", BUY, 0, PX)) in (RejectReason.INVALID_QUANTITY, RejectReason.MALFORMED_MESSAGE)
        assert await reason_of(alice, limit("x4", BUY, 1, PX)) is RejectReason.QUANTITY_BELOW_MIN
        assert await reason_of(alice, limit("x5", BUY, 100_001, PX)) is RejectReason.QUANTITY_ABOVE_MAX
        market_with_stop = PlaceOrder("", "x6", SYM, BUY, 1000, 0, OrderType.MARKET, stop_price=PX)
        assert await reason_of(alice, market_with_stop) is RejectReason.INVALID_ORDER
        assert await reason_of(alice, limit("x7", BUY, 1000, PX * 2)) is RejectReason.PRICE_OUT_OF_BAND
        await one(alice, limit("dup", BUY, 1000, PX - 100))
        assert await reason_of(alice, limit("dup", BUY, 1000, PX - 100)) is RejectReason.DUPLICATE_CLIENT_ORDER_ID
        await one(other, limit("o1", SELL, 1000, PX))
        assert await reason_of(alice, limit("x8", BUY, 1000, PX, post_only=True)) is RejectReason.POST_ONLY_WOULD_TAKE
        assert await reason_of(alice, CancelOrder("", 999_999)) is RejectReason.UNKNOWN_ORDER
        stop = of(OrderAccepted, await one(alice, PlaceOrder("", "s1", SYM, SELL, 1000, 0, OrderType.STOP_MARKET, stop_price=PX - 500)))
        assert await reason_of(alice, ReplaceOrder("", stop[0].order_id, 0, 2000, SYM)) is RejectReason.ORDER_NOT_REPLACEABLE
        assert await reason_of(risky, limit("r1", BUY, 6000, PX - 100)) is RejectReason.RISK_MAX_ORDER_QTY
        assert await reason_of(risky, limit("r2", BUY, 2100, PX - 100)) is RejectReason.RISK_MAX_NOTIONAL
        await risky.submit([limit("r3", BUY, 1000, PX - 100), limit("r4", BUY, 1000, PX - 100)])
        assert await reason_of(risky, limit("r5", BUY, 1000, PX - 100)) is RejectReason.RISK_MAX_OPEN_ORDERS

    run(transport, scenario)


def test_a_full_gateway_refuses_a_batch_whole_and_applies_none_of_it(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        # More than the whole queue holds: refused whole, as OVERLOADED or (by a
        # server that knows it could never fit: max_batch is bounded by the queue) LIMIT_EXCEEDED.
        with pytest.raises(ExchangeError) as info:
            await alice.submit([limit(f"a{i}", BUY, 1000, PX - 100) for i in range(50)])
        assert info.value.reason in (RejectReason.OVERLOADED, RejectReason.LIMIT_EXCEEDED)
        assert await alice.order(1) is None and (await alice.book(SYM)).bids == []
        assert v.gateway.stats_dict()["orders"] == 0
        assert len(await alice.submit([limit("ok", BUY, 1000, PX - 100)])) == 1

    run(transport, scenario, buffer=20)


def test_an_overloaded_gateway_says_retry(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        v.gateway._queued = v.gateway.config.buffer  # the queue is full (others' work in flight)
        try:
            with pytest.raises(Overloaded) as info:
                await alice.submit([limit("a1", BUY, 1000, PX - 100)])
            assert info.value.reason is RejectReason.OVERLOADED
        finally:
            v.gateway._queued = 0
        assert (await alice.book(SYM)).bids == []
        assert of(OrderAccepted, (await alice.submit([limit("a1", BUY, 1000, PX - 100)]))[0])  # the retry goes through

    run(transport, scenario, buffer=20)


# ------------------------------------------------------------ batches, md
def test_a_batch_of_ten_thousand_comes_back_in_order(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        batch = [
            limit(f"a{i}", BUY if i % 2 else SELL, 1000 + i % 7, PX - 1000 - i % 500 if i % 2 else PX + 1000 + i % 500)
            for i in range(10_000)
        ]
        replies = await alice.submit(batch)
        assert len(replies) == 10_000
        assert [of(OrderAccepted, r)[0].client_order_id for r in replies] == [c.client_order_id for c in batch]
        assert v.gateway.stats_dict()["accepted"] == 10_000

    run(transport, scenario)


def test_market_data_snapshot_plus_updates_equal_the_book(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        alice, bob = await v.client("alice"), await v.client("bob")
        await alice.submit([limit(f"a{i}", SELL, 1000, PX + i * 10) for i in range(5)])
        stream = alice.market_data([SYM])
        snapshot = await anext(stream)
        assert isinstance(snapshot, BookSnapshot)
        book = {(Side.SELL, lvl.price): lvl.qty for lvl in snapshot.depth.asks}
        book.update({(Side.BUY, lvl.price): lvl.qty for lvl in snapshot.depth.bids})
        await bob.submit([limit("b1", BUY, 2500, PX + 10), limit("b2", BUY, 1000, PX - 50)])
        expected_md = snapshot.md_seq + 1
        trades = 0
        while True:
            update = await asyncio.wait_for(anext(stream), 10)
            assert isinstance(update, MarketUpdate) and update.md_seq == expected_md
            expected_md += 1
            if isinstance(update.event, PublicTrade):  # anonymous: no traders, order ids or remaining quantities
                trades += 1
                continue
            delta = update.event
            if delta.qty:
                book[(delta.side, delta.price)] = delta.qty
            else:
                book.pop((delta.side, delta.price), None)
            if (Side.BUY, PX - 50) in book:
                break
        await aclose(stream)
        depth = await bob.book(SYM, 50)
        expected = {(Side.SELL, lvl.price): lvl.qty for lvl in depth.asks}
        expected.update({(Side.BUY, lvl.price): lvl.qty for lvl in depth.bids})
        assert book == expected and trades == 2

    run(transport, scenario)


def test_a_client_that_disconnects_mid_stream_does_not_disturb_others(transport: str) -> None:
    async def scenario(v: Venue) -> None:
        quitter, stayer = await v.client("quitter"), await v.client("stayer")
        stream = quitter.market_data([SYM])
        await anext(stream)
        pending = asyncio.ensure_future(quitter.submit([limit(f"q{i}", BUY, 1000, PX - 200 - i) for i in range(2000)]))
        await asyncio.sleep(0)
        await quitter.close()  # while its batch and its market data are in flight
        with contextlib.suppress(BaseException):
            await pending
        with contextlib.suppress(BaseException):
            await aclose(stream)
        replies = await stayer.submit([limit("s1", SELL, 1000, PX + 300)])
        assert of(OrderAccepted, replies[0])
        assert (await stayer.book(SYM)).asks[0].price == PX + 300

    run(transport, scenario)


def test_server_restart_on_the_same_journal_keeps_every_acknowledged_order(transport: str, tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"

    async def first_life() -> list[int]:
        async with venue(transport, journal) as v:
            alice = await v.client("alice")
            replies = await alice.submit([limit(f"a{i}", BUY, 1000, PX - 100 - i) for i in range(50)])
            return [of(OrderAccepted, r)[0].order_id for r in replies]

    async def second_life(order_ids: list[int]) -> None:
        async with venue(transport, journal) as v:
            alice = await v.client("alice")
            for order_id in order_ids:
                status = await alice.order(order_id)
                assert status is not None and status.status is OrderStatus.NEW
            assert sum(lvl.qty for lvl in (await alice.book(SYM, 100)).bids) == 50 * 1000
            again = await alice.submit([limit("a0", BUY, 1000, PX - 100)])
            assert of(OrderRejected, again[0])[0].reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID

    ids = asyncio.run(first_life())
    asyncio.run(second_life(ids))


# ------------------------------------------------------- same engine, same answer
def _digest(events: list[Event]) -> str:
    import hashlib

    h = hashlib.sha256()
    for event in events:
        h.update(repr(event).encode())
    return h.hexdigest()


def test_the_same_workload_gives_the_same_events_and_state_as_the_engine_alone(transport: str) -> None:
    from transports.core.trader_identity import bind_trader
    from transports.core.workload import OrderFlow

    batches = [OrderFlow(2026, "alice", [INSTRUMENT]).batch(250) for _ in range(12)]

    reference = Engine(trader_limits=RISK)
    reference.handle(AddInstrument(INSTRUMENT))  # the venue lists the instrument itself
    expected_replies = [reference.handle(bind_trader(c, "alice")) for b in batches for c in b]
    expected = [e for reply in expected_replies for e in reply]

    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        replies: list[list[Event]] = []
        for batch in batches:
            replies.extend(await alice.submit(batch))
        seen = [e for reply in replies for e in reply]
        if full_replies(v.transport):
            assert len(seen) == len(expected)
            assert _digest(seen) == _digest(expected)
        else:  # each reply, the engine's events for its command as its submitter sees them
            assert len(replies) == len(expected_replies)
            assert [own_view(r, "alice") for r in replies] == [own_view(r, "alice") for r in expected_replies]
            assert sum(1 for r in expected_replies for _ in own_view(r, "alice")) > len(expected_replies)  # fills among them
        assert v.gateway.engine.state_hash() == reference.state_hash()

    run(transport, scenario)


def test_malformed_input_gets_a_clear_reason_and_the_server_keeps_serving(transport: str) -> None:
    probe = TRANSPORTS[transport].send_malformed

    async def scenario(v: Venue) -> None:
        alice = await v.client("alice")
        if probe is None:  # no wire to send bytes over: the gateway refuses what is not a command
            with pytest.raises(ExchangeError) as info:
                await v.gateway.submit([b"\xff not a command"])  # type: ignore[list-item]
            assert info.value.reason is RejectReason.MALFORMED_MESSAGE
        elif v.keys is None:
            assert await probe(v.url) is RejectReason.MALFORMED_MESSAGE
        else:
            # The probe holds no key: with keys its bytes are refused before they are read, the wire's own way.
            assert await outsider_refused(probe, v.url)
            # A trader's malformed input, over its proved channel, still gets the clear reason.
            bad = lean.parse_orders(lean.encode_orders([CancelOrder("", 1)]))
            bad.side[0] = 2  # a cancel takes no side
            with pytest.raises(ExchangeError) as info:
                await alice.submit_orders(bad.SerializeToString())
            assert info.value.reason is RejectReason.MALFORMED_MESSAGE
        assert v.gateway.stats_dict()["orders"] == 0  # nothing of it reached the engine
        assert of(OrderAccepted, (await alice.submit([limit("a1", BUY, 1000, PX - 100)]))[0])

    run(transport, scenario)


# ------------------------------------------------------- cancel on disconnect
async def _rest(client: TraderClient, prefix: str, count: int, offset: int) -> list[int]:
    replies = await client.submit([limit(f"{prefix}{i}", BUY, 1000, PX - offset - i) for i in range(count)])
    return [of(OrderAccepted, reply)[0].order_id for reply in replies]


async def _bid_prices(client: TraderClient) -> set[int]:
    return {level.price for level in (await client.book(SYM, 100)).bids}


def test_cancel_on_disconnect_cancels_a_silent_traders_orders_and_no_one_elses(transport: str) -> None:
    from transports.core.sessions import MIN_GRACE_MS

    grace_ms = 200

    async def scenario(v: Venue) -> None:
        alice, bob, watcher = await v.client("alice"), await v.client("bob"), await v.client("watcher")
        alices = await _rest(alice, "a", 3, 300)
        await _rest(bob, "b", 2, 400)  # bob never arms it
        assert await alice.cancel_on_disconnect(grace_ms) == grace_ms >= MIN_GRACE_MS
        await alice.close()
        await bob.close()
        bobs_prices = {PX - 400, PX - 401}
        async with asyncio.timeout(grace_ms / 1000 + 10):  # bounded: the grace, and a loaded machine's slack
            while await _bid_prices(watcher) != bobs_prices:
                await asyncio.sleep(0.02)
        again = await v.client("alice")
        for order_id in alices:
            status = await again.order(order_id)
            assert status is not None and status.status is OrderStatus.CANCELLED and status.remaining == 0
        assert (await watcher.stats())["cancelled_by_reason"] == {CancelReason.CANCEL_ON_DISCONNECT.name: 3}
        await asyncio.sleep(2 * grace_ms / 1000)
        assert await _bid_prices(watcher) == bobs_prices  # bob, who never armed it, keeps his orders

    run(transport, scenario)


def test_cancel_on_disconnect_spares_a_live_or_reconnected_trader_and_can_be_disarmed(transport: str) -> None:
    from transports.core.sessions import MAX_GRACE_MS, MIN_GRACE_MS

    grace_ms = 1000

    async def scenario(v: Venue) -> None:
        alice, watcher = await v.client("alice"), await v.client("watcher")
        for wrong in (MIN_GRACE_MS - 1, MAX_GRACE_MS + 1):
            with pytest.raises(ExchangeError) as info:
                await alice.cancel_on_disconnect(wrong)
            assert info.value.reason is RejectReason.MALFORMED_MESSAGE
        await _rest(alice, "a", 2, 300)
        prices = {PX - 300, PX - 301}
        assert await alice.cancel_on_disconnect(grace_ms) == grace_ms
        await asyncio.sleep(1.5 * grace_ms / 1000)  # longer than the grace: the client's heartbeats keep it alive
        assert await _bid_prices(watcher) == prices
        await alice.close()
        back = await v.client("alice")  # reconnects within the grace and arms it again
        assert await back.cancel_on_disconnect(grace_ms) == grace_ms
        await asyncio.sleep(1.5 * grace_ms / 1000)
        assert await _bid_prices(watcher) == prices
        assert await back.cancel_on_disconnect(0) == 0  # disarmed: closing costs nothing
        await back.close()
        await asyncio.sleep(1.2 * grace_ms / 1000)
        assert await _bid_prices(watcher) == prices
        assert CancelReason.CANCEL_ON_DISCONNECT.name not in (await watcher.stats())["cancelled_by_reason"]

    run(transport, scenario)


# ------------------------------------------------------- every command exactly once
def test_a_retried_request_id_acts_once_and_gets_its_first_answer_also_after_a_restart(transport: str, tmp_path: Path) -> None:
    """docs/exactly-once.md: a cancel, replace or mass cancel retried with its request id, on every wire and form."""
    journal = tmp_path / "journal.log"

    async def first_life() -> tuple[int, list[Event]]:
        async with venue(transport, journal) as v:
            alice = await v.client("alice")
            placed = await alice.submit([limit(f"a{i}", BUY, 1000, PX - 10 - i) for i in range(3)])
            o1, o2, _ = (of(OrderAccepted, r)[0].order_id for r in placed)
            cancelled = await alice.cancel(o1, request_id=1)
            assert await alice.cancel(o1, request_id=1) == cancelled and of(OrderCancelled, cancelled)[0].order_id == o1
            replaced = await alice.replace(o2, SYM, new_price=PX - 5, request_id=2)
            assert await alice.replace(o2, SYM, new_price=PX - 5, request_id=2) == replaced
            assert of(OrderReplaced, replaced)[0].price == PX - 5
            sweep = lean.encode_orders([MassCancel("alice", request_id=3)])
            swept = await alice.submit_orders(sweep)
            await alice.submit([limit("late", BUY, 1000, PX - 50)])  # placed after the sweep: its retry leaves it alone
            again = await alice.submit_orders(sweep)
            assert (again.outcome, again.cancelled) == (swept.outcome, swept.cancelled) == ([lean.CANCELLED], [2])
            assert [(lvl.price, lvl.qty) for lvl in (await alice.book(SYM)).bids] == [(PX - 50, 1000)]
            assert (await alice.stats())["repeated_requests"] == 3
            return o1, cancelled

    async def second_life(o1: int, cancelled: list[Event]) -> None:
        async with venue(transport, journal) as v:
            alice = await v.client("alice")
            assert await alice.cancel(o1, request_id=1) == cancelled  # rebuilt from the journal: the same answer
            stats = await alice.stats()
            assert stats["repeated_requests"] == 1 and stats["cancelled_by_reason"] == {}

    asyncio.run(second_life(*asyncio.run(first_life())))
