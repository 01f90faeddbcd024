"""Langevin dynamics on the latent of a plain generator (SGILO Theorem 3.1); beta = None is CSGM by GD.

    z_{t+1} = z_t - eta grad f(z_t) + sqrt(2 eta / beta) u_t,   f(z) = ||A(G(z)) - y||^2

exactly as the theorem writes it: f is a *sum* over measurements (not the harness's usual
mean), no Adam, no projection, no regulariser, so the run is the Markov chain the theorem
analyses and the bench's theory experiment (``bench/theory.py``) uses the same step function
(:func:`bench.priors.relu_net.langevin_step`). With ``beta`` None (or inf) there is no noise:
plain gradient descent on f, i.e. CSGM without restarts or tricks.

It works for any prior exposing ``latent_dim`` and ``generate(z [B, k]) -> [B, C, H, W]`` (the
random ReLU priors ``relu-k<K>-d<D>-s<S>``), through any operator (autograd for grad f).
``beta_scaling="per_dim"`` reads ``beta`` as the theorem's constant C in beta = C n (n = latent
dimension). Init ``neg_star`` starts at -rho z* (+ jitter), the spurious critical point where
gradient descent stalls; it is an *oracle* init for experiments (z* is recovered from the
reference image by exact inversion, rho is the exact minimiser of f on the ray -z*).

Results: the reconstruction is the *last* iterate G(z_T) of chain 0 (a sampler returns a
sample, GD its final point), ``num_samples`` S > 1 runs S independent chains per image
(``samples`` = their last iterates). Traces log the harness's per-image measurement MSE every
step. Each (image, chain) draws from its own generator (``PerImageRNG`` salted by the chain
index), so a result never depends on batch-mates.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

import methods
from bench.priors import relu_net as rn
from methods._core import Hyper, ImageResult, Method, PerImageRNG, Problem, reference_mse

BETA_SCALINGS = ("per_dim", "absolute")


@dataclass
class LangevinParams(Hyper):
    steps: int = 1000
    eta: float = 0.05
    beta: float | None = 50.0  # None or inf: gradient descent (no noise)
    beta_scaling: str = "per_dim"  # "per_dim": effective beta = beta * latent_dim (theorem's C n); "absolute"
    init: str = "randn"  # "randn" (||z0|| ~ scale) or "neg_star" (-rho z* + scale-sized jitter; oracle)
    scale: float = 1.0


def _check_prior(prior) -> None:
    if not (hasattr(prior, "latent_dim") and callable(getattr(prior, "generate", None))):
        raise TypeError(f"langevin needs a prior with latent_dim and generate(z) (e.g. relu-k10-d2-s0); "
                        f"{getattr(prior, 'name', type(prior).__name__)!r} has none")


def _measure_loss(problem: Problem, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f per chain: the theorem's sum of squared residuals."""
    return (problem.operator.forward(x) - y).pow(2).flatten(1).sum(1)


def _init(params: LangevinParams, problem: Problem, prior, y: torch.Tensor, noise: torch.Tensor,
          chains: int) -> torch.Tensor:
    if params.init != "neg_star":
        return rn.init_latents(params.init, noise, params.scale)
    if problem.reference is None or not hasattr(prior, "invert"):
        raise ValueError("init 'neg_star' needs the reference images and a prior with invert() (an oracle init)")
    z_star = prior.invert(problem.reference).repeat_interleave(chains, 0)
    u = z_star / z_star.norm(dim=1, keepdim=True)
    with torch.no_grad():
        v = problem.operator.forward(prior.generate(-u)).flatten(1)
    rho = rn.ray_minimiser(v, y) / z_star.norm(dim=1)
    return rn.init_latents("neg_star", noise, params.scale, z_star, rho)


class Langevin(Method):
    name = "langevin"
    Params = LangevinParams
    samples_posterior = True

    smoke_prior = "relu-k5-d2-s0"

    def smoke_params(self) -> Hyper:
        return LangevinParams(steps=20, beta=50.0)

    def grid(self, grid_key: str = "embedded") -> list[Hyper]:
        return [LangevinParams(beta=None)] + [LangevinParams(beta=c) for c in (25.0, 50.0, 100.0)]

    def solve(self, problem: Problem, prior, params: LangevinParams, num_samples: int = 1) -> list[ImageResult]:
        _check_prior(prior)
        if params.beta_scaling not in BETA_SCALINGS:
            raise ValueError(f"beta_scaling must be one of {BETA_SCALINGS}, got {params.beta_scaling!r}")
        t0 = time.perf_counter()
        b, s, k = problem.batch, max(1, int(num_samples)), prior.latent_dim
        beta = rn.effective_beta(params.beta, k, params.beta_scaling == "per_dim")
        rngs = [PerImageRNG(problem.seeds, prior.device, salt=c) for c in range(s)]

        def draw() -> torch.Tensor:  # [B * S, k], image-major: row i * S + c is image i, chain c
            return torch.stack([r.randn(k) for r in rngs], 1).reshape(b * s, k)

        y = problem.y.flatten(1).repeat_interleave(s, 0)
        ref = None if problem.reference is None else problem.reference.repeat_interleave(s, 0)
        z = _init(params, problem, prior, y, draw(), s).detach()
        losses, refs = [], []
        for t in range(params.steps + 1):
            z.requires_grad_(True)
            x = prior.generate(z)
            f = _measure_loss(problem, x, y)
            losses.append(f.detach() / y.shape[1])  # the harness's per-image measurement MSE (Operator.loss)
            refs.append(reference_mse(x, ref))
            if t == params.steps:
                break
            (grad,) = torch.autograd.grad(f.sum(), z)
            noise = None if beta is None else draw()
            z = rn.langevin_step(z.detach(), grad, params.eta, beta, noise)
        x = x.detach()
        return self._package(problem, x, losses, refs, s, params.steps + 1, t0)

    @staticmethod
    def _package(problem: Problem, x: torch.Tensor, losses: list, refs: list, s: int, nfe: int,
                 t0: float) -> list[ImageResult]:
        b = problem.batch
        seconds = (time.perf_counter() - t0) / b
        loss = torch.stack(losses).view(len(losses), b, s)[:, :, 0].cpu().tolist()  # [T, B], chain 0
        ref = None if refs[0] is None else torch.stack(refs).view(len(refs), b, s)[:, :, 0].cpu().tolist()
        x = x.cpu().view(b, s, *x.shape[1:])
        out = []
        for i in range(b):
            trace = [(t, loss[t][i], None if ref is None else ref[t][i]) for t in range(len(loss))]
            out.append(ImageResult(x[i, 0].clone(), loss[-1][i], nfe * s, 0, seconds,
                                   trace, x[i].clone() if s > 1 else None))
        return out


methods.register("langevin")(Langevin())
