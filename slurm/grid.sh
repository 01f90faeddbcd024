#!/bin/bash
# Run a sweep plan as a SLURM job array, one array index per chunk of cells.
#
# Two-step use (tune, then evaluate with the tuned hyperparameters):
#   python -m bench.sweep --tasks inpaint,cs --prior ffhq --out runs/ffhq --plan-only tune
#   CHUNK_SIZE=8 sbatch --array=0-<N-1> slurm/grid.sh runs/ffhq/plan_tune.json
#   # when the array has finished:
#   python -m bench.sweep --tasks inpaint,cs --prior ffhq --out runs/ffhq --plan-only eval
#   CHUNK_SIZE=8 sbatch --array=0-<M-1> slurm/grid.sh runs/ffhq/plan_eval.json
#   python -m bench.collect runs/ffhq
# (--plan-only prints the exact sbatch line.) Every #SBATCH default below can be overridden
# on the command line, e.g. `sbatch --gres=none -p debug ...` on a cluster without GPUs.
# Re-submitting an index (after a cancel or a timeout) skips the cells already stored.
#SBATCH --job-name=sgilo-grid
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
PLAN=${1:?usage: sbatch --array=0-N slurm/grid.sh PLAN.json}
cd "${SLURM_SUBMIT_DIR:-.}"
PY=${BENCH_PYTHON:-python}
if [ -x .venv/bin/python ] && [ -z "${BENCH_PYTHON:-}" ]; then PY=.venv/bin/python; fi
exec "$PY" -m bench.harness.run_plan "$PLAN" --index "${SLURM_ARRAY_TASK_ID:-0}" --chunk-size "${CHUNK_SIZE:-1}" \
  --max-attempts "${MAX_ATTEMPTS:-2}" --wandb "${WANDB_MODE_BENCH:-disabled}"
