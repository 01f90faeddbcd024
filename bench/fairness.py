"""Entry point ``python -m bench.fairness``; the code lives in bench/experiments/fairness/."""
from bench.experiments.fairness.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
