"""Projections used by ILO-family methods (pure functions, batched per image)."""
from __future__ import annotations

import torch


def project_l1_ball(x: torch.Tensor, radius: float | torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each batch row (flattened) onto {v : ||v||_1 <= radius}.

    Sort-based algorithm of Duchi et al. (2008), as in ILO's utils.py; rows already inside
    the ball are returned unchanged.
    """
    shape = x.shape
    v = x.reshape(shape[0], -1)
    r = torch.as_tensor(radius, dtype=v.dtype, device=v.device).reshape(-1, 1).expand(v.shape[0], 1)
    a = v.abs()
    inside = a.sum(1, keepdim=True) <= r
    mu, _ = torch.sort(a, dim=1, descending=True)
    cumsum = mu.cumsum(1)
    idx = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    cond = mu * idx > (cumsum - r)
    rho = cond.to(v.dtype).cumsum(1).argmax(1, keepdim=True)  # last index where cond holds
    theta = (cumsum.gather(1, rho) - r) / (rho.to(v.dtype) + 1)
    proj = torch.sign(v) * (a - theta).clamp_min(0)
    return torch.where(inside, v, proj).reshape(shape)


def sphere_norms(x: torch.Tensor) -> torch.Tensor:
    """Norm of every slice over dims 2.. (per batch row and dim-1 index), as ILO's SphericalOptimizer."""
    return x.pow(2).sum(tuple(range(2, x.ndim)), keepdim=True).add(1e-9).sqrt()


def project_to_radii(x: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Rescale each slice of ``x`` (see sphere_norms) to the given radii."""
    return x / sphere_norms(x) * radii


def geocross(latent: torch.Tensor) -> torch.Tensor:
    """ILO's geodesic cross loss per image [B] on a [B, L, D] latent (all L x L pairs).

    mean_{i,j}(D * (2 atan2(|x_i - x_j|, |x_i + x_j|))^2) / 8, with D the latent width.
    The official ILO code slices the latent along the batch dimension, which makes the term
    vanish for rounds >= 1 (the rosinality/NVIDIA StyleGAN-2 code); callers here slice the rows (dim 1).
    """
    if latent.shape[1] < 2:
        return latent.new_zeros(latent.shape[0])
    x, y = latent[:, :, None, :], latent[:, None, :, :]
    a = (x - y).pow(2).sum(-1).add(1e-9).sqrt()
    b = (x + y).pow(2).sum(-1).add(1e-9).sqrt()
    d = 2 * torch.atan2(a, b)
    return (latent.shape[-1] * d.pow(2)).mean((1, 2)) / 8
