"""Price sources and the publisher onto pub/sub transports (see README.md)."""
