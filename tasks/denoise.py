"""Denoising: A is the identity and the level is the Gaussian noise sigma.

The level is on the harness's [-1, 1] image scale: sigma 0.1 here is 0.05 on a [0, 1] scale
(and 12.75 on [0, 255]). ``build``'s extra ``noise_sigma`` is independent noise on top, so the
operator's total sigma is sqrt(level^2 + noise_sigma^2); leave it 0 to get exactly the level.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from tasks import register
from tasks._base import Operator, Task, check_finite, check_image_shape, total_sigma


class IdentityOperator(Operator):
    """y = x (+ noise)."""

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return self.image_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def preview(self, y: torch.Tensor) -> torch.Tensor:
        return y


@dataclass(frozen=True)
class DenoiseTask(Task):
    def validate_level(self, level: float) -> float:
        value = check_finite(level, self.name)
        if value < 0.0:
            raise ValueError(f"{self.name}: level is the noise sigma on the [-1, 1] scale and must be >= 0, "
                             f"got {level}")
        return value

    def build(self, level: float, image_shape: Sequence[int], seed: int = 0, device: torch.device | str = "cpu",
              noise_sigma: float = 0.0) -> IdentityOperator:
        sigma = total_sigma(self.validate_level(level), noise_sigma)
        return IdentityOperator(check_image_shape(image_shape), sigma, device)


TASK = register("denoise")(DenoiseTask(
    name="denoise",
    level_meaning="Gaussian noise sigma on the [-1, 1] image scale (0.1 here = 0.05 on [0, 1]); "
                  "an extra build noise_sigma adds in quadrature",
    default_levels=(1.0, 0.5, 0.25, 0.1),
    harder_when="higher",
))
