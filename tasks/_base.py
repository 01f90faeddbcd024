"""The task (forward-operator) interface every plugin in ``tasks/`` implements.

A :class:`Task` turns a difficulty ``level`` (the x-axis of the curves; its meaning is
stated by ``Task.level_meaning``), an image shape and a seed into an :class:`Operator`: a
differentiable, batched forward map ``A`` from images [B, C, H, W] in [-1, 1] to
measurements [B, ...], with its noise model. The operator is a pure function of
(task, level, image shape, seed): all randomness (masks, matrices, signs) is drawn on the
CPU from ``torch.Generator().manual_seed(seed)`` and then moved to the device, so the same
seed gives the same operator on any device, and the same operator is applied to every image
of a batch (an image's result never depends on its batch-mates).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for operator randomness (never the global RNG)."""
    return torch.Generator(device="cpu").manual_seed(int(seed))


def check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    """(C, H, W) as ints; a clear error for anything else (e.g. a batch shape by mistake)."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {tuple(image_shape)}")
    return shape  # type: ignore[return-value]


def check_finite(level: float, task: str) -> float:
    """float(level), refusing NaN/inf so every task's range check can assume a real number."""
    value = float(level)
    if not math.isfinite(value):
        raise ValueError(f"{task}: level must be a finite number, got {level!r}")
    return value


def total_sigma(*sigmas: float) -> float:
    """Std of a sum of independent Gaussian noises (variances add)."""
    return math.sqrt(sum(float(s) ** 2 for s in sigmas))


class Operator:
    """y = A(x) + noise_sigma * e, e ~ N(0, I), for a batch of images."""

    linear: ClassVar[bool] = True

    def __init__(self, image_shape: Sequence[int], noise_sigma: float = 0.0, device: torch.device | str = "cpu"):
        self.image_shape = tuple(int(s) for s in image_shape)  # (C, H, W)
        self.noise_sigma = float(noise_sigma)
        self.device = torch.device(device)

    # --- to implement -------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Noise-free measurements of a batch [B, C, H, W] -> [B, *measurement_shape]."""
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y for linear operators (batched), [B, *measurement_shape] -> [B, C, H, W]."""
        raise NotImplementedError(f"{type(self).__name__} is not linear or has no adjoint")

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    @property
    def num_measurements(self) -> int:
        n = 1
        for s in self.measurement_shape:
            n *= s
        return n

    def measure(self, x: torch.Tensor, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """Noisy measurements; image i's noise comes from ``generators[i]`` (CPU generators)."""
        y = self.forward(x)
        if self.noise_sigma > 0:
            if generators is None or len(generators) != y.shape[0]:
                raise ValueError("noisy measurements need one torch.Generator per image")
            noise = torch.stack([torch.randn(y.shape[1:], generator=g) for g in generators]).to(y)
            y = y + self.noise_sigma * noise
        return y

    def loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image measurement MSE [B] (mean over measurement entries)."""
        return (y_hat - y).pow(2).flatten(1).mean(1)

    def preview(self, y: torch.Tensor) -> torch.Tensor | None:
        """An image-shaped view of measurements for figures and W&B panels (None if none)."""
        return None

    # --- the official objective (methods/_objective.py, docs/DEVIATIONS.md) ---------------
    @property
    def official_loss_scale(self) -> float:
        """The official code's data term divided by ours (:meth:`loss`). 1.0 unless an operator says otherwise;
        for tasks the official code does not have (or whose normalisation it does not fix) ours is kept."""
        return 1.0

    has_fill: ClassVar[bool] = False  # whether the official LPIPS "fill" term is defined for this operator

    def fill(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x`` with its observed values replaced by the measurements ``y`` (the official LPIPS fill policy)."""
        raise NotImplementedError(f"{type(self).__name__} defines no fill")


@dataclass(frozen=True)
class Task:
    """A named family of operators indexed by a difficulty level."""

    name: str
    level_meaning: str  # e.g. "fraction of pixels observed"
    default_levels: tuple[float, ...]  # hardest first; a World may set its own (bench/priors/world.py)
    harder_when: str = "lower"  # "lower" or "higher" level means a harder problem
    randomized: bool = False  # True when the operator depends on the seed (masks, matrices)

    def build(self, level: float, image_shape: Sequence[int], seed: int = 0, device: torch.device | str = "cpu",
              noise_sigma: float = 0.0) -> Operator:
        raise NotImplementedError

    def validate_level(self, level: float) -> float:
        """Raise ValueError with the allowed range when ``level`` makes no sense."""
        return float(level)
