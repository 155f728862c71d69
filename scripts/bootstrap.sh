#!/usr/bin/env bash
# Create .venv and make sure the system has what building it needs.
# Idempotent: does nothing when the virtualenv already exists and works.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v "$PYTHON" >/dev/null 2>&1 || need_apt+=(python3 python3-venv python3-dev)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" - <<'PY' || { echo "Python >= 3.11 is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
    # Python.h is needed to compile the engine with mypyc.
    inc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    [ -f "$inc/Python.h" ] || need_apt+=(python3-dev)
    "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing system packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
