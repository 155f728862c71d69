#!/usr/bin/env bash
# Start N nats-auto nodes (default 5) on this machine and watch them discover each other, elect a
# leader by a JetStream lease and trade. --nats-cluster runs a 3-server NATS cluster underneath
# (explicit routes, unique server names, sync_interval: always, streams with 3 replicas).
# Every process it starts is stopped by its PID at the end (after --duration seconds, default 30, or Ctrl-C).
#   scripts/auto-cluster.sh            # 5 nodes, one NATS server
#   scripts/auto-cluster.sh 3 --nats-cluster --duration 60
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
exec "$PY" -m transports.nats.demo_cluster "$@"
