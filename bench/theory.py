"""Entry point ``python -m bench.theory``; the code lives in bench/experiments/theory/."""
from bench.experiments.theory.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
