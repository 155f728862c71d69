"""Where servers keep their state: one directory, one naming scheme.

Every server's default journal is ``<state dir>/<server>.journal``
(``var/turbo-dex.journal``, ``var/dex-zmq.journal``, ...); the state directory
is ``--state-dir``, else ``$DEX_STATE_DIR``, else ``var`` (relative to the
working directory; git-ignored; ``make clean-state`` removes it).

Invariant: two different servers never share a default journal (the name is
the server's command name), and one server finds its own journal again
after a restart in the same directory.
"""

from __future__ import annotations

import os
from pathlib import PurePath

DEFAULT_STATE_DIR = "var"
STATE_DIR_ENV = "DEX_STATE_DIR"


def state_dir(chosen: str | None = None) -> str:
    """``chosen``, else ``$DEX_STATE_DIR``, else ``var``."""
    return chosen or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR


def journal_path(server: str, directory: str | None = None) -> str:
    """The default journal of ``server`` (its command name, e.g. ``dex-zmq``)."""
    return str(PurePath(state_dir(directory)) / f"{server}.journal")


def default_journal(server: str) -> str:
    """The journal a server's settings name when nobody chose one (``var/<server>.journal``)."""
    return str(PurePath(DEFAULT_STATE_DIR) / f"{server}.journal")
