"""Process-wide set-up, done by entry points (CLI mains, worker processes, SLURM jobs), never
on ``import``: glibc malloc tuning (bench/core/malloc.py) and the torchvision import shim
(bench/core/torchvision_compat.py)."""
from __future__ import annotations

_DONE = False


def init_process() -> None:
    """Idempotent: tune malloc once per process and make torchvision importable."""
    global _DONE
    if _DONE:
        return
    from bench.core.malloc import tune_glibc_malloc
    from bench.core.torchvision_compat import ensure_torchvision_importable

    tune_glibc_malloc()
    ensure_torchvision_importable()
    _DONE = True
