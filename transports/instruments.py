"""The embedded default instruments every server lists unless told otherwise, and the catalogue it can list.

Shared by the servers (which list them at start-up, once, through the
journal) and the harness (which needs tick and lot sizes to price its
workload). A ``--symbols`` option selects by name: a subset of the
defaults, or any instrument of ``CATALOGUE`` (the defaults and 13 more),
so that symbols can be spread over shards (docs/shards.md). Without
``--symbols`` a server lists the three defaults, as it always has.
"""

from __future__ import annotations

from engine import Instrument

DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument.create("BTC-USD", "0.01", "0.0001", min_qty="0.0001", max_qty="1000", price_band_bps=1000, reference_price="30000.00"),
    Instrument.create("ETH-USD", "0.01", "0.001", min_qty="0.001", max_qty="10000", price_band_bps=1000, reference_price="2000.00"),
    Instrument.create("SOL-USD", "0.001", "0.01", min_qty="0.01", max_qty="100000", price_band_bps=1000, reference_price="150.000"),
)

_MORE: tuple[tuple[str, str, str, str], ...] = (  # symbol, tick, lot, reference price: listed only when --symbols names them
    ("ADA-USD", "0.0001", "1", "0.4000"),
    ("XRP-USD", "0.0001", "1", "0.5000"),
    ("DOGE-USD", "0.00001", "1", "0.08000"),
    ("AVAX-USD", "0.001", "0.01", "30.000"),
    ("DOT-USD", "0.001", "0.1", "6.000"),
    ("LINK-USD", "0.001", "0.1", "14.000"),
    ("LTC-USD", "0.01", "0.001", "70.00"),
    ("BCH-USD", "0.01", "0.001", "250.00"),
    ("ATOM-USD", "0.001", "0.1", "9.000"),
    ("NEAR-USD", "0.001", "0.1", "5.000"),
    ("UNI-USD", "0.001", "0.1", "7.000"),
    ("XLM-USD", "0.00001", "1", "0.11000"),
    ("TRX-USD", "0.00001", "1", "0.10000"),
)
CATALOGUE: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS + tuple(
    Instrument.create(symbol, tick, lot, min_qty=lot, price_band_bps=1000, reference_price=price) for symbol, tick, lot, price in _MORE
)


def select_instruments(symbols: str | list[str] | None) -> list[Instrument]:
    """Pick instruments of the catalogue by name (comma-separated or a list); None or "" means the defaults."""
    if not symbols:
        return list(DEFAULT_INSTRUMENTS)
    wanted = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
    by_name = {i.symbol: i for i in CATALOGUE}
    unknown = [s for s in wanted if s and s not in by_name]
    if unknown:
        raise ValueError(f"unknown symbol(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[s] for s in wanted if s]
