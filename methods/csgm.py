"""CSGM (Bora et al. 2017) for StyleGAN-2: Adam on the W+ latent (through the Gaussian-fit
mapping proxy) and the noise maps through the whole generator, with random restarts.

It is round 0 of the ILO machinery (no intermediate layer), so it shares that code path.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

import methods
from bench.priors.prior import Prior
from methods._core import Hyper, ImageResult, Method, Problem
from methods._rounds import RoundContext, RoundHook, RoundParams, run_rounds


@dataclass
class CSGMParams(Hyper):
    steps: int = 200
    lr: float = 0.1
    lr_schedule: str = "cosine"
    restarts: int = 1  # independent random initialisations; the lowest measurement loss wins
    latent_l2: float = 0.0  # weight of mean(z^2) per image (Bora's ||z||^2 regulariser)
    project_sphere: bool = True  # keep latent rows and noise maps on their initial spheres
    geocross: float = 0.0
    data_term: str = "ours"  # the objective, as in RoundParams (methods/_objective.py)
    lpips: float = 0.0


class _L2Hook(RoundHook):
    def __init__(self, weight: float):
        self.weight = weight

    def extra_loss(self, ctx: RoundContext) -> torch.Tensor | None:
        if self.weight <= 0:
            return None
        return self.weight * ctx.latent.pow(2).flatten(1).mean(1).sum()


class CSGM(Method):
    name = "csgm"
    Params = CSGMParams
    # CSGM is ILO's round 0: the official ILO objective (data term, LPIPS-VGG fill weight 1.0)
    official_settings = {"data_term": "official", "lpips": 1.0}

    def grid(self, grid_key: str = "embedded") -> list[Hyper]:
        if grid_key == "embedded":  # quick grid: sized so the default sweep fits 10 minutes on 2 cores
            return [CSGMParams(steps=75, lr=lr) for lr in (0.03, 0.1)]
        if grid_key == "paper":  # the budget of three 300-step rounds, 6 points
            return [CSGMParams(steps=900, lr=lr, latent_l2=l2) for lr in (0.03, 0.1, 0.3) for l2 in (0.0, 0.001)]
        return [CSGMParams(steps=300, lr=lr, restarts=r) for lr in (0.03, 0.1, 0.3) for r in (1, 3)]

    def smoke_params(self) -> Hyper:
        return CSGMParams(steps=8, restarts=2)

    def solve(self, problem: Problem, prior: Prior, params: CSGMParams, num_samples: int = 1) -> list[ImageResult]:
        rp = RoundParams(steps=(params.steps,), lr=(params.lr,), lr_schedule=params.lr_schedule,
                         geocross=params.geocross, project_sphere=params.project_sphere, best_over="all",
                         data_term=params.data_term, lpips=params.lpips)
        best: list[ImageResult] | None = None
        for restart in range(params.restarts):
            res = run_rounds(problem, prior, rp, _L2Hook(params.latent_l2), salt=restart)
            if best is None:
                best = res
                continue
            for i, r in enumerate(res):
                nfe_g = best[i].nfe_generator + r.nfe_generator
                seconds = best[i].seconds + r.seconds
                if r.measurement_loss < best[i].measurement_loss:
                    best[i] = r
                best[i].nfe_generator, best[i].seconds = nfe_g, seconds
        return best


methods.register("csgm")(CSGM())
