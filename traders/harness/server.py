"""The local ``turbo-dex`` the harness, ``make demo`` and older callers start: it lives in ``transports/http/local.py``.

Kept as a name for its importers; each transport's local starter has one home,
its own folder (``TransportDescriptor.local_server``).
"""

from __future__ import annotations

from transports.http.local import LocalServer, ServerStartError, free_port, health_ok, turbo_dex_command

__all__ = ["LocalServer", "ServerStartError", "free_port", "health_ok", "turbo_dex_command"]
