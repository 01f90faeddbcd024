"""Entry point ``python -m bench.collect``; the code lives in bench/report/."""
from bench.report.collect import main

if __name__ == "__main__":
    raise SystemExit(main())
