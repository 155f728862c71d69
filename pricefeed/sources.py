"""Price sources: a seeded random walk (default, offline), file replay, and the Kraken and Binance public tickers.

A source answers ``await source.quotes(pairs)`` with one ``Quote`` per pair it
knows (prices as ``Decimal``, parsed from the APIs' decimal strings, never
through a float). Errors form one hierarchy::

    SourceError
     ├── SourceUnavailable   the network or the API is unreachable (after retries)
     ├── SourceExhausted     a replay file has no more rows
     └── BadSourceData       a response or row that is not a quote

Ticker sources retry a failed request ``retries`` times with doubling back-off
(bounded in count and in time) before raising ``SourceUnavailable``; the feed
loop logs it and tries again at the next interval.
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

import httpx

from pricefeed.update import Quote


class SourceError(Exception):
    """Root of the price-source errors."""


class SourceUnavailable(SourceError):
    """The network or the API could not be reached."""


class SourceExhausted(SourceError):
    """A replay has reached the end of its file."""


class BadSourceData(SourceError):
    """A response or a file row that does not hold a valid quote."""


class PriceSource(Protocol):
    name: str

    async def quotes(self, pairs: Sequence[str]) -> list[Quote]: ...

    async def close(self) -> None: ...


def decimal_of(value: object, what: str) -> Decimal:
    """A positive decimal from a decimal string (floats are refused: they are not exact)."""
    if not isinstance(value, str):
        raise BadSourceData(f"{what}: expected a decimal string, got {type(value).__name__} {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise BadSourceData(f"{what}: not a decimal: {value!r}") from exc
    if not number.is_finite() or number <= 0:
        raise BadSourceData(f"{what}: not a positive price: {value!r}")
    return number


# ------------------------------------------------------------------ random walk
START_PRICES: dict[str, Decimal] = {"BTC-USD": Decimal("30000.00"), "ETH-USD": Decimal("2000.00"), "SOL-USD": Decimal("150.000")}
_CENT = Decimal("0.01")


class RandomWalk:
    """A seeded walk: each step moves each pair by a whole number of basis points in [-step_bps, step_bps].

    Deterministic for a given seed and sequence of calls; integer steps keep it exact.
    """

    name = "random"

    def __init__(self, seed: int = 1, step_bps: int = 10, spread_bps: int = 2, start: dict[str, Decimal] | None = None) -> None:
        self._rng = random.Random(seed)
        self.step_bps = step_bps
        self.spread_bps = spread_bps
        self._prices: dict[str, Decimal] = dict(start or START_PRICES)

    async def quotes(self, pairs: Sequence[str]) -> list[Quote]:
        out = []
        for pair in pairs:
            price = self._prices.get(pair, Decimal("100.00"))
            move = self._rng.randint(-self.step_bps, self.step_bps)
            price = (price * (10_000 + move) / 10_000).quantize(_CENT, ROUND_HALF_EVEN)
            self._prices[pair] = price
            half = (price * self.spread_bps / 20_000).quantize(_CENT, ROUND_HALF_EVEN)
            out.append(Quote(pair, price - half, price + half, price))
        return out

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------ file replay
class FileReplay:
    """Replays a CSV (header ``pair,price[,bid,ask]``) or JSON Lines file (``{"pair": .., "price": ".."}``).

    Each call returns the next row whose pair is wanted (one row per step); at
    the end of the file it raises ``SourceExhausted``, or starts over with ``loop``.
    A row without bid/ask quotes bid = ask = price.
    """

    name = "replay"

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"replay file {self.path} does not exist")
        self.loop = loop
        self._rows = self._read()
        self._index = 0

    def _read(self) -> list[Quote]:
        text = self.path.read_text(encoding="utf-8")
        records: Iterator[dict[str, Any]]
        if self.path.suffix in (".jsonl", ".ndjson", ".json"):
            records = (_json_row(line, n) for n, line in enumerate(text.splitlines(), start=1) if line.strip())
        else:
            records = iter(csv.DictReader(text.splitlines()))
        rows = []
        for n, record in enumerate(records, start=1):
            pair = record.get("pair")
            if not isinstance(pair, str) or not pair:
                raise BadSourceData(f"{self.path}: row {n} has no pair")
            price = decimal_of(record.get("price"), f"{self.path}: row {n} price")
            bid = decimal_of(record["bid"], f"{self.path}: row {n} bid") if record.get("bid") else price
            ask = decimal_of(record["ask"], f"{self.path}: row {n} ask") if record.get("ask") else price
            rows.append(Quote(pair, bid, ask, price))
        if not rows:
            raise SourceExhausted(f"{self.path} holds no price rows")
        return rows

    async def quotes(self, pairs: Sequence[str]) -> list[Quote]:
        wanted = set(pairs)
        for _ in range(2 * len(self._rows) + 1):  # bounded: at most one full pass (two with loop)
            if self._index >= len(self._rows):
                if not self.loop:
                    raise SourceExhausted(f"end of {self.path}")
                self._index = 0
            row = self._rows[self._index]
            self._index += 1
            if not wanted or row.pair in wanted:
                return [row]
        raise SourceExhausted(f"{self.path} has no row for {', '.join(sorted(wanted))}")

    async def close(self) -> None:
        return None


def _json_row(line: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise BadSourceData(f"line {number}: not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise BadSourceData(f"line {number}: not a JSON object")
    return record


# ------------------------------------------------------------------ public tickers
class _Ticker:
    """Shared by the public ticker sources: one GET per step, retried with back-off."""

    name = "ticker"
    base_url = ""

    def __init__(
        self, transport: httpx.AsyncBaseTransport | None = None, retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 5.0
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout_s)

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        delay = self.backoff_s
        problem = ""
        for attempt in range(1, self.retries + 2):
            try:
                response = await self._http.get(path, params=params)
                if response.status_code >= 500 or response.status_code == 429:
                    problem = f"HTTP {response.status_code}"
                else:
                    response.raise_for_status()
                    return response.json(parse_float=str)  # keep every number exact
            except httpx.HTTPStatusError as exc:
                raise SourceUnavailable(
                    f"{self.name}: {exc.response.status_code} from {exc.request.url}: {exc.response.text[:200]}"
                ) from exc
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            except ValueError as exc:
                raise BadSourceData(f"{self.name}: response is not JSON: {exc}") from exc
            if attempt <= self.retries:
                await asyncio.sleep(delay)
                delay *= 2
        raise SourceUnavailable(
            f"{self.name}: {self.base_url}{path} unreachable after {self.retries + 1} attempts ({problem}); is the network up?"
        )

    async def close(self) -> None:
        await self._http.aclose()


# Our pair -> (Kraken request name, Kraken result key).
KRAKEN_PAIRS: dict[str, tuple[str, str]] = {
    "BTC-USD": ("XBTUSD", "XXBTZUSD"),
    "ETH-USD": ("ETHUSD", "XETHZUSD"),
    "SOL-USD": ("SOLUSD", "SOLUSD"),
}


class KrakenTicker(_Ticker):
    """``GET https://api.kraken.com/0/public/Ticker?pair=XBTUSD,...``: ``a`` = ask, ``b`` = bid, ``c`` = last trade."""

    name = "kraken"
    base_url = "https://api.kraken.com"

    async def quotes(self, pairs: Sequence[str]) -> list[Quote]:
        known = [p for p in pairs if p in KRAKEN_PAIRS]
        if not known:
            raise SourceError(f"kraken: none of {', '.join(pairs)} is known; known: {', '.join(KRAKEN_PAIRS)}")
        body = await self._get("/0/public/Ticker", {"pair": ",".join(KRAKEN_PAIRS[p][0] for p in known)})
        if not isinstance(body, dict) or body.get("error"):
            raise BadSourceData(f"kraken: API error {body.get('error') if isinstance(body, dict) else body!r}")
        result = body.get("result")
        if not isinstance(result, dict):
            raise BadSourceData("kraken: response has no result object")
        out = []
        for pair in known:
            request_name, key = KRAKEN_PAIRS[pair]
            ticker = result.get(key) or result.get(request_name)
            if not isinstance(ticker, dict):
                raise BadSourceData(f"kraken: no ticker for {pair} ({key}) in the response")
            try:
                ask, bid, last = ticker["a"][0], ticker["b"][0], ticker["c"][0]
            except (KeyError, IndexError, TypeError) as exc:
                raise BadSourceData(f"kraken: ticker for {pair} lacks a/b/c: {exc}") from exc
            out.append(
                Quote(
                    pair,
                    decimal_of(bid, f"kraken {pair} bid"),
                    decimal_of(ask, f"kraken {pair} ask"),
                    decimal_of(last, f"kraken {pair} last"),
                )
            )
        return out


def binance_symbol(pair: str) -> str:
    """``BTC-USD`` -> ``BTCUSDT`` (Binance quotes US dollars as USDT)."""
    base, _, quote = pair.partition("-")
    return f"{base}{'USDT' if quote == 'USD' else quote}"


class BinanceTicker(_Ticker):
    """``GET https://api.binance.com/api/v3/ticker/24hr?symbols=[...]``: ``bidPrice``, ``askPrice``, ``lastPrice``."""

    name = "binance"
    base_url = "https://api.binance.com"

    async def quotes(self, pairs: Sequence[str]) -> list[Quote]:
        symbols = {binance_symbol(p): p for p in pairs}
        body = await self._get("/api/v3/ticker/24hr", {"symbols": json.dumps(list(symbols), separators=(",", ":"))})
        if isinstance(body, dict) and "code" in body:
            raise BadSourceData(f"binance: API error {body.get('code')}: {body.get('msg')}")
        if not isinstance(body, list):
            raise BadSourceData("binance: expected a list of tickers")
        by_symbol = {t.get("symbol"): t for t in body if isinstance(t, dict)}
        out = []
        for symbol, pair in symbols.items():
            ticker = by_symbol.get(symbol)
            if ticker is None:
                raise BadSourceData(f"binance: no ticker for {pair} ({symbol}) in the response")
            out.append(
                Quote(
                    pair,
                    decimal_of(ticker.get("bidPrice"), f"binance {pair} bidPrice"),
                    decimal_of(ticker.get("askPrice"), f"binance {pair} askPrice"),
                    decimal_of(ticker.get("lastPrice"), f"binance {pair} lastPrice"),
                )
            )
        return out


SOURCES = ("random", "replay", "kraken", "binance")


def make_source(name: str, *, seed: int = 1, path: str = "", loop: bool = False) -> PriceSource:
    """A source by its ``--source`` name."""
    if name == "random":
        return RandomWalk(seed)
    if name == "replay":
        if not path:
            raise SourceError("--source replay needs --file PATH (CSV or JSON Lines)")
        return FileReplay(path, loop=loop)
    if name == "kraken":
        return KrakenTicker()
    if name == "binance":
        return BinanceTicker()
    raise SourceError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
