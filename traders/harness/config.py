"""What one harness run does: the validated options, frozen, and Go-style durations.

A run is ``procs`` processes x ``workers`` asyncio tasks; each task is one
trader (``<prefix>-<run_id>-<proc>-<i>``) with its own client and its own
seeded ``OrderFlow``. ``rate`` is the total command rate over all traders (0 =
closed loop, as fast as replies come back).

Ids and streams: the run id (chosen once by ``dex-trader``, fresh per run
unless ``--run-id`` names one) makes every trader id, and so every client
order id, new to the server, so a second run, or a run against a server that
recovered its journal, is not refused as ``DUPLICATE_CLIENT_ORDER_ID``. The
stream's shape is seeded by ``(seed, <prefix>-<proc>-<i>)`` only: the same
``--seed`` sends the same prices, sides and sizes under any run id.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from transports.core.keys import SCHEMES, Scheme

DEFAULT_SERVER = "http://127.0.0.1:8080"
WORKLOADS = ("live", "exercise-unknown")  # cancel/replace only live orders; or the fixed stream that also names dead ones

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|s|m|h)")
_UNIT_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def new_run_id() -> str:
    """A short id for one run: seconds since 2026 in base 36 and two random characters (e.g. ``1c2mqk7p``)."""
    seconds = max(0, int(time.time()) - 1_767_225_600)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        seconds, digit = divmod(seconds, 36)
        text = digits[digit] + text
        if not seconds:
            break
    return text + "".join(secrets.choice(digits) for _ in range(2))


class ConfigError(ValueError):
    """An option that cannot be run (bad duration, inproc with --procs > 1, ...)."""


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration: ``10s``, ``1m``, ``500ms``, ``1m30s``, ``1.5s``; a bare number is seconds."""
    text = text.strip()
    if not text:
        raise ConfigError("empty duration")
    try:
        seconds = float(text)
    except ValueError:
        pos = 0
        seconds = 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise ConfigError(f"bad duration {text!r} (examples: 10s, 1m, 500ms, 1m30s)") from None
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(f"bad duration {text!r}: must be a non-negative number of seconds")
    return seconds


@dataclass(frozen=True, slots=True)
class HarnessConfig:
    transport: str = "inproc"
    server: str | None = None  # None: the transport client's own default (and environment variable)
    workers: int = 4  # per process
    procs: int = 1
    batch: int = 100  # commands per submit
    rate: float = 0.0  # commands/s over all traders; 0 = closed loop
    duration_s: float = 10.0  # measured, after the warm-up
    warmup_s: float = 2.0
    symbols: tuple[str, ...] = ()  # empty = every instrument the server lists
    seed: int = 42
    trader_prefix: str = "trader"
    run_id: str = ""  # empty: trader ids without a run id (<prefix>-<proc>-<i>)
    workload: str = "live"
    key_file: str | None = None  # --key: every trader proves this one credential (traders/harness/keys.py)
    keys_dir: str | None = None  # --keys: each trader proves its own development key from this keyring
    key_scheme: Scheme = "ed25519"  # --key-scheme: the scheme of the development keys --keys creates

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.procs < 1:
            raise ConfigError("--procs must be at least 1")
        if self.batch < 1:
            raise ConfigError("--batch must be at least 1")
        if self.rate < 0:
            raise ConfigError("--rate must be >= 0 (0 = closed loop)")
        if self.duration_s <= 0:
            raise ConfigError("--duration must be positive")
        if self.warmup_s < 0:
            raise ConfigError("--warmup must be >= 0")
        if self.transport == "inproc" and self.procs != 1:
            raise ConfigError("--transport inproc runs its own gateway in this process: --procs must be 1")
        if not self.trader_prefix or any(c.isspace() for c in self.trader_prefix):
            raise ConfigError("--trader-prefix must be a non-empty word")
        if any(not (c.isascii() and (c.isalnum() or c in "_.")) for c in self.run_id):
            raise ConfigError("--run-id takes letters, digits, '_' and '.' only")
        if self.workload not in WORKLOADS:
            raise ConfigError(f"--workload must be one of {', '.join(WORKLOADS)}")
        if self.key_scheme not in SCHEMES:
            raise ConfigError(f"--key-scheme must be one of {', '.join(SCHEMES)}")
        if self.key_file and self.keys_dir:
            raise ConfigError("give --key FILE (one credential) or --keys DIR (a key per trader), not both")

    @property
    def traders(self) -> int:
        return self.workers * self.procs

    @property
    def open_loop(self) -> bool:
        return self.rate > 0

    @property
    def batch_interval_s(self) -> float:
        """Seconds between two intended sends of one trader (open loop); 0 in closed loop."""
        return self.batch * self.traders / self.rate if self.rate > 0 else 0.0

    def trader_id(self, proc: int, index: int) -> str:
        """The trader's id on the server: new in every run that has a new run id."""
        if self.run_id:
            return f"{self.trader_prefix}-{self.run_id}-{proc}-{index}"
        return self.stream_id(proc, index)

    def stream_id(self, proc: int, index: int) -> str:
        """What seeds the trader's stream with ``seed``: the same under every run id."""
        return f"{self.trader_prefix}-{proc}-{index}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> HarnessConfig:
        fields = dict(data)
        fields["symbols"] = tuple(fields.get("symbols", ()))
        return HarnessConfig(**fields)
