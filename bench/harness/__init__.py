"""The harness layer: cells, the one cell runner, the kill-safe store, executors (local pool,
debug, SLURM via submitit), plans for slurm/grid.sh, W&B logging, the shared CLI core and the
sweep. It knows priors, tasks and methods only through their registries."""
