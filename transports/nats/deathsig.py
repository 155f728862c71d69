"""``python -m transports.nats.deathsig PARENT_PID PROGRAM ARGS...``: run PROGRAM so it dies with its parent.

Linux's ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` survives ``execve``, so this
wrapper sets it and then *becomes* PROGRAM (same PID: stopping it by PID stops
the program). Invariants:

* When the process that started it dies, even by ``kill -9``, the kernel
  sends the program SIGTERM (nats-server then shuts down cleanly: its
  JetStream store is flushed). Nothing is left orphaned.
* The death signal follows the *thread* that forked, so the starter must
  fork from a thread that lives as long as it does (the main thread).
* A parent that died between the fork and the ``prctl`` is caught: the
  parent PID given on the command line no longer matches ``getppid``, and
  the wrapper exits instead of starting an orphan.
* PROGRAM runs in a process group of its own, so a Ctrl-C in the terminal
  (SIGINT to the whole foreground group) reaches only its starter, which
  then stops it in its own time (``nats-auto`` first leaves the cluster).
* Imports nothing heavy: it costs one bare interpreter start.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel for ``sig`` when our parent dies; whether that parent is still ``parent_pid``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return os.getppid() == parent_pid


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m transports.nats.deathsig PARENT_PID PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    if not die_with_parent(int(argv[0])):
        return 1  # the parent is gone already: do not start an orphan
    os.setpgid(0, 0)  # out of the terminal's foreground group: its starter alone decides when it stops
    os.execv(argv[1], argv[1:])
    return 127  # not reached: execv replaces this process


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
