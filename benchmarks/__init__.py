"""Benchmarks: scripts that print a table, take ``--quick`` and ``--json PATH``, and can fail on a target."""
