from bench.experiments.perf.cli import main

raise SystemExit(main())
