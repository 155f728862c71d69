# Restart time against journal size, with snapshots off and on (bench/restart_bench.py, docs/state.md).
.PHONY: bench-restart

bench-restart: setup ## Restart time vs journal size, snapshots off and on, and the snapshot pause of a 1M-order book (~5 min); writes reports/bench-restart.json
	@$(PY) -m bench.restart_bench --out reports/bench-restart.json $(ARGS)
