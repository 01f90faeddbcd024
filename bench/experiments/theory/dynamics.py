"""The maths of the Theorem 3.1 experiment, as pure functions of tensors and seeds.

Instances (W_1..W_d, A, z*) with W_i ~ N(0, 2/n_i), A ~ N(0, 1/m), ||z*|| = 1, y = A G(z*) and
f(z) = ||A G(z) - y||^2; all chains of all instances advance together (one batched matmul per
layer) with the very step the ``langevin`` method uses (:func:`bench.priors.relu_net.langevin_step`).
Also distances to z* and -rho z*, the exact 2-Wasserstein distance between two equal-size
samples (an optimal assignment), the sliced one, and a Metropolis-adjusted (MALA) step for
an unbiased reference sample of mu ~ exp(-beta f).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
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

    def loss_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f and grad f at z [I, B, k] (the potential all chains of this experiment run on)."""
        return rn.loss_and_grad(self.weights, self.A, self.y, z)


LossGrad = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # z [I, B, k] -> f [I, B], grad [I, B, k]


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


# ----------------------------------------------------------------------------- exact Wasserstein
def exact_w2(x: torch.Tensor, y: torch.Tensor) -> float:
    """W2 between the empirical laws of two equal-size samples x, y [N, k].

    For uniform weights on N points each, an optimal coupling is a permutation (Birkhoff), so
    W2^2 = min over assignments of the mean squared distance: solved exactly by
    :func:`scipy.optimize.linear_sum_assignment` (Hungarian/Jonker-Volgenant, ~10 ms at N = 256).
    """
    from scipy.optimize import linear_sum_assignment

    if x.shape != y.shape:
        raise ValueError(f"exact_w2 needs equal-size samples, got {tuple(x.shape)} and {tuple(y.shape)}")
    cost = torch.cdist(x.double(), y.double()).pow(2).numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def exact_w2_batch(x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """:func:`exact_w2` per instance for x, y [I, N, k]."""
    return [exact_w2(x[i], y[i]) for i in range(x.shape[0])]


# ----------------------------------------------------------------------------- MALA reference
def mala(loss_grad: LossGrad, z: torch.Tensor, steps: int, eta: float, beta: float,
         gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """``steps`` Metropolis-adjusted Langevin steps targeting exp(-beta f); returns (z, acceptance rate).

    The proposal is the theorem's update; the accept/reject step makes exp(-beta f) exactly
    invariant, so a reference built this way has no O(eta) discretisation bias.
    """
    f, g = loss_grad(z)
    accepted = 0.0
    scale = math.sqrt(2.0 * eta / beta)
    for _ in range(steps):
        prop = z - eta * g + scale * torch.randn(z.shape, generator=gen, dtype=z.dtype)
        fp, gp = loss_grad(prop)
        fwd = (prop - z + eta * g).pow(2).sum(-1)  # -log q(prop | z) * 4 eta / beta
        bwd = (z - prop + eta * gp).pow(2).sum(-1)
        log_alpha = -beta * (fp - f) - beta / (4.0 * eta) * (bwd - fwd)
        acc = torch.log(torch.rand(log_alpha.shape, generator=gen, dtype=z.dtype)) < log_alpha
        z = torch.where(acc.unsqueeze(-1), prop, z)
        f = torch.where(acc, fp, f)
        g = torch.where(acc.unsqueeze(-1), gp, g)
        accepted += acc.float().mean().item()
    return z, accepted / max(1, steps)


# ----------------------------------------------------------------------------- t_eps
def checkpoints(cap: int, growth: float = 1.05) -> list[int]:
    """Steps 1, 2, ... growing geometrically by ``growth`` up to ``cap`` (t_eps to ~5% resolution)."""
    ts, t = [], 1.0
    while t < cap:
        ts.append(int(t))
        t = max(t * growth, int(t) + 1)
    return sorted(set(ts + [cap]))


def w2_trajectory(loss_grad: LossGrad, z0: torch.Tensor, ref: torch.Tensor, eta: float, beta: float | None,
                  cap: int, eps: float, gen: torch.Generator, star: torch.Tensor | None = None,
                  radius: float = 0.25) -> dict:
    """Run chains z0 [I, N, k]; exact W2 of their empirical law to ``ref`` [I, N, k] at :func:`checkpoints`.

    t_eps[i] = first checkpoint with W2 <= eps (inf if none by ``cap``); the run stops once every
    instance got there. With ``star`` [I, 1, k], also each chain's first step within ``radius``
    of it (the old fixed-ball hitting time, kept as a sanity check).
    """
    count = z0.shape[0]
    t_eps = [math.inf] * count
    hit = torch.full(z0.shape[:2], math.inf)
    marks = set(checkpoints(cap))
    ts, w2s = [0], [exact_w2_batch(z0, ref)]
    z = z0
    for t in range(1, cap + 1):
        _, grad = loss_grad(z)
        noise = None if beta is None else torch.randn(z.shape, generator=gen, dtype=z.dtype)
        z = rn.langevin_step(z, grad, eta, beta, noise)
        if star is not None:
            hit[((z - star).norm(dim=-1) < radius) & torch.isinf(hit)] = float(t)
        if t in marks:
            w = exact_w2_batch(z, ref)
            ts.append(t)
            w2s.append(w)
            for i, v in enumerate(w):
                if v <= eps and math.isinf(t_eps[i]):
                    t_eps[i] = float(t)
            if all(math.isfinite(x) for x in t_eps):
                break
    return {"t": ts, "w2": w2s, "t_eps": t_eps, "final": z, "hit": hit}
