# The transport comparison report (dex-bench) and the compose files for users.
.PHONY: bench bench-quick compose-check

# WORKLOAD=file.yaml runs one workload or suite file (docs/benchmarks.md) into reports/workload-<file>.{json,md,html}.
WORKLOAD ?=

bench: setup ## The default workload suite (bench/workloads/default.yaml, <= 30 min) over every transport; writes reports/transport-comparison.{json,md,html}; WORKLOAD=file.yaml runs another
	@$(VENV)/bin/dex-bench $(if $(WORKLOAD),--workload $(WORKLOAD)) $(ARGS)

bench-quick: setup ## Smoke run of every workload of the suite over every transport (a few minutes); writes into build/bench-quick/
	@$(VENV)/bin/dex-bench --quick --out-dir build/bench-quick $(if $(WORKLOAD),--workload $(WORKLOAD)) $(ARGS)

compose-check: setup ## Validate the compose files, Prometheus config and Grafana dashboard (no Docker needed)
	@$(PY) -m pytest -q tests/integration/test_compose_files.py
