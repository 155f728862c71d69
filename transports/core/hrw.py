"""Rendezvous (highest-random-weight) hashing: which member should own a shard (a DHT shard, a symbol).

Pure and deterministic: every node computes the same ranking from the same
member list, with no coordination. It only states a *preference*: Raft
decides who owns (see ``replica.py``); the preferred member gets the shortest
election timeout and the owner hands leadership to it when it is caught up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(shard: str, member: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{shard}\x00{member}".encode()).digest()[:8], "big")


def ranking(shard: str, members: Iterable[str]) -> list[str]:
    """Members from most to least preferred (ties, which need a hash collision, broken by name)."""
    return sorted(set(members), key=lambda m: (-weight(shard, m), m))


def preferred_owner(shard: str, members: Iterable[str]) -> str:
    ranked = ranking(shard, members)
    if not ranked:
        raise ValueError("no members")
    return ranked[0]
