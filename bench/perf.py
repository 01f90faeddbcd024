"""Entry point ``python -m bench.perf``; the code lives in bench/experiments/perf/."""
from bench.experiments.perf.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
