"""``make soak``'s benchmark, run short: a real server, a steady flow, RSS samples, and a result that reconciles."""

from __future__ import annotations

import json
from pathlib import Path

from bench import soak


def test_a_short_soak_samples_the_servers_memory_and_reconciles_with_it(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    assert soak.main(["--duration", "6", "--sample", "1", "--rate", "400", "--warmup", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["errors"] == 0
    assert len(result["samples"]) >= 5
    assert all(sample["rss_bytes"] > 0 for sample in result["samples"])
    assert result["commands_sent"] > 0 and result["places"] > 0 and result["cancels_with_request_id"] > 0
    server = result["server"]
    assert server["reconciled"]  # every command sent reached the engine once; every retry was answered from the window
    assert server["repeated_requests"] == result["retries_sent"]
    after = result["after_warmup"]
    assert after["rss_growth_bytes"] == after["rss_end_bytes"] - after["rss_start_bytes"]
    assert after["flat"] == (after["rss_growth_bytes"] <= after["explained_by_resting_bytes"] + after["allowance_bytes"])
