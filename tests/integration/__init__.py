"""Integration tests: real servers on loopback ports, started and stopped by fixtures."""
