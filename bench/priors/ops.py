"""Pure-PyTorch StyleGAN-2 primitives (no custom CUDA ops, identical on CPU and CUDA).

These reproduce rosinality's ``upfirdn2d_native`` and ``fused_leaky_relu`` numerics; the
official repositories compile CUDA kernels for them and silently fall back to slow
paths when compilation fails, which is exactly what we avoid here.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def make_kernel(k: Sequence[float]) -> torch.Tensor:
    """Separable FIR kernel from 1-D taps, normalised to sum 1 (rosinality make_kernel)."""
    t = torch.tensor(k, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None, :] * t[:, None]
    return t / t.sum()


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), FIR-filter, downsample.

    Same pads on both axes; the kernel is applied as a true convolution (flipped).
    Output size is ``(H*up + p0 + p1 - kh) // down + 1``.
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[-2:]
        x = x[:, :, max(-p0, 0) : hh - max(-p1, 0), max(-p0, 0) : ww - max(-p1, 0)]
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv2d(x, weight, stride=down, groups=c)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None, negative_slope: float = 0.2) -> torch.Tensor:
    """sqrt(2) * leaky_relu(x + bias) with the bias broadcast over dim 1."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.view(shape)
    return F.leaky_relu(x, negative_slope) * SQRT2
