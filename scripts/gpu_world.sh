#!/bin/bash
# The embedded world's GPU-heavy rebuild steps as one prepared script for a short GPU lease (issue 14): optionally
# resume the GAN, export it, invert training images with ILO, train both layer score priors, and pack what the CPU
# machine needs to evaluate, install and write the cards (scripts/rebuild_embedded_world.sh does the rest; its
# steps skip what is already there). Runs under the GPU machine's python3 (lpips, wandb, submitit not needed).
#   GAN_CKPT=path/checkpoint.pt GAN_MIN=0 SCORE_MIN=4 HISTORY="..." bash scripts/gpu_world.sh
# Inputs: FASHION_MNIST_DIR with train-*-idx*-ubyte.gz; GAN_CKPT (and its folder, which the GAN resumes in).
# Outputs under $OUT (default ./gpu_out): world.tar.gz.part-* (generator, score priors, held-out states), logs,
# and with GAN_MIN > 0 the GAN checkpoint in parts.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
GAN_MIN=${GAN_MIN:-0}; SCORE_MIN=${SCORE_MIN:-4}; N_INV=${N_INV:-4000}; WORKERS=${WORKERS:-6}
STORE=${STORE:-/tmp/scores-embedded}
DEVICE=${DEVICE:-cuda}
GEN_OUT=${GEN_OUT:-bench/embedded/weights/generator.pt}  # the world's generator in this (device) checkout
export PYTHONUNBUFFERED=1 BENCH_DEVICE=$DEVICE
LOG=$OUT/gpu_world.log
say() { echo "== $* $(date +%T)" | tee -a "$LOG"; }
source scripts/embedded_scores_steps.sh
say start; nvidia-smi --query-gpu=name,memory.total --format=csv >>"$LOG" 2>&1
if [ "$GAN_MIN" != 0 ]; then
  say gan; $PY -m bench.embedded.train_gan --out "$(dirname "$GAN_CKPT")" --max-kimg 3000 --minutes "$GAN_MIN" \
    --device "$DEVICE" --ckpt-every 1000 --sample-every 100000 --threads 4 >>"$LOG" 2>&1
  split -b 15M "$GAN_CKPT" "$OUT/gan_checkpoint.part-"; cp "$(dirname "$GAN_CKPT")/log.jsonl" "$OUT/gan_log.jsonl"
fi
say export; $PY -m bench.embedded.export "$GAN_CKPT" --out "$GEN_OUT" --history "${HISTORY:-}" >>"$LOG" 2>&1 || exit 1
say invert; invert_states "$STORE" "$WORKERS" "$N_INV" >>"$LOG" 2>&1 || exit 1
say train; train_layer_scores "$STORE" "$SCORE_MIN" 2 "$DEVICE" "$OUT"
say pack
tar -czf /tmp/world.tar.gz -C "$(dirname "$GEN_OUT")" "$(basename "$GEN_OUT")" -C "$STORE" inversions.json layer0_heldout.pt \
  layer1_heldout.pt $(cd "$STORE" && ls score_layer*/{score_prior.pt,log.jsonl,config.json,norm.json} \
  $( [ "${SCORE_CKPT:-1}" = 1 ] && ls score_layer*/checkpoint.pt ))
split -b 15M /tmp/world.tar.gz "$OUT/world.tar.gz.part-"
say done; ls -la "$OUT" >>"$LOG"
