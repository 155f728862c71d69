# Price feed (dex-pricefeed) and trading bots (dex-bots). docs/pricefeed.md, docs/bots.md.
# Both need a RabbitMQ (make rabbitmq-start, or DEX_AMQP_URL) and, for the bots, an exchange server: by default
# dex-amqp on that same RabbitMQ (make amqp-server). The README's flow:
#   make rabbitmq-start && make amqp-server                # terminal 1
#   make pricefeed & make bots-init && make bots          # terminal 2; Ctrl-C stops the bots (summary), kill %1 the feed

.PHONY: pricefeed bots bots-init bench-bots test-bots

pricefeed: setup ## Publish prices every second (seeded random walk) to RabbitMQ price_updates; ARGS="--source kraken --publish amqp,nats,zmq"
	@$(VENV)/bin/dex-pricefeed --interval 1 $(ARGS)

bots-init: setup ## Create var/bots.db with 300 generated bots (ARGS="--bots 10000 --partitions 16")
	@$(VENV)/bin/dex-bots init --db var/bots.db --bots 300 $(ARGS)

bots: setup ## Run the bots of var/bots.db on 4 workers: prices from RabbitMQ, orders to make amqp-server's exchange; ARGS="--transport zmq --server zmq://..."
	@$(VENV)/bin/dex-bots run --db var/bots.db --workers 4 $(ARGS)

bench-bots: setup ## 10,000 bots on 4 workers: price published -> order acknowledged p50/p99/max; writes reports/bench-bots.json
	@$(PY) -m bench.bots_bench --out reports/bench-bots.json $(ARGS)

test-bots: setup ## Unit, integration and fault tests of the price feed and the bots
	@$(PY) -m pytest -q tests/unit/pricefeed tests/unit/bots tests/integration/bots
	@$(PY) -m pytest -q -m faults tests/faults/test_bots_worker_kill.py
