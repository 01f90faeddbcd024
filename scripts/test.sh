#!/usr/bin/env bash
# The README's test command: set up, start a local single-node SLURM cluster (for the
# integration tests; they are skipped with a reason when it cannot start), run pytest, stop
# the cluster again if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
started=0
if [ "${BENCH_SKIP_SLURM:-0}" != 1 ]; then
  if bash scripts/local_slurm.sh ping >/dev/null 2>&1; then
    echo "[test] SLURM already running"
  elif bash scripts/local_slurm.sh start; then
    started=1
  else
    echo "[test] could not start the local SLURM cluster; SLURM tests will be skipped"
  fi
fi
cleanup() { if [ "$started" = 1 ]; then bash scripts/local_slurm.sh stop >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
.venv/bin/python -m pytest -q "$@"
