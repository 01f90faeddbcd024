#!/bin/bash
# The paper runs take several sessions on 2 CPU cores, and a fresh checkout holds only what git holds. This keeps
# their finished cells in git between sessions (bench/harness/carry.py: one file per cell, traces thinned to every
# 25th step, no preview tensors), so no finished cell is lost:
#   bash scripts/paper_wip.sh pack     # runs/ -> results/embedded/paper-wip/ (then commit that folder)
#   bash scripts/paper_wip.sh unpack   # the reverse; files already in runs/ win, so it never undoes progress
# Once every report is committed, delete results/embedded/paper-wip/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
WIP=results/embedded/paper-wip
case "${1:-}" in
  pack)
    # shellcheck disable=SC2207
    dirs=($(ls -d runs/embedded-paper-*-v21 runs/fairness-embedded-paper-v21 2>/dev/null || true))
    [ ${#dirs[@]} -gt 0 ] || { echo "paper_wip: no paper run folders under runs/; nothing to pack"; exit 0; }
    $PY -m bench.harness.carry pack "$WIP" "${dirs[@]}"
    ;;
  unpack)
    $PY -m bench.harness.carry unpack "$WIP" --dest runs
    ;;
  *) echo "usage: bash scripts/paper_wip.sh pack|unpack" >&2; exit 2 ;;
esac
