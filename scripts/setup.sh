#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Debian data, a .venv with the CPU torch wheel this
# machine serves from local disk, and the project (editable) with its test extras.
# On a GPU cluster, install your CUDA torch first; this script keeps an existing torch.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! [ -d /usr/share/datasets/fashion-mnist ] && [ -z "${FASHION_MNIST_DIR:-}" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian package dataset-fashion-mnist"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "[setup] note: Fashion-MNIST idx files not found (needed only to retrain the embedded models);"
    echo "        install dataset-fashion-mnist or set FASHION_MNIST_DIR"
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv/bin/pip show -q torch torchvision >/dev/null 2>&1; then
  echo "[setup] installing torch 2.13.0 (CPU wheel from local disk) and the matching torchvision 0.28.0"
  .venv/bin/pip install -q "torch==2.13.0" "torchvision==0.28.0" 2>&1 | grep -v "^WARNING: Location" || true
fi
if ! .venv/bin/python -c "import bench, methods, tasks, pytest" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  echo "[setup] installing the project and its dependencies"
  .venv/bin/pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
  touch .venv/.installed
fi
.venv/bin/python -c "import bench, methods, tasks, torch; print('[setup] ok: torch', torch.__version__)"
