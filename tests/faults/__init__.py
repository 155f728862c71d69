"""Fault tests: real processes killed, paused or partitioned (``make test-faults``)."""
