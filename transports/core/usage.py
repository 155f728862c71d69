"""This process's own accounting: CPU time and peak resident memory, for the cost-per-order figures.

Invariants: both figures are this process's since it started, read from the
kernel (never sampled or estimated). The peak RSS is ``VmHWM`` from
``/proc/self/status``, the high-water mark of this process's own memory map:
``getrusage``'s ``ru_maxrss`` is not used where ``/proc`` exists, because
Linux carries it over ``execve``, so a server or harness started by a large
parent would report at least the parent's size.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

_STATUS = Path("/proc/self/status")


def cpu_us() -> int:
    """User + system CPU time of this process (every thread) so far, in microseconds."""
    return round(time.process_time() * 1e6)


def peak_rss_bytes() -> int:
    """The peak resident set size of this process so far, in bytes."""
    try:
        for line in _STATUS.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux (bytes on macOS: an upper bound)
