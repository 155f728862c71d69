#!/usr/bin/env bash
# Start N dex-nodes on this machine as one replica group, with embedded Kademlia discovery.
#
#   scripts/p2p-cluster.sh N [--base-port P] [--symbols LIST] [--grape URL]
#
# Node i (0-based) listens on 127.0.0.1: API P+i (HTTP), DHT P+100+i (UDP), Raft P+200+i (TCP);
# P defaults to 7700. Node 0 starts the DHT, the others bootstrap from it. A fresh shared secret
# is generated unless DEX_CLUSTER_SECRET is set. Logs, Raft journals and PIDs go to var/dht-cluster/
# (delete the journals to start with empty books; a restart with them replays the orders).
# The script stays in the foreground; Ctrl-C (or SIGTERM) stops every node it started, by PID.
# Traders: .venv/bin/dex-trader --transport dht --server dht://127.0.0.1:7700,127.0.0.1:7701,...
set -euo pipefail

N="${1:-3}"
shift || true
BASE=7700
SYMBOLS=""
GRAPE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --base-port) BASE="$2"; shift 2 ;;
        --symbols) SYMBOLS="$2"; shift 2 ;;
        --grape) GRAPE="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 50 ]; then
    echo "usage: $0 N (1..50) [--base-port P] [--symbols LIST] [--grape URL]" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
DIR="$ROOT/var/dht-cluster"
mkdir -p "$DIR"
export DEX_CLUSTER_SECRET="${DEX_CLUSTER_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

raft=()
for ((i = 0; i < N; i++)); do raft+=("127.0.0.1:$((BASE + 200 + i))"); done

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -f "$DIR/pids"
}
trap 'stop_all; exit 0' INT TERM

urls=()
for ((i = 0; i < N; i++)); do
    peers=""
    for ((j = 0; j < N; j++)); do
        [ "$j" = "$i" ] && continue
        peers="${peers:+$peers,}${raft[$j]}"
    done
    args=(--api-port "$((BASE + i))" --dht-port "$((BASE + 100 + i))" --raft-port "$((BASE + 200 + i))")
    args+=(--raft-journal "$DIR/raft-node$i.journal")
    [ -n "$peers" ] && args+=(--peers "$peers")
    [ -n "$SYMBOLS" ] && args+=(--symbols "$SYMBOLS")
    if [ -n "$GRAPE" ]; then
        args+=(--grape "$GRAPE")
    elif [ "$i" -gt 0 ]; then
        args+=(--bootstrap "127.0.0.1:$((BASE + 100))")
    fi
    (cd "$ROOT" && exec "$PY" -m transports.dht.node "${args[@]}") >"$DIR/node$i.log" 2>&1 &
    pids+=("$!")
    echo "$!" >>"$DIR/pids"
    urls+=("127.0.0.1:$((BASE + i))")
done

IFS=,
echo "started $N dex-nodes (PIDs ${pids[*]}); logs in $DIR"
echo "clients: .venv/bin/dex-trader --transport dht --server dht://${urls[*]}"
unset IFS
for ((i = 0; i < N; i++)); do
    for _ in $(seq 1 100); do
        grep -q "listening on" "$DIR/node$i.log" 2>/dev/null && break
        kill -0 "${pids[$i]}" 2>/dev/null || { echo "node $i exited:"; tail -5 "$DIR/node$i.log"; stop_all; exit 1; }
        sleep 0.1
    done
    grep "listening on" "$DIR/node$i.log" || true
done
wait
