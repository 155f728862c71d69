"""Hypothesis strategies: random command streams against a small, busy market.

Prices sit in a narrow band so orders cross often; client order ids come from
a small pool so duplicates happen. A stream is drawn against a scratch engine
so that most cancels and replaces name a live order (sometimes another
trader's, sometimes a stale id); the stream itself is a plain list of
commands, replayable anywhere.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from engine import (
    AddInstrument,
    CancelOrder,
    Command,
    Engine,
    Instrument,
    MassCancel,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    RiskLimits,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
TRADERS = ("t0", "t1", "t2", "t3")
MIN_PRICE, MAX_PRICE = 97, 103


def listings() -> list[AddInstrument]:
    return [
        AddInstrument(Instrument.create("BTC-USD", "1", "1")),
        # A price band around a reference, and a minimum quantity.
        AddInstrument(Instrument.create("ETH-USD", "1", "1", min_qty="2", price_band_bps=500, reference_price="100")),
        AddInstrument(Instrument.create("SOL-USD", "0.5", "1", max_qty="8")),
    ]


def new_engine() -> Engine:
    """The engine every stream runs against: listed symbols and some risk limits."""
    engine = Engine(
        risk=RiskLimits(max_open_orders=12),
        trader_limits={"t3": RiskLimits(max_order_qty=Decimal(8), max_notional=Decimal(700), max_open_orders=4)},
    )
    for cmd in listings():
        engine.handle(cmd)
    return engine


# sampled_from draws near-uniformly, where integers() favours small values;
# repeating an element weights it.
traders = st.sampled_from(TRADERS)
symbols = st.sampled_from(("BTC-USD",) * 4 + SYMBOLS[1:])  # most orders meet in one book
sides = st.sampled_from(Side)
prices = st.sampled_from(range(MIN_PRICE, MAX_PRICE + 1))
# Buyers lean high and sellers low, so that new orders often cross.
buy_prices = st.sampled_from(range(MIN_PRICE + 1, MAX_PRICE + 1))
sell_prices = st.sampled_from(range(MIN_PRICE, MAX_PRICE))
quantities = st.sampled_from(range(1, 11))
client_ids = st.sampled_from([f"c{i}" for i in range(20)] + [""])
order_ids = st.sampled_from(range(25))  # 0 and ids not yet given are unknown orders
order_types = st.sampled_from([OrderType.LIMIT] * 5 + [OrderType.MARKET, OrderType.STOP_MARKET, OrderType.STOP_LIMIT])
tifs = st.sampled_from([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK])


@st.composite
def place_orders(draw: st.DrawFn) -> PlaceOrder:
    order_type = draw(order_types)
    has_price = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    is_stop = order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
    tif = draw(tifs)
    side = draw(sides)
    return PlaceOrder(
        trader=draw(traders),
        client_order_id=draw(client_ids),
        symbol=draw(symbols),
        side=side,
        qty=draw(st.sampled_from([*range(1, 11), *range(1, 11), *range(1, 11), 0])),  # now and then an invalid 0
        price=draw(buy_prices if side is Side.BUY else sell_prices) if has_price else 0,
        order_type=order_type,
        tif=tif,
        post_only=draw(st.sampled_from([False, False, False, True])) if order_type is OrderType.LIMIT and tif is TimeInForce.GTC else False,
        stop_price=draw(prices) if is_stop else 0,
        stp=draw(st.sampled_from(SelfTradePrevention)),
    )


cancels = st.one_of(
    st.builds(CancelOrder, trader=traders, order_id=order_ids),
    st.builds(CancelOrder, trader=traders, order_id=st.just(0), client_order_id=client_ids),
)

replaces = st.one_of(
    st.builds(
        ReplaceOrder,
        trader=traders,
        order_id=order_ids,
        new_price=st.one_of(st.just(0), prices),
        new_qty=st.one_of(st.just(0), quantities),
    ),
    st.builds(
        ReplaceOrder,
        trader=traders,
        order_id=st.just(0),
        new_price=st.one_of(st.just(0), prices),
        new_qty=st.one_of(st.just(0), quantities),
        symbol=st.sampled_from(("", *SYMBOLS)),
        client_order_id=client_ids,
    ),
)

mass_cancels = st.builds(MassCancel, trader=traders, symbol=st.sampled_from((*SYMBOLS, "")))

random_commands: st.SearchStrategy[Command] = st.one_of(cancels, replaces, mass_cancels)

KINDS = ["place"] * 14 + ["cancel"] + ["replace"] * 3 + ["other"]


@st.composite
def _targeted(draw: st.DrawFn, engine: Engine, kind: str) -> Command:
    """A cancel or replace of a live order: by id or client id, by its owner or (rarely) by someone else."""
    live = [v for t in TRADERS for v in engine.open_orders(t)]
    if not live:
        fallback: Command = draw(cancels) if kind == "cancel" else draw(replaces)
        return fallback
    view = draw(st.sampled_from(live))
    trader = view.trader if draw(st.sampled_from([True] * 9 + [False])) else draw(traders)
    by_client_id = bool(view.client_order_id) and draw(st.booleans())
    order_id = 0 if by_client_id else view.order_id
    client_order_id = view.client_order_id if by_client_id else ""
    if kind == "cancel":
        return CancelOrder(trader, order_id, client_order_id)
    step = draw(st.sampled_from([-2, -1, 0, 0, 1, 2]))
    new_price = draw(st.sampled_from([0, 0, view.price + step, view.price + 5 * step]))
    new_qty = draw(st.sampled_from([0, max(1, view.remaining - 1), view.remaining + 2, draw(quantities)]))
    return ReplaceOrder(trader, order_id, max(0, new_price), new_qty, client_order_id=client_order_id)


@st.composite
def command_streams(draw: st.DrawFn, min_size: int = 10, max_size: int = 50) -> list[Command]:
    engine = new_engine()
    stream: list[Command] = []
    # Most streams open with resting liquidity from several traders, so that
    # what follows trades, sweeps levels and queues behind earlier orders.
    for i in range(draw(st.sampled_from([0, *range(4, 13)]))):
        side = draw(sides)
        price = draw(prices)
        seed = PlaceOrder(TRADERS[i % len(TRADERS)], f"seed{i}", draw(symbols), side, draw(quantities), price)
        engine.handle(seed)
        stream.append(seed)
    for _ in range(draw(st.sampled_from(range(min_size, max_size + 1)))):
        kind = draw(st.sampled_from(KINDS))
        if kind == "place":
            command: Command = draw(place_orders())
        elif kind == "other":
            command = draw(random_commands)
        else:
            command = draw(_targeted(engine, kind))
        engine.handle(command)
        stream.append(command)
    return stream
