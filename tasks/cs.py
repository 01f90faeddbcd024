"""Compressed sensing: m = round(level * n) random linear measurements of the n = C*H*W pixels.

Small images (n <= DENSE_MAX_N) use a dense Gaussian matrix; at paper scale (n = 3*1024^2) a
dense matrix is impossible, so, as in ILO's ``fast_compress``, a partial circulant operator
is used instead:  y = P_Omega( f (*) (s . x) ) / sqrt(m),  with (*) a TRUE circular
convolution of length n computed by FFT. Both are scaled so that E||A x||^2 = ||x||^2.

Beware when comparing to the official code: ILO's operator is a true circular convolution
(the rosinality/NVIDIA StyleGAN-2 code, without the 1/sqrt(m)), but SGILO's port calls ``torch.fft.fft(x, 1)``
where ``1`` is the FFT *length*, so its "circulant" is just the elementwise product
(s . x . f)[Omega] (the official SGILO code). We implement the intended (ILO) operator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from tasks import register
from tasks._base import Operator, Task, check_finite, check_image_shape, seeded_generator

DENSE_MAX_N = 4096  # largest n for the dense Gaussian matrix under kind="auto" (64 MiB at m = n)
KINDS = ("auto", "dense", "circulant")


def back_projection_preview(op: Operator, y: torch.Tensor) -> torch.Tensor:
    """A^T y rescaled per image to [-1, 1]: what the measurements say about the image, as a picture."""
    bp = op.adjoint(y)
    flat = bp.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    return (bp - lo) / (hi - lo + 1e-12) * 2 - 1


class DenseGaussianOperator(Operator):
    """y = A vec(x), A [m, n] with i.i.d. N(0, 1/m) entries."""

    def __init__(self, matrix: torch.Tensor, image_shape: Sequence[int], noise_sigma: float = 0.0,
                 device: torch.device | str = "cpu"):
        super().__init__(image_shape, noise_sigma, device)
        self.matrix = matrix.to(self.device)

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (self.matrix.shape[0],)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.matrix.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (y @ self.matrix).view(y.shape[0], *self.image_shape)

    @property
    def official_loss_scale(self) -> float:
        """Official ILO: F.mse_loss over the m values of the operator without 1/sqrt(m): m times ours."""
        return float(self.num_measurements)

    def preview(self, y: torch.Tensor) -> torch.Tensor:
        return back_projection_preview(self, y)


class PartialCirculantOperator(Operator):
    """y = (f (*) (s . vec(x)))[Omega] / sqrt(m): random signs, circular convolution, subsampling."""

    def __init__(self, filt: torch.Tensor, signs: torch.Tensor, indices: torch.Tensor, image_shape: Sequence[int],
                 noise_sigma: float = 0.0, device: torch.device | str = "cpu"):
        super().__init__(image_shape, noise_sigma, device)
        self.n = filt.numel()
        self.filt = filt.to(self.device)  # f [n], the circulant matrix's first column
        self.signs = signs.to(self.device)  # s [n], +-1
        self.indices = indices.to(self.device)  # Omega [m], sorted, distinct
        self.filt_hat = torch.fft.rfft(self.filt)  # cached spectrum of f
        self.scale = 1.0 / math.sqrt(indices.numel())

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (self.indices.numel(),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.flatten(1) * self.signs
        conv = torch.fft.irfft(torch.fft.rfft(v) * self.filt_hat, n=self.n)  # (C v)_i = sum_j f_{(i-j) mod n} v_j
        return conv.index_select(1, self.indices) * self.scale

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        u = y.new_zeros(y.shape[0], self.n).index_copy_(1, self.indices, y)  # P^T y
        corr = torch.fft.irfft(torch.fft.rfft(u) * self.filt_hat.conj(), n=self.n)  # C^T u: circular correlation
        return (corr * self.signs * self.scale).view(y.shape[0], *self.image_shape)

    @property
    def official_loss_scale(self) -> float:
        """Official ILO: F.mse_loss over the m values of the operator without 1/sqrt(m): m times ours."""
        return float(self.num_measurements)

    def preview(self, y: torch.Tensor) -> torch.Tensor:
        return back_projection_preview(self, y)


def num_measurements(level: float, n: int) -> int:
    m = round(level * n)
    if m < 1:
        raise ValueError(f"cs: level {level} gives no measurement of n = {n} pixels; use level >= {0.5 / n:.2g}")
    return m


def dense_gaussian(level: float, image_shape: Sequence[int], seed: int) -> torch.Tensor:
    """A [m, n] with N(0, 1/m) entries from the seeded CPU generator."""
    n = math.prod(image_shape)
    m = num_measurements(level, n)
    return torch.randn(m, n, generator=seeded_generator(seed)) / math.sqrt(m)


def partial_circulant(level: float, image_shape: Sequence[int],
                      seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f ~ N(0, 1) [n], s in {-1, +1} [n], Omega: m sorted distinct indices) from one seeded generator."""
    n = math.prod(image_shape)
    m = num_measurements(level, n)
    g = seeded_generator(seed)
    filt = torch.randn(n, generator=g)
    signs = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1
    indices = torch.randperm(n, generator=g)[:m].sort().values
    return filt, signs, indices


@dataclass(frozen=True)
class CompressedSensingTask(Task):
    kind: str = "auto"  # "dense", "circulant", or "auto" (dense iff n <= DENSE_MAX_N)

    def validate_level(self, level: float) -> float:
        value = check_finite(level, self.name)
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{self.name}: level is m/n (measurements per pixel value) and must be in (0, 1], "
                             f"got {level}")
        return value

    def resolve_kind(self, n: int) -> str:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "auto":
            return "dense" if n <= DENSE_MAX_N else "circulant"
        return self.kind

    def build(self, level: float, image_shape: Sequence[int], seed: int = 0, device: torch.device | str = "cpu",
              noise_sigma: float = 0.0) -> Operator:
        level = self.validate_level(level)
        shape = check_image_shape(image_shape)
        if self.resolve_kind(math.prod(shape)) == "dense":
            return DenseGaussianOperator(dense_gaussian(level, shape, seed), shape, noise_sigma, device)
        return PartialCirculantOperator(*partial_circulant(level, shape, seed), shape, noise_sigma, device)


TASK = register("cs")(CompressedSensingTask(
    name="cs",
    level_meaning="m/n, measurements per pixel value (n = C*H*W); dense Gaussian for n <= 4096, "
                  "partial circulant (random signs, circular convolution, random rows) above",
    default_levels=(0.02, 0.05, 0.1, 0.25),
    harder_when="lower",
    randomized=True,
))
