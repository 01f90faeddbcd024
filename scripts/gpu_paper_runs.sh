#!/bin/bash
# Issue 16's paper-scale runs on the embedded world, as one prepared script for a short GPU lease: the same
# commands as on the CPU (every cell kill-safe, every step resumes), with many local worker processes sharing
# the GPU (the embedded model is launch-bound there: one process leaves the GPU mostly idle). It stops starting
# work at the deadline and packs the run folders' cells (not the preview tensors) for the trip back; on the CPU,
# unpack and re-run the same commands: finished cells are skipped and the reports are written.
#   DEADLINE=540 WORKERS=12 OUT=/some/dir bash scripts/gpu_paper_runs.sh
#   (here, afterwards: tar -xzf <pack>/paper_runs.tgz, or cat the split parts into tar, then run the commands again)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export BENCH_DEVICE=${BENCH_DEVICE:-cuda} PYTHONUNBUFFERED=1
W=${WORKERS:-12}
END=$(( $(date +%s) + ${DEADLINE:-540} ))
PACK=${OUT:-runs/pack}
# --rerun-score-cells: the runs follow the installed score models; after one is re-installed (with this script
# stopped: running workers load the prior per cell) only the cells that loaded it run again
COMMON="--executor local --workers $W --wandb disabled --rerun-score-cells"
SR=runs/embedded-paper-superres-v21
left() { echo $(( END - $(date +%s) )); }
run() {  # run a step with what is left of the deadline; a step cut short resumes next time
  local t; t=$(left)
  if [ "$t" -le 20 ]; then echo "== skipped (deadline): $*"; return 1; fi
  echo "== $(date +%T) ($t s left): $*"
  timeout --signal=TERM --kill-after=15 "$t" "$@"
}
# a fresh checkout has no runs/: resume from the cell records committed mid-way (scripts/paper_wip.sh pack)
PY=$PY bash scripts/paper_wip.sh unpack
# superres is done and its report committed; the fairness run takes its tuning choices from that report's rows
# (the same select_best choice as from the store); without the report, run the superres sweep first
SR_ROWS=results/embedded/paper-superres/rows.csv
if [ -f "$SR_ROWS" ]; then
  TUNED=$SR_ROWS
else
  run $PY -m bench.sweep --tasks superres --levels superres=8,4 --profile paper $COMMON --out $SR
  TUNED=$SR
fi
FAIR="$PY -m bench.fairness --prior embedded --from-sweep $TUNED --factor 4 8 --samples 5 $COMMON \
  --out runs/fairness-embedded-paper-v21"
run $FAIR; fair_rc=$?
# the other tasks at their two scarcest levels only (the question the report answers; a third level would
# cost half as much again on 2 CPU cores)
run $PY -m bench.sweep --tasks inpaint,cs,inpaint_box,denoise --profile paper $COMMON \
  --levels inpaint=0.0625,0.2 --levels cs=0.0625,0.125 --levels inpaint_box=0.5,0.25 --levels denoise=1.0,0.5 \
  --out runs/embedded-paper-others-v21; others_rc=$?
# every run complete (exit 0: done, failed cells recorded): the reports to commit, and the one answer over tasks
if [ "$fair_rc" = 0 ] && [ "$others_rc" = 0 ]; then
  $FAIR --results results/embedded/paper-fairness
  $PY -m bench.collect runs/embedded-paper-others-v21 --out results/embedded/paper-others
  $PY -m bench.report.claims results/embedded/paper-superres results/embedded/paper-others \
    --out results/embedded/paper-claims.md
fi
mkdir -p "$PACK"
tar --exclude='*/previews' -czf "$PACK/paper_runs.tgz" runs/embedded-paper-*-v21 runs/fairness-embedded-paper-v21 \
  2>/dev/null
if [ "$(stat -c %s "$PACK/paper_runs.tgz")" -gt 15000000 ]; then
  split -b 15M "$PACK/paper_runs.tgz" "$PACK/paper_runs.tgz.part-" && rm "$PACK/paper_runs.tgz"
fi
ls -la "$PACK"
