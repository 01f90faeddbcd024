"""The one device setting: ``BENCH_DEVICE`` (cpu, cuda, cuda:1, ... or auto, the default)."""
from __future__ import annotations

import os

import torch

ENV_VAR = "BENCH_DEVICE"


def get_device(name: str | None = None) -> torch.device:
    name = name or os.environ.get(ENV_VAR, "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{ENV_VAR}={name} asks for CUDA but torch sees no GPU; use cpu or auto")
    return dev
