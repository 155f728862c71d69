# DHT peer-to-peer exchange (dex-node): Raft-replicated books, HTTP API, Kademlia / Grenache discovery.
# docs/dht.md. The Grenache interop test needs the pinned npm packages of tests/interop/grenache.
GRENACHE_DIR   := tests/interop/grenache
GRENACHE_STAMP := build/.grenache-npm-stamp
SETUP_STEPS += $(GRENACHE_STAMP)

.PHONY: dht-node dht-cluster bench-dht test-dht

# npm ci of the pinned packages (package-lock.json) into tests/interop/grenache/node_modules: no global install.
# Under CI=true a failed install fails the build; elsewhere it warns (the interop test then fails, never skips).
$(GRENACHE_STAMP): $(GRENACHE_DIR)/package.json $(GRENACHE_DIR)/package-lock.json
	@scripts/npm-ci.sh $(GRENACHE_DIR) $@ "the Grenache interop test will fail"

dht-node: setup ## Start one dex-node (ARGS: --api-port --dht-port --bootstrap host:port,... or --grape URL, --peers, --secret, --symbols)
	@$(VENV)/bin/dex-node $(ARGS)

dht-cluster: setup ## Start N dex-nodes on this machine (N=3 default): scripts/p2p-cluster.sh
	@scripts/p2p-cluster.sh $(or $(N),3) $(ARGS)

bench-dht: setup ## 3 dex-nodes + harness on this machine: batch throughput, single p99, owner failover; writes reports/bench-dht.json
	@$(PY) -m bench.dht_bench --out reports/bench-dht.json $(ARGS)

test-dht: setup ## dex-node tests only: integration, property, contract over dht, dht fault tests
	@$(PY) -m pytest -q tests/integration/dht tests/property/test_dht_double_fill.py tests/contract -k dht
	@$(PY) -m pytest -q -m faults tests/faults -k dht
