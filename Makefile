# Every target bootstraps what it needs: a fresh clone runs `make demo` or
# `make test` and nothing else. Re-running is quick: stamps skip done work.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
EXTRAS := dev,bench,proto,http,harness,grpc,zmq,nats,amqp,dht,fix,obs,report,ccxt,screen

DEPS_STAMP   := $(VENV)/.deps-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-12)
NATIVE_STAMP := build/.native-stamp
PROTO_SRC    := $(wildcard protos/exchange/v1/*.proto)
PROTO_STAMP  := build/.proto-stamp
ENGINE_SRC   := $(wildcard engine/*.py) transports/codec/decimals.py transports/codec/json_codec.py transports/codec/compact.py transports/codec/proto_codec.py transports/codec/lean.py transports/codec/wire_count.py transports/core/apply.py transports/core/workload.py scripts/build_native.py

.PHONY: help setup demo test test-faults lint fmt unit bench-engine bench-http bench-grpc bench-zmq turbo-server grpc-server zmq-server zmq-trader dex-trader replay-example clean clean-native clean-state

help: ## List every target with one line each
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(PY):
	@bash scripts/bootstrap.sh $(VENV)

$(DEPS_STAMP): pyproject.toml constraints.txt | $(PY)
	@echo "installing Python dependencies into $(VENV) (pinned by constraints.txt)"
	@$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]' --config-settings editable_mode=compat
	@rm -f $(VENV)/.deps-* && touch $@

# After the protobuf code: the compiled codec is type-checked against the generated messages.
$(NATIVE_STAMP): $(DEPS_STAMP) $(PROTO_STAMP) $(ENGINE_SRC)
	@$(PY) scripts/build_native.py
	@mkdir -p build && touch $@

$(PROTO_STAMP): $(DEPS_STAMP) $(PROTO_SRC)
	$(if $(PROTO_SRC),@$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO_SRC))
	@mkdir -p build && touch $@

# Each subsystem keeps its targets in scripts/mk/<name>.mk and adds the set-up
# steps it needs (system packages, npm packages, brokers) to SETUP_STEPS.
SETUP_STEPS :=
include $(sort $(wildcard scripts/mk/*.mk))

setup: $(NATIVE_STAMP) $(PROTO_STAMP) $(SETUP_STEPS) ## Create .venv, install pinned dependencies, compile the engine, generate protobuf code (idempotent)

demo: setup ## Start turbo-dex, trade over HTTP for ~10 s with live progress, print the summary and the books
	@$(PY) -m traders.demo

test: lint unit ## Lint (ruff, mypy, import-linter) and the whole pytest suite

lint: setup ## ruff check + format check, mypy --strict, import-linter contracts
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy engine transports traders pricefeed bench scripts
	@$(VENV)/bin/lint-imports

fmt: setup ## Format and auto-fix with ruff
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

unit: setup ## The pytest suite only (fault tests excluded: make test-faults)
	@$(PY) -m pytest -q -m "not faults"

test-faults: setup ## Fault tests with real processes: kill -9, SIGSTOP, partitions (tests/faults)
	@$(PY) -m pytest -q -m faults tests/faults

bench-engine: setup ## In-process engine benchmark vs peers; writes reports/bench-engine.json
	@$(PY) -m bench.engine_bench --out reports/bench-engine.json

turbo-server: setup ## Start the HTTP exchange server (turbo-dex) on 127.0.0.1:8080
	@$(VENV)/bin/turbo-dex $(ARGS)

dex-trader: setup ## Run the trader harness against DEX_SERVER (default http://127.0.0.1:8080)
	@$(VENV)/bin/dex-trader --transport http $(ARGS)

bench-http: setup ## HTTP server + harness on this machine; writes reports/bench-http.json
	@$(PY) -m bench.http_bench --out reports/bench-http.json

grpc-server: setup ## Start the gRPC exchange server (dex-grpc) on 127.0.0.1:50051
	@$(PY) -m transports.grpc.server $(ARGS)

bench-grpc: setup ## gRPC server + harness on this machine; writes reports/bench-grpc.json
	@$(PY) -m bench.grpc_bench --out reports/bench-grpc.json

zmq-server: setup ## Start the ZeroMQ exchange server (dex-zmq): orders on 127.0.0.1:5555, market data on 5556
	@$(VENV)/bin/dex-zmq $(ARGS)

zmq-trader: setup ## Run the trader harness over ZeroMQ against DEX_ZMQ_SERVER (default zmq://127.0.0.1:5555)
	@$(VENV)/bin/dex-trader --transport zmq $(ARGS)

bench-zmq: setup ## ZeroMQ server + harness on this machine; writes reports/bench-zmq.json
	@$(PY) -m bench.zmq_bench --out reports/bench-zmq.json

replay-example: setup ## Replay docs/examples/commands.jsonl through dex-engine
	@$(VENV)/bin/dex-engine replay docs/examples/commands.jsonl

clean-native: ## Remove the compiled engine modules (the engine then runs interpreted)
	@$(PY) scripts/build_native.py --clean 2>/dev/null || true
	@rm -f $(NATIVE_STAMP)

clean: clean-native ## Remove the virtualenv and build products (server state stays: make clean-state)
	@rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	@for d in $(STATE_DIRS); do if [ -e $$d ]; then echo "kept $$d/ ($$(du -sh $$d | cut -f1)): server state; make clean-state removes it"; fi; done

# Where servers write by default (transports/core/state_dir.py): journals, Raft logs, the bots
# database and our RabbitMQ node under var/; nats-server data under data/. A --state-dir
# elsewhere is not touched.
STATE_DIRS := var data

clean-state: ## Remove the state servers write here (var/: journals, Raft logs, bots db, RabbitMQ; data/: nats-server); stops our RabbitMQ first
	@if [ -x scripts/rabbitmq.sh ] && [ -f var/rabbitmq/broker.json ]; then scripts/rabbitmq.sh stop >/dev/null 2>&1 || true; fi
	@for d in $(STATE_DIRS); do if [ -e $$d ]; then echo "removing $$d/ ($$(du -sh $$d | cut -f1))"; rm -rf $$d; fi; done
