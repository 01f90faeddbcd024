from bench.scores.cli import main

raise SystemExit(main())
