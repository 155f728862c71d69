# The transport comparison report (dex-bench) and the compose files for users.
.PHONY: bench bench-quick compose-check

bench: setup ## Every registered transport vs the in-process engine and its own wire's echo ceiling, 5 modes x 3 repeats (~25 min); writes reports/transport-comparison.{json,md,html}
	@$(VENV)/bin/dex-bench $(ARGS)

bench-quick: setup ## Smoke run of the comparison over every transport (< 2 min); writes into build/bench-quick/
	@$(VENV)/bin/dex-bench --quick --out-dir build/bench-quick $(ARGS)

compose-check: setup ## Validate the compose files, Prometheus config and Grafana dashboard (no Docker needed)
	@$(PY) -m pytest -q tests/integration/test_compose_files.py
