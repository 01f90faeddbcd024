# Sourced by rebuild_embedded_world.sh and gpu_world.sh: the two steps they share, with the same settings.
# Needs PY set. invert_states STORE WORKERS [N]; train_layer_scores STORE MINUTES THREADS DEVICE LOGDIR
invert_states() {
  $PY -m bench.scores invert --prior embedded --out "$1" -n "${3:-4000}" --steps 40,40,40 --executor local \
    --workers "$2" --wandb disabled
}
train_layer_scores() {  # both adaLN layer priors in parallel; each resumes when run again
  for L in 0 1; do
    $PY -m bench.scores train --prior embedded --out "$1" --layer $L --stats per_channel --time-conditioning adaln \
      --train-steps 40000 --minutes "$2" --threads "$3" --device "$4" > "$5/train_l$L.log" 2>&1 &
  done
  wait
}
