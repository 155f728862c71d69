"""The embedded default instruments every server lists unless told otherwise.

Shared by the servers (which list them at start-up, once, through the
journal) and the harness (which needs tick and lot sizes to price its
workload). A ``--symbols`` option selects a subset by name.
"""

from __future__ import annotations

from engine import Instrument

DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument.create("BTC-USD", "0.01", "0.0001", min_qty="0.0001", max_qty="1000", price_band_bps=1000, reference_price="30000.00"),
    Instrument.create("ETH-USD", "0.01", "0.001", min_qty="0.001", max_qty="10000", price_band_bps=1000, reference_price="2000.00"),
    Instrument.create("SOL-USD", "0.001", "0.01", min_qty="0.01", max_qty="100000", price_band_bps=1000, reference_price="150.000"),
)


def select_instruments(symbols: str | list[str] | None) -> list[Instrument]:
    """Pick default instruments by name (comma-separated or a list); None or "" means all."""
    if not symbols:
        return list(DEFAULT_INSTRUMENTS)
    wanted = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
    by_name = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
    unknown = [s for s in wanted if s and s not in by_name]
    if unknown:
        raise ValueError(f"unknown symbol(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[s] for s in wanted if s]
