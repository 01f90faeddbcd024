"""SGILO (Daras et al. 2022): ILO's rounds with a score prior on the optimised layer and Langevin noise.

Official form (``mode="official"``, solve_inverse.py, the official SGILO code): before each Adam step
on the measurement loss, compute ``delta = hot(h) - h`` with the score model's "hot"
predictor-corrector sampler at the fixed time t; after the step,
``h += temperature * delta + noise_temp * N(0, I)``, the noise only in rounds whose temperature is
> 0 (official ``_invert``), and ``z += latent_noise_temp * N(0, I)`` in every round.
Textbook SGLD (``mode="sgld"``): h is not moved by Adam but by
``h += eta * (-m/(2 sigma^2) grad_h MSE + temperature * score(h, t)) + sqrt(2 eta) N(0, I)``
(m = number of measurements, so m * MSE / (2 sigma^2) is the Gaussian negative log-likelihood).
With temperature 0 and no noise, the official form is ILO-unregularized step for step.

A round starting at layer k >= 1 optimises the state after layer k-1, so it uses the score
model ``prior.scores[k - 1]``; a round with temperature > 0 and no such model is an error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import methods
from bench.priors.prior import Prior
from bench.priors.samplers import hot_delta
from methods._core import Hyper, ImageResult, Method, Problem
from methods._rounds import RoundContext, RoundHook, RoundParams, run_rounds


@dataclass
class SGILOParams(RoundParams):
    # Official solve_inverse.yaml: 3 rounds of 300 steps, constant lr 0.05, geocross 0.001, z init ones.
    steps: tuple[int, ...] = (300, 300, 300)
    lr: tuple[float, ...] = (0.05,)
    lr_schedule: str = "constant"
    geocross: float = 0.001
    init: str = "ones"
    temperature: tuple[float, ...] = (0.0, 0.1, 0.1, 0.1)  # per round (gen_temperature); last repeats
    noise_temp: float = 0.025  # std of the Gaussian added to h each step (gen_noise_temp)
    latent_noise_temp: float = 0.025  # std added to z every step, even at temperature 0 (as official)
    hot_steps: int = 1
    snr: float = 1e-4
    t: float = 0.01  # the small diffusion time of the score
    mode: str = "official"  # "official" (hot sampler deltas) or "sgld" (textbook Langevin on h)
    sgld_eta: float = 1e-4
    sgld_sigma: float = 0.05  # measurement noise std assumed by the SGLD likelihood


# Two optimisation setups, so that SGILO and its T = 0 control can be compared with ILO under either:
# the official SGILO one (z = ones, constant lr 0.05, geocross 0.001) and ILO's (randn, cosine lr 0.1, 0.01).
SETUPS = {"sgilo": dict(init="ones", lr=(0.05,), lr_schedule="constant", geocross=0.001),
          "ilo": dict(init="randn", lr=(0.1,), lr_schedule="cosine", geocross=0.01)}
OFFICIAL_PAIR = (0.1, 0.025)  # the official (gen_temperature, gen_noise_temp)


def langevin_noise(temperature: float) -> float:
    """State-noise std for a temperature: the official pair (T 0.1, noise 0.025) scaled as sqrt(T), the way a
    Langevin step's noise scales with its drift step (a named choice: the official code fixes 0.025 at every T)."""
    return OFFICIAL_PAIR[1] * math.sqrt(temperature / OFFICIAL_PAIR[0]) if temperature > 0 else 0.0


def paper_grid(temperatures: tuple[float, ...], latent_noise: tuple[float, ...] = (0.025,)) -> list["SGILOParams"]:
    """The paper-profile grid: 300 steps per round, temperature T in rounds 1 and 2 with its Langevin noise,
    latent noise, under both optimisation setups."""
    return [SGILOParams(steps=(300, 300, 300), temperature=(0.0, t, t), noise_temp=langevin_noise(t),
                        latent_noise_temp=ln, **setup)
            for setup in SETUPS.values() for t in temperatures for ln in latent_noise]


def _round_value(values: tuple[float, ...], r: int) -> float:
    return values[min(r, len(values) - 1)] if values else 0.0


class SGILOHook(RoundHook):
    def __init__(self, params: SGILOParams):
        if params.mode not in ("official", "sgld"):
            raise ValueError(f"SGILO mode must be 'official' or 'sgld', got {params.mode!r}")
        self.adam_on_state = params.mode == "official"

    def begin_round(self, ctx: RoundContext) -> None:
        p: SGILOParams = ctx.params
        self.temperature = _round_value(p.temperature, ctx.round_index)
        self.score = None
        if ctx.layer >= 1 and self.temperature > 0:
            self.score = ctx.prior.scores.get(ctx.layer - 1)
            if self.score is None:
                have = sorted(ctx.prior.scores)
                hint = ctx.prior.missing_scores.get(ctx.layer - 1)
                raise ValueError(
                    f"SGILO round {ctx.round_index} optimises the state after layer {ctx.layer - 1} with temperature "
                    f"{self.temperature}, but the prior {ctx.prior.name!r} has score models only for layers {have}; "
                    + (f"its score model for layer {ctx.layer - 1} is not loaded: {hint}" if hint else
                       f"set that round's temperature to 0 or train a score model for layer {ctx.layer - 1}"))
        self.delta = None

    def before_update(self, ctx: RoundContext) -> None:
        p: SGILOParams = ctx.params
        if self.score is None or p.mode != "official":
            return
        self.delta = hot_delta(self.score, ctx.h, steps=p.hot_steps, snr=p.snr, t=p.t, generator=ctx.rng)
        ctx.nfe_score += (1 if getattr(self.score, "reuse", False) else 2) * p.hot_steps  # score-reuse: one forward

    def after_update(self, ctx: RoundContext) -> None:
        p: SGILOParams = ctx.params
        if p.latent_noise_temp > 0:
            ctx.latent.add_(p.latent_noise_temp * ctx.rng.randn(*ctx.latent.shape[1:]))
        if ctx.h is None:
            return
        if p.mode == "sgld":
            self._sgld_step(ctx, p)
            return
        if self.delta is not None:
            ctx.h.add_(self.temperature * self.delta)
        # Only in rounds with temperature > 0, as the official code (solve_inverse.py ~245-259: the state
        # noise is added under `if gen_temperature != 0`). Fixed: we used to add it in every round k >= 1.
        if p.noise_temp > 0 and self.temperature > 0:
            ctx.h.add_(p.noise_temp * ctx.rng.randn(*ctx.h.shape[1:]))

    def _sgld_step(self, ctx: RoundContext, p: SGILOParams) -> None:
        grad = ctx.h.grad if ctx.h.grad is not None else torch.zeros_like(ctx.h)
        m = ctx.measurements
        drift = -m / (2 * p.sgld_sigma**2) * grad
        if self.score is not None:
            drift = drift + self.temperature * self.score.score(ctx.h, p.t)
            ctx.nfe_score += 1
        ctx.h.add_(p.sgld_eta * drift + math.sqrt(2 * p.sgld_eta) * ctx.rng.randn(*ctx.h.shape[1:]))
        ctx.h.grad = None


class SGILO(Method):
    name = "sgilo"
    Params = SGILOParams
    # the official SGILO objective and output (solve_inverse.py, utils.py): full-image data term, LPIPS-VGG
    # fill weight 0.05, clamp, noise maps 1 + 2r, the last iterate, the RGB sum restarted at the optimised layer
    official_settings = {"data_term": "official", "lpips": 0.05, "clamp": True, "noise_maps": "lookahead",
                         "best_over": "last", "skip_mode": "official"}
    samples_posterior = True

    def score_layers(self, params: SGILOParams) -> set[int]:
        """The rounds that start at layer k >= 1 with temperature > 0 use ``prior.scores[k - 1]``."""
        return {params.start_layer + r - 1 for r in range(len(params.steps))
                if params.start_layer + r >= 1 and _round_value(params.temperature, r) > 0}

    def grid(self, grid_key: str = "embedded") -> list[Hyper]:
        if grid_key == "embedded":
            # the embedded prior has score models of the states after layers 0 and 1 (rounds 1 and 2), as the
            # official FFHQ configuration uses its layer1/layer2 models in rounds 1 and 2
            return [SGILOParams(steps=(25, 25, 25), lr=(0.05,), temperature=(0.0, temp, temp), noise_temp=0.01,
                                latent_noise_temp=0.0)
                    for temp in (1.0, 30.0)]
        if grid_key == "paper":
            return paper_grid(temperatures=(0.1, 0.3, 1.0))
        return [SGILOParams(temperature=(0.0, temp, temp), noise_temp=nt)
                for temp in (0.05, 0.1, 0.3) for nt in (0.01, 0.025)]

    def smoke_params(self) -> Hyper:
        # temperature 0: the tiny prior has no score model; the latent noise still draws per image
        return SGILOParams(steps=(5, 5, 5), temperature=(0.0,), noise_temp=0.01, latent_noise_temp=0.01)

    def solve(self, problem: Problem, prior: Prior, params: SGILOParams, num_samples: int = 1) -> list[ImageResult]:
        return run_rounds(problem, prior, params, SGILOHook(params), num_samples=num_samples)


methods.register("sgilo")(SGILO())
