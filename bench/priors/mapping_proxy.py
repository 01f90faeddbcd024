"""The Gaussian-fit mapping proxy used by ILO and SGILO instead of the mapping MLP.

The mapping's last layer outputs sqrt(2) * lrelu_0.2(a); ``LeakyReLU(5)`` undoes the 0.2
slope, so v = lrelu_5(mapping(z)) is close to Gaussian. Fitting a per-dimension mean and
std of v lets methods optimise a Gaussian latent z and map it with
``w = lrelu_0.2(std * z + mean)`` (the rosinality/NVIDIA StyleGAN-2 code; recipe from PULSE and SGILO).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.priors.stylegan2 import Generator


@torch.no_grad()
def fit_gaussian(g: Generator, n: int = 100_000, seed: int = 0, batch: int = 10_000) -> dict[str, torch.Tensor]:
    """Per-dimension mean/std of lrelu_5(mapping(z)), z ~ N(0, I), from ``n`` samples."""
    gen = torch.Generator().manual_seed(seed)
    device = next(g.parameters()).device
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn(b, g.style_dim, generator=gen).to(device)
        v = F.leaky_relu(g.get_latent(z), negative_slope=5.0).double()
        total = total + v.sum(0)
        total_sq = total_sq + v.pow(2).sum(0)
        count += b
    mean = total / count
    std = (total_sq / count - mean.pow(2)).clamp_min(0).sqrt()
    return {"mean": mean.float().cpu(), "std": std.float().cpu()}


class MappingProxy(nn.Module):
    """z (any shape [..., style_dim]) -> w = lrelu_0.2(std * z + mean)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(z * self.std + self.mean, negative_slope=0.2)

    def invert(self, w: torch.Tensor) -> torch.Tensor:
        """z such that forward(z) == w (the proxy is a bijection)."""
        return (F.leaky_relu(w, negative_slope=5.0) - self.mean) / self.std


def load_fit(path: str | Path) -> dict[str, torch.Tensor]:
    from bench.core.io import load_tensors

    fit = load_tensors(path, "a Gaussian fit of the mapping network ({'mean', 'std'})")
    if not isinstance(fit, dict) or not {"mean", "std"} <= set(fit):
        raise ValueError(f"{path}: expected a dict with 'mean' and 'std' (a gaussian_fit.pt file)")
    return {"mean": fit["mean"].float(), "std": fit["std"].float()}


def load_or_fit(g: Generator, cache: str | Path | None, n: int = 100_000, seed: int = 0) -> MappingProxy:
    """The proxy from ``cache`` when it exists, else fitted now and written there."""
    if cache is not None and Path(cache).is_file():
        fit = load_fit(cache)
    else:
        fit = fit_gaussian(g, n=n, seed=seed)
        if cache is not None:
            from bench.core.io import atomic_torch_save

            atomic_torch_save(fit, cache)
    for key in ("mean", "std"):  # both, or a wrong std would silently broadcast
        if fit[key].shape != (g.style_dim,):
            raise ValueError(f"{cache}: the Gaussian fit's {key} has shape {tuple(fit[key].shape)}, the generator's "
                             f"style_dim is {g.style_dim}: a fit of another generator? delete the file to refit")
    return MappingProxy(fit["mean"], fit["std"]).to(next(g.parameters()).device)
