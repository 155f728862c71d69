"""Which shard owns which symbol: rendezvous (highest random weight) hashing, with pins.

Invariants:

* ``owner`` is a pure function of the symbol, the shard names and the pins:
  every front and shard computes the same map from the same inputs, on any
  machine (``transports.core.hrw``, the ranking the DHT's shards use too:
  SHA-256, never Python's salted ``hash``).
* Removing a shard moves only the symbols it owned; adding one moves only the
  symbols it now wins, about 1/N of them. That is why rendezvous hashing and
  not ``hash(symbol) % N``, which moves almost every symbol when N changes.
* A pin (``SYMBOL=SHARD``) overrides the hash; a pin to a shard that is not in
  the set is an error, never a silent fallback.
* Order and trade ids carry their shard (``id_base``): the ids of shard ``k``
  start at ``k << ID_SHIFT``, so a cancel, which names only an order id, is
  routed by ``shard_of_id`` without any table. ``ID_SHIFT`` = 44 leaves 17.6
  trillion ids per shard and keeps every id of up to 512 shards below 2**53,
  exact in a JavaScript number (the web screen, CCXT).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from transports.core.hrw import preferred_owner

ID_SHIFT = 44
MAX_SHARDS = 512
_REMEMBERED = 100_000  # owners remembered per map


def shard_name(index: int) -> str:
    """The name of shard ``index`` (its journal, its socket and its weight are keyed by it)."""
    return f"shard-{index}"


def id_base(index: int) -> int:
    """The last order (and trade) id a fresh shard ``index`` starts after."""
    return index << ID_SHIFT


def shard_of_id(order_id: int) -> int:
    """The shard that issued ``order_id``."""
    return order_id >> ID_SHIFT


def parse_pins(pins: Iterable[str]) -> dict[str, int]:
    """``SYMBOL=SHARD`` options as a dict; ``ValueError`` naming the bad one."""
    out: dict[str, int] = {}
    for pin in pins:
        symbol, sep, index = pin.partition("=")
        if not sep or not symbol.strip() or not index.strip().isdigit():
            raise ValueError(f"a pin is SYMBOL=SHARD (a shard number from 0), got {pin!r}")
        out[symbol.strip()] = int(index)
    return out


@dataclass(frozen=True)
class ShardMap:
    """The owner of every symbol among ``shards`` shards (numbered from 0), ``pins`` first."""

    shards: int
    pins: Mapping[str, int] = field(default_factory=dict)
    _owners: dict[str, int] = field(default_factory=dict, compare=False, repr=False)  # owner() per command: remembered

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(f"1 to {MAX_SHARDS} shards, got {self.shards}")
        for symbol, index in self.pins.items():
            if not 0 <= index < self.shards:
                raise ValueError(f"{symbol} is pinned to shard {index}, but the shards are 0 to {self.shards - 1}")

    def owner(self, symbol: str) -> int:
        """The shard that matches ``symbol``."""
        found = self._owners.get(symbol)
        if found is None:
            found = self.pins.get(symbol)
            if found is None:
                names = [shard_name(index) for index in range(self.shards)]
                found = names.index(preferred_owner(symbol, names))
            if len(self._owners) < _REMEMBERED:  # unknown symbols from clients must not grow it without bound
                self._owners[symbol] = found
        return found

    def assign(self, symbols: Sequence[str]) -> list[list[str]]:
        """``symbols`` split by owner: element ``k`` lists shard ``k``'s, in the order given."""
        out: list[list[str]] = [[] for _ in range(self.shards)]
        for symbol in symbols:
            out[self.owner(symbol)].append(symbol)
        return out
