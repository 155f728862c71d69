"""Free loopback ports for servers a test starts on fixed ports (ZeroMQ fronts take a run of them)."""

from __future__ import annotations

import contextlib
import socket


def free_run(count: int) -> int:
    """A port p with p .. p+count-1 all free on 127.0.0.1 now (a later bind may still lose a race: tests are serial)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return int(base)
        except OSError:
            continue
    raise AssertionError(f"no run of {count} free ports")
