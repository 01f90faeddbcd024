"""SGILO benchmark harness: generative-prior inverse problems, tuned and evaluated fairly."""
from bench._compat import ensure_torchvision_importable as _ensure_tv
from bench._malloc import tune_glibc_malloc as _tune_malloc

_ensure_tv()
_tune_malloc()

__version__ = "0.1.0"
