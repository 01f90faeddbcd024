"""Colorization: only the luminance 0.2989 R + 0.5870 G + 0.1140 B is observed (SGILO's colorizer).

The measurement is one gray channel [B, 1, H, W] (SGILO repeats it to 3 channels, which only
triples the MSE weight). The level is the measurement noise sigma on the [-1, 1] scale; an
extra ``build`` noise_sigma adds in quadrature.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from tasks import register
from tasks._base import Operator, Task, check_finite, check_image_shape, total_sigma

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


class GrayscaleOperator(Operator):
    """y = sum_c w_c x_c, one channel."""

    def __init__(self, image_shape: Sequence[int], noise_sigma: float = 0.0, device: torch.device | str = "cpu"):
        super().__init__(image_shape, noise_sigma, device)
        self.weights = torch.tensor(GRAY_WEIGHTS, device=self.device).view(1, 3, 1, 1)

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (1, *self.image_shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weights).sum(1, keepdim=True)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.weights

    def preview(self, y: torch.Tensor) -> torch.Tensor:
        return y.expand(-1, 3, -1, -1)


@dataclass(frozen=True)
class ColorizeTask(Task):
    def validate_level(self, level: float) -> float:
        value = check_finite(level, self.name)
        if value < 0.0:
            raise ValueError(f"{self.name}: level is the measurement noise sigma and must be >= 0, got {level}")
        return value

    def build(self, level: float, image_shape: Sequence[int], seed: int = 0, device: torch.device | str = "cpu",
              noise_sigma: float = 0.0) -> GrayscaleOperator:
        sigma = total_sigma(self.validate_level(level), noise_sigma)
        shape = check_image_shape(image_shape)
        if shape[0] != 3:
            raise ValueError(f"colorize needs RGB images (3 channels); this prior produces {shape[0]}-channel images")
        return GrayscaleOperator(shape, sigma, device)


TASK = register("colorize")(ColorizeTask(
    name="colorize",
    level_meaning="measurement noise sigma on the [-1, 1] scale of the gray image 0.2989R+0.5870G+0.1140B",
    default_levels=(0.0,),
    harder_when="higher",
))
