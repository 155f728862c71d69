"""Structured logs for every server process: one configuration, two renderings.

``configure_logging(level, "console" | "json")`` routes both structlog loggers
and the standard library's ``logging`` records (uvicorn, grpc, our older
``logging.getLogger`` call sites) through the same structlog processors, so a
process writes one format only. JSON lines carry ``timestamp``, ``level``,
``logger``, ``event`` and whatever was bound: servers bind ``transport``, the
gateway binds ``transport``, ``trader``, ``order_id`` and ``client_order_id``
on per-order events.

Invariants:

* Logs go to stderr. A server's start-up line ("<name> listening on URL") is
  printed on stdout, plain, whatever the log format: scripts and tests wait
  for it, and it must not change shape with ``--log-format``.
* Library code (the gateway) logs through the standard library with fields in
  ``extra=``: it stays silent below WARNING in a process that never called
  ``configure_logging`` (tests, the in-process harness).
* No line carries terminal escape codes: uvicorn's ``color_message`` extra
  (the message again, with ANSI colours) is dropped, and escape sequences in
  other string fields are removed (``drop_escape_codes``).
* Per-order events are logged at ``debug`` only: at ``info`` the order path
  pays one level check per rejected order and nothing per accepted one.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import structlog

LogFormat = Literal["console", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("console", "json")

_TRACE = 5  # uvicorn's "trace" level, below debug
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_COLOUR_COPIES = ("color_message",)  # uvicorn passes its message again, coloured, as an extra


def drop_escape_codes(logger: Any, method: str, event_dict: Any) -> Any:
    """A structlog processor: no coloured copies of the message, no ANSI escape sequences in string fields."""
    for key in _COLOUR_COPIES:
        event_dict.pop(key, None)
    for key, value in event_dict.items():
        if isinstance(value, str) and "\x1b" in value:
            event_dict[key] = _ANSI.sub("", value)
    return event_dict


def _level(name: str) -> int:
    if name.lower() == "trace":
        return _TRACE
    value = logging.getLevelName(name.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {name!r}")
    return value


def configure_logging(level: str = "info", fmt: LogFormat = "console", stream: Any = None) -> None:
    """Configure structlog and the standard library's root logger for this process (idempotent)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; choose from {', '.join(LOG_FORMATS)}")
    numeric = _level(level)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(),  # library code logs with the standard library and passes fields as ``extra``
        drop_escape_codes,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = structlog.processors.JSONRenderer(sort_keys=False) if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_dex_handler", False):
            root.removeHandler(old)
    handler._dex_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)


def get_logger(name: str, **bound: Any) -> Any:
    """A structlog logger named ``name`` with ``bound`` key-values on every line (for processes that configured logging)."""
    logger = structlog.stdlib.get_logger(name)
    return logger.bind(**bound) if bound else logger
