"""Experiments built on the harness: fairness, theory, perf."""
