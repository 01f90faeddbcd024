"""Pixel-mask operator shared by ``inpaint`` (random pixels) and ``inpaint_box`` (a hidden box).

Measurements are the observed entries gathered into a flat vector rather than a zero-filled
image, so the measurement count is exactly the number of observed entries and the adjoint is
a true transpose (a scatter), not a mask multiplication that hides the unobserved zeros.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from tasks._base import Operator

# Preview colour of unobserved pixels: mid-grey on the [-1, 1] scale, so they are not mistaken for black
# image content (ILO's own figures fill them with black).
UNOBSERVED_VALUE = 0.0


class PixelMaskOperator(Operator):
    """y = x[:, :, observed pixels] flattened channel-major: [B, C * k]."""

    def __init__(self, mask: torch.Tensor, image_shape: Sequence[int], noise_sigma: float = 0.0,
                 device: torch.device | str = "cpu"):
        super().__init__(image_shape, noise_sigma, device)
        c, h, w = self.image_shape
        if mask.shape != (h, w) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape {(h, w)}, got {mask.dtype} {tuple(mask.shape)}")
        self.mask = mask.to(self.device)  # [H, W], True = observed
        self.index = mask.flatten().nonzero().squeeze(1).to(self.device)  # sorted observed pixel indices

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (self.image_shape[0] * self.index.numel(),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).index_select(2, self.index).flatten(1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        c, h, w = self.image_shape
        out = y.new_zeros(y.shape[0], c, h * w)
        out.index_copy_(2, self.index, y.reshape(y.shape[0], c, -1))
        return out.view(y.shape[0], c, h, w)

    @property
    def official_loss_scale(self) -> float:
        """Official ILO/SGILO: F.mse_loss(x * mask, y * mask), a mean over all n values (k / n of ours)."""
        return self.num_measurements / math.prod(self.image_shape)

    has_fill = True

    def fill(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mask = self.mask.to(x.dtype)
        return x * (1 - mask) + self.adjoint(y) * mask

    def preview(self, y: torch.Tensor) -> torch.Tensor:
        """The observed pixels in place, the unobserved ones grey."""
        return self.adjoint(y).masked_fill(~self.mask, UNOBSERVED_VALUE)
