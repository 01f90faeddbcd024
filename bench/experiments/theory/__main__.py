"""``python -m bench.experiments.theory``: the same as ``python -m bench.theory``."""
from bench.experiments.theory.cli import main

raise SystemExit(main())
