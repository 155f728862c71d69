"""Partition assignment: every bot in exactly one partition, every partition on exactly one live worker,
and a dead worker's partitions spread over the survivors."""

from __future__ import annotations

from collections import Counter

from traders.bots.partition import active_worker, owner_of, partition_of, standby_order, trader_of

BOTS = [f"b{n:06d}" for n in range(10_000)]


def test_partition_of_is_stable_and_spreads_bots():
    first = [partition_of(b, 16) for b in BOTS]
    assert first == [partition_of(b, 16) for b in BOTS]
    counts = Counter(first)
    assert set(counts) == set(range(16))
    assert max(counts.values()) < 1.25 * 10_000 / 16


def test_each_partition_has_exactly_one_active_worker_and_owners_are_balanced():
    workers = 4
    active = {p: active_worker(p, workers, set(range(workers))) for p in range(16)}
    assert all(active[p] == owner_of(p, workers) for p in range(16))
    assert Counter(active.values()) == {0: 4, 1: 4, 2: 4, 3: 4}
    for p in range(16):
        order = standby_order(p, workers)
        assert sorted(order) == list(range(workers))  # every worker stands by for every partition, once


def test_a_dead_workers_partitions_move_to_several_survivors_and_no_others_move():
    workers, partitions = 4, 64
    before = {p: active_worker(p, workers, {0, 1, 2, 3}) for p in range(partitions)}
    after = {p: active_worker(p, workers, {0, 2, 3}) for p in range(partitions)}
    moved = {p for p in range(partitions) if before[p] != after[p]}
    assert moved == {p for p in range(partitions) if before[p] == 1}
    assert all(after[p] in {0, 2, 3} for p in range(partitions))
    assert len({after[p] for p in moved}) >= 2  # spread, not all onto one survivor
    assert active_worker(5, workers, set()) is None


def test_a_bot_keeps_its_trader_id_wherever_it_runs():
    assert trader_of(partition_of("b000123", 16)) == trader_of(partition_of("b000123", 16))
    assert trader_of(3) == "bots-p003"
