#!/bin/bash
# The GPU benchmark as one prepared script (issue 18): run it on a machine with a CUDA GPU, from the repository
# root, after `bash scripts/setup.sh` (with a CUDA build of torch installed first). A few minutes on an H100.
# Writes results/perf/perf_cuda.json and regenerates results/perf/perf.md next to the CPU run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this script is for a GPU machine'"
exec $PY -m bench.perf --device cuda --name cuda --scales embedded,ffhq-arch --batches 1,8,16 \
  --ffhq-batches 1,8 --rounds 0,1,2 --repeats 7 --reach-batch 8 --memory-batch 8 \
  --sgilo-settings "score-bf16;score-graphs;score-reuse;score-bf16,score-graphs;score-bf16,score-graphs,score-reuse" \
  --accel "channels_last;bf16;compile;compile-graphs;channels_last,bf16,compile" --accel-batch 8 "$@"
