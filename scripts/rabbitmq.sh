#!/usr/bin/env bash
# A local RabbitMQ node of our own, without systemd, bound to 127.0.0.1.
#   scripts/rabbitmq.sh start [--port 5672] [--dir var/rabbitmq] [--management]
#   scripts/rabbitmq.sh status|url|stop [--dir var/rabbitmq]
# State (node name, ports, PIDs) is kept in DIR/broker.json; stop ends only the PIDs recorded there.
# Implementation: transports/amqp/broker.py (LocalRabbitMQ); docs/amqp.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m transports.amqp.broker "$@"
