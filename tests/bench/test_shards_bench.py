"""``make bench-shards``, run short: every configuration trades without errors, CPU is counted per process role,
and killed shards come back with every acknowledged order (the figures are the benchmark's own run's to judge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import shards_bench
from tests.support.ports import free_run

pytestmark = pytest.mark.slow


def test_the_short_run_covers_every_configuration_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "shards.json"
    args = ["--out", str(out), "--runs", "1", "--duration", "1", "--warmup", "0.5", "--kills", "2", "--port", str(free_run(4))]
    assert shards_bench.main(args) == 0
    result = json.loads(out.read_text())
    assert [(c["shards"], c["fronts"]) for c in result["configs"]] == list(shards_bench.CONFIGS)
    for config in result["configs"]:
        run = config["runs"][0]
        assert run["errors"] == 0 and run["commands"] > 0, config
        assert run["cpu_s"]["front"] > 0, config
        assert (run["cpu_s"]["shard"] > 0) == (config["shards"] > 0), config
        roles = [p["pid_role"] for p in run["cpu_s_per_process"]]
        assert roles.count("shard") == config["shards"] and roles.count("front") == config["fronts"], roles
    link = result["link_candidates"]
    assert link["ipc"] > 0 and link["tcp_loopback"] > 0
    failover = result["failover"]
    assert failover["kills"] == 2 and 0 < failover["min_s"] <= failover["median_s"] <= failover["max_s"]
    assert failover["acknowledged_resting"] == 40 and failover["lost_or_doubled"] == 0
    assert result["model"]["shard_us"] > 0 and result["model"]["front_us"] > 0
