"""Hypothesis strategies for the codec tests: random instruments, and commands and events on their ticks.

Every value is something the engine could produce or accept: prices and
quantities are whole ticks and lots of the instrument they name, text is short
enough for the codecs' 64-character limit, ids fit the wire's integer types.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from engine import (
    AddInstrument,
    BookDelta,
    BookDepth,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    Instrument,
    InstrumentAdded,
    L2Level,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OrderStatus,
    OrderType,
    OrderView,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    StopTriggered,
    TimeInForce,
    TradeExecuted,
)
from transports.codec.market_messages import MarketEvent, PublicTrade

# Fast and reproducible: the same examples on every run and every machine.
FAST = settings(derandomize=True, max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(derandomize=True, max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(FAST, max_examples=40)  # for tests whose examples are lists of the above

STEP_SIZES = ("0.01", "0.05", "0.0001", "1", "5", "0.25", "0.001", "10", "0.5", "0.00000001", "100", "2.5", "0.125")

step_sizes = st.one_of(
    st.sampled_from(STEP_SIZES),
    st.builds(lambda c, e: format(Decimal(c).scaleb(e), "f"), st.sampled_from([1, 2, 5, 25, 125, 3, 7]), st.integers(-10, 3)),
)
symbols = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
names = st.text(min_size=1, max_size=20)  # trader ids: never empty on the wire, at most 64 characters
optional_names = st.one_of(st.just(""), names)
steps = st.integers(min_value=1, max_value=10**12)  # a positive number of ticks or lots
maybe_steps = st.one_of(st.just(0), steps)
ids = st.integers(min_value=1, max_value=2**63 - 1)
maybe_ids = st.one_of(st.just(0), ids)
seqs = st.integers(min_value=1, max_value=2**63 - 1)
sides = st.sampled_from(Side)


@st.composite
def instruments(draw: st.DrawFn, symbol: st.SearchStrategy[str] = symbols) -> Instrument:
    name = draw(symbol)
    tick = draw(step_sizes)
    lot = draw(step_sizes)
    base = Instrument.create(name, tick, lot)
    min_lots = draw(st.integers(1, 1000))
    max_lots = draw(st.integers(min_lots, 10**12))
    reference = draw(maybe_steps)
    return Instrument.create(
        name,
        tick,
        lot,
        min_qty=base.format_qty(min_lots),
        max_qty=base.format_qty(max_lots),
        price_band_bps=draw(st.integers(0, 10_000)),
        reference_price=base.format_price(reference) if reference else None,
    )


def json_safe(instrument: Instrument) -> bool:
    """False when ``Instrument.to_dict`` spells a size in exponent form ("1E+1" for 10, "1E-8"), which
    ``Instrument.create`` refuses: such an instrument does not survive JSON or the journal (an engine bug,
    pinned by ``test_roundtrip.test_json_and_journal_lose_instruments_with_exponent_sizes``)."""
    return "E" not in str(instrument.tick_size) + str(instrument.lot_size)


_STOPS = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
_PRICED = (OrderType.LIMIT, OrderType.STOP_LIMIT)


@st.composite
def places(draw: st.DrawFn, symbol: str) -> PlaceOrder:
    """A place whose fields fit its order type (docs/json-format.md): a price only on limit and stop-limit
    orders, a stop price only on stops, post_only only on GTC limits. The decoders refuse any other."""
    order_type = draw(st.sampled_from(OrderType))
    tif = draw(st.sampled_from(TimeInForce))
    return PlaceOrder(
        draw(names),
        draw(optional_names),
        symbol,
        draw(sides),
        draw(steps),
        draw(maybe_steps) if order_type in _PRICED else 0,
        order_type,
        tif,
        draw(st.booleans()) if order_type is OrderType.LIMIT and tif is TimeInForce.GTC else False,
        draw(maybe_steps) if order_type in _STOPS else 0,
        draw(st.sampled_from(SelfTradePrevention)),
    )


def commands(instrument: Instrument) -> st.SearchStrategy[Command]:
    symbol = instrument.symbol
    place = places(symbol)
    cancel = st.one_of(
        st.builds(CancelOrder, names, ids, optional_names),
        st.builds(CancelOrder, names, st.just(0), names),
    )
    price_qty = st.tuples(maybe_steps, maybe_steps).filter(lambda pq: pq != (0, 0))
    replace = st.builds(
        lambda trader, ident, pq, sym: ReplaceOrder(trader, ident[0], pq[0], pq[1], sym, ident[1]),
        names,
        st.one_of(st.tuples(ids, optional_names), st.tuples(st.just(0), names)),
        price_qty,
        st.just(symbol),
    )
    mass = st.builds(MassCancel, names, st.sampled_from(["", symbol]))
    add = st.builds(AddInstrument, instruments())
    return st.one_of(place, cancel, replace, mass, add)


def events(instrument: Instrument) -> st.SearchStrategy[Event]:
    symbol = st.just(instrument.symbol)
    accepted = st.builds(
        OrderAccepted,
        seqs,
        ids,
        names,
        optional_names,
        symbol,
        sides,
        st.sampled_from(OrderType),
        st.sampled_from(TimeInForce),
        maybe_steps,
        steps,
        maybe_steps,
    )
    rejected = st.builds(
        OrderRejected,
        seqs,
        names,
        optional_names,
        st.one_of(symbol, symbols),  # a reject may name a symbol nobody lists
        st.sampled_from(RejectReason),
        st.text(max_size=80),
        maybe_ids,
    )
    trade = trades(symbol)
    cancelled = st.builds(OrderCancelled, seqs, ids, names, optional_names, symbol, st.sampled_from(CancelReason), steps, maybe_steps)
    replaced = st.builds(OrderReplaced, seqs, ids, names, optional_names, symbol, sides, steps, steps, st.booleans())
    stop = st.builds(StopTriggered, seqs, ids, names, optional_names, symbol, steps, steps)
    delta = st.builds(BookDelta, seqs, symbol, sides, steps, maybe_steps, st.integers(0, 2**32 - 1))
    added = st.builds(InstrumentAdded, seqs, instruments())
    return st.one_of(accepted, rejected, trade, cancelled, replaced, stop, delta, added)


def trades(symbol: st.SearchStrategy[str]) -> st.SearchStrategy[TradeExecuted]:
    maker = (ids, names, optional_names, maybe_steps)  # order id, trader, client order id, remaining
    taker = (ids, names, optional_names, maybe_steps)
    return st.builds(TradeExecuted, seqs, ids, symbol, steps, steps, sides, *maker, *taker)


def market_events(instrument: Instrument) -> st.SearchStrategy[MarketEvent]:
    symbol = st.just(instrument.symbol)
    public_trades = st.builds(PublicTrade, seqs, ids, symbol, steps, steps, sides)
    return st.one_of(st.builds(BookDelta, seqs, symbol, sides, steps, maybe_steps, st.integers(0, 1000)), public_trades)


def depths(instrument: Instrument) -> st.SearchStrategy[BookDepth]:
    levels = st.lists(st.builds(L2Level, steps, steps, st.integers(1, 1000)), max_size=5)
    return st.builds(BookDepth, st.just(instrument.symbol), st.integers(0, 2**63 - 1), levels, levels, maybe_steps)


def order_views(instrument: Instrument) -> st.SearchStrategy[OrderView]:
    return st.builds(
        OrderView,
        ids,
        names,
        optional_names,
        st.just(instrument.symbol),
        sides,
        st.sampled_from(OrderType),
        st.sampled_from(TimeInForce),
        maybe_steps,
        maybe_steps,
        maybe_steps,
        maybe_steps,
        st.sampled_from(OrderStatus),
    )
