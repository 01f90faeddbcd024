"""Box inpainting: one hidden rectangle at a seeded random position; the rest is observed.

The box keeps the image's aspect ratio (a square on square images) with sides
round(H*sqrt(level)) x round(W*sqrt(level)), so its area is level*H*W up to rounding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from tasks import register
from tasks._base import Task, check_finite, check_image_shape, seeded_generator
from tasks._mask import PixelMaskOperator


def box_size(level: float, height: int, width: int) -> tuple[int, int]:
    """Sides (h, w) of the hidden box for a hidden-area fraction ``level``."""
    side = math.sqrt(level)
    return min(height, round(height * side)), min(width, round(width * side))


def random_box_mask(level: float, height: int, width: int, seed: int) -> torch.Tensor:
    """Bool [H, W], False inside a box of area ~level*H*W placed uniformly fully inside the image."""
    bh, bw = box_size(level, height, width)
    if bh < 1 or bw < 1:
        raise ValueError(f"inpaint_box: level {level} hides no pixel of a {height}x{width} image")
    if bh * bw == height * width:
        raise ValueError(f"inpaint_box: level {level} hides the whole {height}x{width} image")
    g = seeded_generator(seed)
    top = int(torch.randint(0, height - bh + 1, (1,), generator=g))
    left = int(torch.randint(0, width - bw + 1, (1,), generator=g))
    mask = torch.ones(height, width, dtype=torch.bool)
    mask[top:top + bh, left:left + bw] = False
    return mask


@dataclass(frozen=True)
class InpaintBoxTask(Task):
    def validate_level(self, level: float) -> float:
        value = check_finite(level, self.name)
        if not 0.0 < value < 1.0:
            raise ValueError(f"{self.name}: level is the fraction of the image area hidden and must be in (0, 1), "
                             f"got {level}")
        return value

    def build(self, level: float, image_shape: Sequence[int], seed: int = 0, device: torch.device | str = "cpu",
              noise_sigma: float = 0.0) -> PixelMaskOperator:
        level = self.validate_level(level)
        c, h, w = check_image_shape(image_shape)
        return PixelMaskOperator(random_box_mask(level, h, w, seed), (c, h, w), noise_sigma, device)


TASK = register("inpaint_box")(InpaintBoxTask(
    name="inpaint_box",
    level_meaning="fraction of the image area hidden by one rectangle (image aspect ratio) at a random position",
    default_levels=(0.5, 0.25, 0.1),
    harder_when="higher",
    randomized=True,
))
