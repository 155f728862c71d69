"""Session fixtures for RabbitMQ (filled in by the AMQP transport work): a real broker started by our own script, stopped by PID."""

from __future__ import annotations
