"""Entry point ``python -m bench.sweep``; the code lives in bench/harness/sweep/."""
from bench.harness.sweep.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
