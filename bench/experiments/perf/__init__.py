"""Speed, memory and scaling benchmarks of the methods (``python -m bench.perf``).

Kept out of the test suite: these are measurements, not checks. See ``__main__`` for the
command line and ``results/perf/perf.md`` for the latest figures.
"""
