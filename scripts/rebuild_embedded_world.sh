#!/bin/bash
# Rebuild the embedded world's downstream assets after the generator changed (issue 14): export the GAN
# checkpoint, measure it, invert training images with ILO, train + evaluate + install both layer score priors,
# write the cards, run the default sweep. Every step resumes when the script is re-run (hours on 2 CPU cores;
# set DEVICE=cuda on a GPU machine). Logs: $WORK/rebuild.log.
#   CKPT=runs/embedded-v2/gan-gpu/checkpoint.pt HISTORY="..." bash scripts/rebuild_embedded_world.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CKPT=${CKPT:?set CKPT to the GAN training checkpoint to install}
HISTORY=${HISTORY:-}
SCORES=${SCORES:-runs/scores-embedded-rebuild}  # a fixed name, so a re-run on another day resumes
DEVICE=${DEVICE:-cpu}
MIN=${MIN:-90}  # wall budget per score-training invocation (each resumes)
step() { echo "== $* $(date +%T)"; }
source scripts/embedded_scores_steps.sh
if [ ! -f "$SCORES/.exported" ]; then
  step export; $PY -m bench.embedded.export "$CKPT" --history "$HISTORY"
  step generator card; $PY -m bench.embedded.figures
  mkdir -p "$SCORES" && touch "$SCORES/.exported"
fi
step invert; invert_states "$SCORES" 2
step train; train_layer_scores "$SCORES" "$MIN" 1 "$DEVICE" "$SCORES"
for L in 0 1; do
  step evaluate $L; $PY -m bench.scores evaluate --prior embedded --out "$SCORES" --layer $L --samples 400
  step install $L; $PY -m bench.scores install --prior embedded --out "$SCORES" --layer $L
done
step card; $PY -m bench.scores card --prior embedded --out "$SCORES" --results results/embedded
step sweep; $PY -m bench.sweep --tasks inpaint,cs --executor local --wandb disabled --out "${SWEEP_OUT:-runs/embedded-sweep-rebuild}"
step done
