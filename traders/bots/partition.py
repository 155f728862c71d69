"""Which partition a bot is in, which worker owns a partition, and in what order the others stand by.

How bots are shared by workers without overlap (see docs/bots.md):

* A bot belongs to partition ``partition_of(bot_id, P)``: a stable hash
  (BLAKE2b), the same in every process and every run. ``P`` is fixed when the
  bot database is created.
* Each partition is a RabbitMQ queue bound to ``price_updates`` and declared
  with ``x-single-active-consumer``: the broker delivers its messages to
  exactly one live consumer at a time, and when that consumer's connection
  dies it hands the queue (with its unacknowledged messages) to the next
  consumer in subscription order. That is the "exactly one live worker per
  bot" guarantee; it is enforced by the broker, not by us.
* Every worker subscribes to every partition queue, in the order given by
  ``standby_order``: the partition's owner (``p % N == worker``) at once; the
  worker of rank ``r`` (its rendezvous rank for that partition among the
  non-owners) once the broker reports ``r`` consumers on the queue (or after a
  bounded wait). So the owners are active, and when an owner dies each of its
  partitions goes to its own highest-ranked survivor: the load of a dead
  worker spreads over the others instead of landing on one.
"""

from __future__ import annotations

import hashlib


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def partition_of(bot_id: str, partitions: int) -> int:
    return stable_hash(bot_id) % partitions


def owner_of(partition: int, workers: int) -> int:
    return partition % workers


def standby_order(partition: int, workers: int) -> list[int]:
    """All workers in the order they subscribe to ``partition``: its owner, then by rendezvous rank."""
    owner = owner_of(partition, workers)
    others = sorted((w for w in range(workers) if w != owner), key=lambda w: stable_hash(f"{partition}/{w}"), reverse=True)
    return [owner, *others]


def active_worker(partition: int, workers: int, live: set[int]) -> int | None:
    """The worker a single-active-consumer queue delivers to, given the live workers (the first live subscriber)."""
    for worker in standby_order(partition, workers):
        if worker in live:
            return worker
    return None


def queue_name(prefix: str, partition: int) -> str:
    return f"{prefix}bots.p{partition:03d}"


def trader_of(partition: int, prefix: str = "bots") -> str:
    """The exchange trader id of a partition: every bot of the partition trades as it, on whichever worker.

    Client order ids are unique per trader on the exchange, so a bot that moves to
    another worker keeps the same trader and the exchange still refuses a repeated
    ``<bot>-<seq>``: the duplicate protection survives a move.
    """
    return f"{prefix}-p{partition:03d}"
