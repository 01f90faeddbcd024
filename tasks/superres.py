"""Super-resolution: bicubic downsampling by an integer factor per side, exactly ILO's
``BicubicDownSample`` (also SGILO's ``downsampler``; the rosinality/NVIDIA StyleGAN-2 code).

Per axis (H first, then W): reflect-pad (4f - f)//2 before and the rest after, correlate with a
4f-tap cubic kernel (a = -0.5; tap i = bicubic((i - floor(2f) + 0.5)/f), normalised to sum 1)
at stride f. Reflect padding is a gather, so the map is linear; its adjoint is written out
explicitly (transposed strided conv, then the padding folded back with a scatter-add) rather
than taken from autograd, so the adjointness test checks two independent code paths.
Note: factor 1 is not the identity (taps [-1, 9, 9, -1]/16, a half-pixel shift).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from tasks import register
from tasks._base import Operator, Task, check_finite, check_image_shape


def bicubic(x: float, a: float = -0.5) -> float:
    """Keys' cubic convolution kernel."""
    x = abs(x)
    if x <= 1.0:
        return (a + 2.0) * x ** 3 - (a + 3.0) * x ** 2 + 1.0
    if x < 2.0:
        return a * x ** 3 - 5.0 * a * x ** 2 + 8.0 * a * x - 4.0 * a
    return 0.0


def bicubic_taps(factor: int) -> torch.Tensor:
    """ILO's 4*factor normalised taps (float32)."""
    size = 4 * factor
    taps = torch.tensor([bicubic((i - math.floor(size / 2) + 0.5) / factor) for i in range(size)], dtype=torch.float64)
    return (taps / taps.sum()).float()


def reflect_pads(factor: int) -> tuple[int, int]:
    """(before, after) padding along each axis, as in ILO (TensorFlow 'SAME' split)."""
    total = 4 * factor - factor
    return total // 2, total - total // 2


def reflect_index(n: int, before: int, after: int) -> torch.Tensor:
    """Source index of every position of a reflect-padded axis (torch 'reflect': edge not repeated)."""
    j = torch.arange(-before, n + after)
    j = torch.where(j < 0, -j, j)
    return torch.where(j >= n, 2 * (n - 1) - j, j)


class BicubicDownsampleOperator(Operator):
    """y = BicubicDownSample(factor)(x): [B, C, H, W] -> [B, C, H/f, W/f]."""

    def __init__(self, factor: int, image_shape: Sequence[int], noise_sigma: float = 0.0,
                 device: torch.device | str = "cpu"):
        super().__init__(image_shape, noise_sigma, device)
        _, h, w = self.image_shape
        self.factor = factor
        taps = bicubic_taps(factor).to(self.device)
        self.kernel_h = taps.view(1, 1, -1, 1)
        self.kernel_w = taps.view(1, 1, 1, -1)
        before, after = reflect_pads(factor)
        self.index_h = reflect_index(h, before, after).to(self.device)
        self.index_w = reflect_index(w, before, after).to(self.device)

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        c, h, w = self.image_shape
        return (c, h // self.factor, w // self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.image_shape
        f = self.factor
        z = x.reshape(-1, 1, h, w)
        z = F.conv2d(z.index_select(2, self.index_h), self.kernel_h.to(z.dtype), stride=(f, 1))
        z = F.conv2d(z.index_select(3, self.index_w), self.kernel_w.to(z.dtype), stride=(1, f))
        return z.view(x.shape[0], c, h // f, w // f)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        c, h, w = self.image_shape
        f = self.factor
        z = y.reshape(-1, 1, h // f, w // f)
        z = F.conv_transpose2d(z, self.kernel_w.to(z.dtype), stride=(1, f))  # width W + 3f
        z = z.new_zeros(z.shape[0], 1, h // f, w).index_add_(3, self.index_w, z)  # fold the reflect padding
        z = F.conv_transpose2d(z, self.kernel_h.to(z.dtype), stride=(f, 1))  # height H + 3f
        z = z.new_zeros(z.shape[0], 1, h, w).index_add_(2, self.index_h, z)
        return z.view(y.shape[0], c, h, w)

    def preview(self, y: torch.Tensor) -> torch.Tensor:
        """The low-resolution image blown up (nearest) to full size."""
        return F.interpolate(y, scale_factor=self.factor, mode="nearest")


@dataclass(frozen=True)
class SuperresTask(Task):
    def validate_level(self, level: float) -> float:
        value = check_finite(level, self.name)
        if value < 1 or not value.is_integer():
            raise ValueError(f"{self.name}: level is the integer downsampling factor per side (>= 1), got {level}")
        return value

    def build(self, level: float, image_shape: Sequence[int], seed: int = 0, device: torch.device | str = "cpu",
              noise_sigma: float = 0.0) -> BicubicDownsampleOperator:
        factor = int(self.validate_level(level))
        c, h, w = check_image_shape(image_shape)
        if h % factor or w % factor:
            raise ValueError(f"{self.name}: factor {factor} must divide the image size {h}x{w}")
        if max(reflect_pads(factor)) >= min(h, w):
            raise ValueError(f"{self.name}: factor {factor} is too large for a {h}x{w} image (reflect padding "
                             f"{max(reflect_pads(factor))} must be smaller than the side); use factor <= side/2")
        return BicubicDownsampleOperator(factor, (c, h, w), noise_sigma, device)


TASK = register("superres")(SuperresTask(
    name="superres",
    level_meaning="integer bicubic downsampling factor per side (pixel count shrinks by level^2; "
                  "x16 per side = x256 in pixels, the paper's fairness experiment)",
    default_levels=(8, 4, 2),
    harder_when="higher",
))
