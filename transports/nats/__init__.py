"""NATS transport: core request/reply, JetStream durable order path, and ``nats-auto`` (docs/nats.md)."""
