# Shards and fronts on this machine (bench/shards_bench.py, docs/shards.md).
.PHONY: bench-shards

bench-shards: setup ## Throughput and CPU per process for 1, 2, 4 shards and 1, 2 fronts, a fitted scaling model, failover of 10 kills (~6 min); writes reports/bench-shards.json
	@$(PY) -m bench.shards_bench --out reports/bench-shards.json $(ARGS)
