# Memory under a long steady order flow (bench/soak.py, docs/exactly-once.md).
.PHONY: soak

soak: setup ## 10 minutes of a steady order flow over a real dex-zmq, RSS sampled every 5 s; writes reports/soak.json
	@$(PY) -m bench.soak --out reports/soak.json $(ARGS)
