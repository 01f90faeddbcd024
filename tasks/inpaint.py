"""Randomised inpainting: a seeded random subset of pixels is observed (all channels of each).

Unlike ILO's ``remove_pixels`` (an independent Bernoulli(p) per pixel), the observed pixels
are drawn without replacement, so the measurement count is exactly round(level*H*W)*C and
curves across seeds compare the same problem size. Paper Figure 1 uses 0.75% observed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from tasks import register
from tasks._base import Task, check_finite, check_image_shape, seeded_generator
from tasks._mask import PixelMaskOperator


def random_pixel_mask(level: float, height: int, width: int, seed: int) -> torch.Tensor:
    """Bool [H, W] with exactly round(level*H*W) True pixels, chosen by a seeded randperm."""
    k = round(level * height * width)
    if k < 1:
        raise ValueError(f"inpaint: level {level} observes no pixel of a {height}x{width} image; "
                         f"use level >= {0.5 / (height * width):.2g}")
    chosen = torch.randperm(height * width, generator=seeded_generator(seed))[:k]
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[chosen] = True
    return mask.view(height, width)


@dataclass(frozen=True)
class InpaintTask(Task):
    def validate_level(self, level: float) -> float:
        value = check_finite(level, self.name)
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{self.name}: level is the fraction of pixels observed and must be in (0, 1], "
                             f"got {level}")
        return value

    def build(self, level: float, image_shape: Sequence[int], seed: int = 0, device: torch.device | str = "cpu",
              noise_sigma: float = 0.0) -> PixelMaskOperator:
        level = self.validate_level(level)
        c, h, w = check_image_shape(image_shape)
        return PixelMaskOperator(random_pixel_mask(level, h, w, seed), (c, h, w), noise_sigma, device)


TASK = register("inpaint")(InpaintTask(
    name="inpaint",
    level_meaning="fraction of pixels observed (all channels of an observed pixel), chosen at random",
    default_levels=(0.02, 0.05, 0.2, 0.5),
    harder_when="lower",
    randomized=True,
))
