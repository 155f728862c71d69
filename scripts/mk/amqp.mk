# RabbitMQ (AMQP transport): the broker package, our own broker script, server, benchmark.
# docs/amqp.md. The broker is Debian's rabbitmq-server, run by scripts/rabbitmq.sh (no systemd).
RABBITMQ_STAMP := build/.rabbitmq-stamp
SETUP_STEPS += $(RABBITMQ_STAMP)

.PHONY: rabbitmq-start rabbitmq-stop rabbitmq-status amqp-server amqp-trader bench-amqp test-amqp

# Installs rabbitmq-server when missing. policy-rc.d answers 101 ("action forbidden") during the
# install so the package's postinst never tries to start a system broker (no systemd here);
# a broker the install left running anyway would be the package's, stopped with its own service script.
# Under CI=true a failed install fails the build.
$(RABBITMQ_STAMP):
	@if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && command -v epmd >/dev/null; then \
		mkdir -p build && touch $@; \
	else \
		echo "installing rabbitmq-server (apt-get)"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		created=0; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod +x /usr/sbin/policy-rc.d && created=1; \
		fi; \
		rc=0; \
		( $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server ) || rc=$$?; \
		[ $$created = 1 ] && $$SUDO rm -f /usr/sbin/policy-rc.d; \
		if [ $$rc = 0 ] && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
			mkdir -p build && touch $@; \
		elif [ "$$CI" = "true" ]; then \
			echo "rabbitmq-server install failed (exit $$rc)" >&2; exit 1; \
		else \
			echo "warning: rabbitmq-server install failed (exit $$rc): AMQP tests will fail" >&2; \
		fi; \
	fi

rabbitmq-start: setup ## Start our own RabbitMQ on 127.0.0.1:5672 (no systemd; state in var/rabbitmq)
	@scripts/rabbitmq.sh start $(ARGS)

rabbitmq-stop: ## Stop the RabbitMQ started by rabbitmq-start (by its PIDs)
	@scripts/rabbitmq.sh stop $(ARGS)

rabbitmq-status: ## Is the RabbitMQ of rabbitmq-start running?
	@scripts/rabbitmq.sh status $(ARGS)

amqp-server: setup ## Start the AMQP exchange server (dex-amqp) on the broker at DEX_AMQP_URL (default: make rabbitmq-start's)
	@$(VENV)/bin/dex-amqp $(ARGS)

amqp-trader: setup ## Run the trader harness over AMQP against DEX_AMQP_URL
	@$(VENV)/bin/dex-trader --transport amqp $(ARGS)

bench-amqp: setup ## RabbitMQ + AMQP server + harness on this machine; writes reports/bench-amqp.json
	@$(PY) -m bench.amqp_bench --out reports/bench-amqp.json $(ARGS)

test-amqp: setup ## AMQP tests only: integration, contract over amqp, AMQP fault tests
	@$(PY) -m pytest -q tests/integration/amqp tests/contract -k amqp
	@$(PY) -m pytest -q -m faults tests/faults -k amqp
