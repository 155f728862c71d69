"""``dex-trader``, the harness: seeded traders against any transport, latency histograms, live progress,
JSON results and reconciliation with the server's counters.

Modules: ``config`` (options, durations), ``clients`` (one ``TraderClient`` per trader, any transport),
``pacing`` (precise open-loop send times), ``runner`` (the workers of one process), ``procs`` (one or many
processes), ``progress`` (the live view), ``results`` (merge, reconcile, JSON, summary), ``cli``,
``server`` (start and stop a local ``turbo-dex`` for the demo, the benchmark and the tests).
"""
