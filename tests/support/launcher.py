"""A real ``turbo-dex`` (``python -m transports.launcher``) for a test, on the brokers the test gives it and no others."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(r"(http|zmq|grpc|fix)://([\d.]+:\d+)")


@contextlib.contextmanager
def launched(args: Sequence[str], nats_url: str, amqp_url: str, amqp_name: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Start it with ``args``, NATS at ``nats_url`` and RabbitMQ at ``amqp_url`` (queues named ``amqp_name``), only by
    the options the descriptors name; yield its start-up line and the URL of every wire it serves; stop it by PID
    (SIGTERM) and check that it stopped cleanly."""
    command = [sys.executable, "-m", "transports.launcher", *args]
    command += ["--nats-url", nats_url, "--amqp-url", amqp_url, "--amqp-name", amqp_name]
    env = {k: v for k, v in os.environ.items() if k not in ("DEX_NATS_URL", "DEX_AMQP_URL")}  # only the options name brokers
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**env, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        urls = {wire: f"{wire}://{address}" for wire, address in _URL.findall(line)}
        yield line, {**urls, "nats": nats_url, "amqp": f"{amqp_url}#{amqp_name}"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "turbo-dex stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
