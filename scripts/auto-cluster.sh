#!/usr/bin/env bash
# Start N nats-auto nodes (default 5) on this machine and watch them discover each other, elect a
# leader by a JetStream lease and trade. --nats-cluster runs a 3-server NATS cluster underneath
# (explicit routes, unique server names, sync_interval: always, streams with 3 replicas).
# It ends after --duration seconds (default 30; 0 = until Ctrl-C) or at Ctrl-C: every process it
# started is stopped by its PID, the streams are audited, a summary is printed, and its folder of
# logs and NATS data (dex-auto-cluster-* in the temp directory) is removed (--keep keeps it).
#   scripts/auto-cluster.sh            # 5 nodes, one NATS server, 30 s
#   scripts/auto-cluster.sh 3 --nats-cluster --duration 60
# Implementation: transports/nats/demo_cluster.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/dex-auto-cluster-XXXXXX")"
keep=0
for arg in "$@"; do [ "$arg" = "--keep" ] && keep=1; done
# The folder goes however this script ends (the Python side removes it too, unless kept).
[ "$keep" = 1 ] || trap 'rm -rf "$workdir"' EXIT

# A Ctrl-C in a terminal signals the whole foreground group: NATS would stop before the audit and
# the nodes all at once. So the cluster runs in a session of its own, and Ctrl-C (or SIGTERM) here
# becomes one SIGTERM to it: it stops the nodes, audits, stops NATS and prints the summary itself.
setsid=()
command -v setsid >/dev/null && setsid=(setsid)
"${setsid[@]}" "$PY" -m transports.nats.demo_cluster --workdir "$workdir" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
status=""
while [ -z "$status" ]; do
    if wait "$pid"; then
        status=0
    else
        rc=$?
        kill -0 "$pid" 2>/dev/null || status=$rc  # still running: a trapped signal ended the wait early
    fi
done
exit "$status"
