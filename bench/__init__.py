"""SGILO benchmark harness: generative-prior inverse problems, tuned and evaluated fairly."""
from bench._compat import ensure_torchvision_importable as _ensure_tv

_ensure_tv()

__version__ = "0.1.0"
