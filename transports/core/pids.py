"""Whether a process we know by PID still runs: for brokers and nodes stopped from another process.

Invariant: a zombie (dead, not yet reaped) is not alive, and another user's
process with that PID is counted alive (not ours to judge).
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): kill(0) is all we know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def die_with(parent: int) -> None:
    """SIGTERM this process when ``parent`` dies, however it dies (``kill -9`` too: Linux ``PR_SET_PDEATHSIG``), and at
    once if it is already gone. A child that must not be orphaned (a shard, a front) calls it first thing."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request above was made
        os.kill(os.getpid(), signal.SIGTERM)
