"""The maths of the Theorem 3.1 experiment, as pure functions of tensors and seeds.

Instances (W_1..W_d, A, z*) with W_i ~ N(0, 2/n_i), A ~ N(0, 1/m), ||z*|| = 1, y = A G(z*) and
f(z) = ||A G(z) - y||^2; all chains of all instances advance together (one batched matmul per
layer) with the very step the ``langevin`` method uses (:func:`bench.priors.relu_net.langevin_step`).
Also distances to z* and -rho z*, and the sliced 2-Wasserstein distance between samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from bench.core.seeds import derive_seed
from bench.experiments.theory.config import Setting
from bench.priors import relu_net as rn


# ----------------------------------------------------------------------------- instances
@dataclass
class Instances:
    """I random problems of one setting, stacked on a leading axis."""

    setting: Setting
    weights: list[torch.Tensor]  # [I, n_i, n_{i-1}]
    A: torch.Tensor  # [I, m, n_d]
    z_star: torch.Tensor  # [I, 1, k], unit norm
    y: torch.Tensor  # [I, 1, m]
    rho: torch.Tensor  # [I, 1]: -rho z* minimises f on the ray -z*

    @property
    def count(self) -> int:
        return self.A.shape[0]


def make_instances(setting: Setting, count: int, tag: str = "", first: int = 0) -> Instances:
    """Instances first .. first+count-1 of (setting, tag), each seeded by its index alone.

    A is the ``cs`` task's dense Gaussian matrix (same code, same law).
    """
    from tasks.cs import dense_gaussian

    widths, s = setting.widths, math.isqrt(setting.widths[-1])
    nets, mats, stars = [], [], []
    for i in range(first, first + count):
        nets.append(rn.sample_weights(widths, derive_seed("net", tag, setting, i)))
        mats.append(dense_gaussian(setting.level, (1, s, s), derive_seed("A", tag, setting, i)))
        stars.append(rn.unit_latents(1, setting.k, derive_seed("z", tag, setting, i)))
    weights, A, z_star = rn.stack_weights(nets), torch.stack(mats), torch.stack(stars)
    y = rn.generate(weights, z_star) @ A.transpose(-1, -2)
    return Instances(setting, weights, A, z_star, y, rn.saddle_on_ray(weights, A, y, z_star))


# ----------------------------------------------------------------------------- chains
def initial(inst: Instances, kind: str, chains: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """[I, B, k] starts: "randn" (||z0|| ~ scale) or "neg_star" (-rho z* + jitter), via the method's init."""
    noise = torch.randn(inst.count, chains, inst.setting.k, generator=gen)
    z_star = inst.z_star.expand(-1, chains, -1)
    return rn.init_latents(kind, noise, scale, z_star, inst.rho.expand(-1, chains))


def simulate(inst: Instances, z: torch.Tensor, steps: int, eta: float, beta: float | None, gen: torch.Generator,
             observe: Callable[[int, torch.Tensor], bool | None], every: int = 1) -> torch.Tensor:
    """Run the chains; ``observe(t, z)`` at t = 0, every ``every`` steps and at the end (True stops)."""
    if observe(0, z):
        return z
    for t in range(1, steps + 1):
        _, grad = rn.loss_and_grad(inst.weights, inst.A, inst.y, z)
        noise = None if beta is None else torch.randn(z.shape, generator=gen)
        z = rn.langevin_step(z, grad, eta, beta, noise)
        if (t % every == 0 or t == steps) and observe(t, z):
            break
    return z


def distances(inst: Instances, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per run: distance to z*, to -rho z*, and cosine with z*."""
    return {
        "star": (z - inst.z_star).norm(dim=-1),
        "neg": (z + inst.rho.unsqueeze(-1) * inst.z_star).norm(dim=-1),
        "cos": (z * inst.z_star).sum(-1) / z.norm(dim=-1).clamp_min(1e-12),
    }


# ----------------------------------------------------------------------------- sliced Wasserstein
def random_directions(k: int, count: int, gen: torch.Generator) -> torch.Tensor:
    d = torch.randn(k, count, generator=gen)
    return d / d.norm(dim=0, keepdim=True)


def sliced_w2(x: torch.Tensor, ref: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Sliced 2-Wasserstein distance between samples x [..., N, k] and ref [..., M, k].

    Each 1-D projection's W2 compares x's sorted projections with ref's quantiles at the
    levels (i + 1/2) / N (exact for N = M; a quantile estimate of the reference otherwise);
    SW = sqrt(mean over directions of W2^2).
    """
    px = (x @ directions).sort(dim=-2).values
    pr = (ref @ directions).sort(dim=-2).values
    n, m = px.shape[-2], pr.shape[-2]
    idx = ((torch.arange(n, dtype=torch.float64) + 0.5) * m / n).floor().long().clamp_max(m - 1)
    return (px - pr.index_select(-2, idx)).pow(2).mean(dim=(-2, -1)).sqrt()
