"""ILO (Daras et al. 2021): rounds over intermediate layers with l1-ball-constrained deviations.

After each step the deviation of the round's variables (latent, noises, the optimised
intermediate state) from their values at round start is projected onto an l1 ball. Radii
are given per element (ball radius = radius x number of elements of the tensor, per image)
so that one value transfers between the 1024 FFHQ model and the small embedded one. The
official config indexes its radii by round (max_radius_gen_out [1000, 1000, 6000],
max_radius_latent [100, 1000, 6000]); with 4 rounds that list overflows (an IndexError in the
official code), so the preset repeats the last radius. Per element, on the 512x4x4, 512x8x8
and 512x16x16 states of rounds 1-3 and the 18x512 latent, that is state (-, 0.12, 0.18,
0.046) and latent (0.011, 0.11, 0.65, 0.65).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

import methods
from bench.core.projections import project_l1_ball
from bench.priors.prior import Prior
from methods._core import Hyper, ImageResult, Method, Problem
from methods._rounds import RoundContext, RoundHook, RoundParams, run_rounds


@dataclass
class ILOParams(RoundParams):
    radius_state: tuple[float, ...] | None = (0.05,)  # per round (last repeats); None: no projection
    radius_latent: tuple[float, ...] | None = None
    radius_noises: tuple[float, ...] | None = None
    # Stochastic noise addition (the paper tried ILO with and without it for denoising): Gaussian
    # noise of this std is added to the latent fed to the generator, ramped down to 0 over the
    # first 75% of each round (as in StyleGAN-2's projector). Our reading of "dynamic addition of
    # noise"; the official ILO repository has no such option.
    noise_addition: float = 0.0


def _radius(radii: tuple[float, ...] | None, r: int) -> float | None:
    if not radii:
        return None
    return radii[min(r, len(radii) - 1)]


class ILOHook(RoundHook):
    def begin_round(self, ctx: RoundContext) -> None:
        self.start_latent = ctx.latent.detach().clone()
        self.start_noises = {i: ctx.noises[i].detach().clone() for i in ctx.trainable_noises}
        self.start_h = None if ctx.h is None else ctx.h.detach().clone()

    def latent_for_forward(self, ctx: RoundContext, latent: torch.Tensor) -> torch.Tensor:
        sigma = ctx.params.noise_addition
        if sigma <= 0:
            return latent
        ramp = max(0.0, 1.0 - ctx.step / (0.75 * ctx.steps)) ** 2
        if ramp == 0:
            return latent
        return latent + sigma * ramp * ctx.rng.randn(*latent.shape[1:])

    @staticmethod
    def _project(x: torch.Tensor, start: torch.Tensor, radius: float | None) -> None:
        if radius is None:
            return
        numel = x[0].numel()
        x.copy_(start + project_l1_ball(x - start, radius * numel))

    def after_projection(self, ctx: RoundContext) -> None:
        p, r = ctx.params, ctx.round_index
        if ctx.h is not None:
            self._project(ctx.h, self.start_h, _radius(p.radius_state, r))
        self._project(ctx.latent, self.start_latent, _radius(p.radius_latent, r))
        rn = _radius(p.radius_noises, r)
        for i in ctx.trainable_noises:
            self._project(ctx.noises[i], self.start_noises[i], rn)


class ILO(Method):
    name = "ilo"
    Params = ILOParams
    # the official ILO objective (ilo_stylegan.py): full-image data term, LPIPS-VGG fill weight 1.0,
    # the RGB sum restarted at the optimised layer
    official_settings = {"data_term": "official", "lpips": 1.0, "skip_mode": "official"}

    def presets(self) -> dict[str, Hyper]:
        return {
            # The ILO paper's default schedule: 300, 300, 300, 100 steps.
            "ilo_paper": ILOParams(steps=(300, 300, 300, 100), lr=(0.1,), radius_state=(0.12, 0.12, 0.18, 0.046),
                                   radius_latent=(0.011, 0.11, 0.65, 0.65)),
            # The official repository's configs/config.yaml (projections off).
            "ilo_official_config": ILOParams(steps=(50, 50, 25, 25), radius_state=None),
        }

    def grid(self, grid_key: str = "embedded") -> list[Hyper]:
        if grid_key == "embedded":
            return [ILOParams(steps=(25, 25, 25), lr=(0.1,), radius_state=(rad,)) for rad in (0.05, 0.2)]
        if grid_key == "paper":  # the ILO paper's schedule, 6 points
            return [ILOParams(steps=(300, 300, 300, 100), lr=(lr,), radius_state=(rad,))
                    for lr in (0.05, 0.1) for rad in (0.02, 0.05, 0.1)]
        return [ILOParams(steps=(300, 300, 300, 100), lr=(lr,), radius_state=(rad,), noise_addition=na)
                for lr in (0.05, 0.1) for rad in (0.02, 0.05, 0.1) for na in (0.0, 0.05)]

    def smoke_params(self) -> Hyper:
        return ILOParams(steps=(5, 5), radius_state=(0.05,), noise_addition=0.05)

    def solve(self, problem: Problem, prior: Prior, params: ILOParams, num_samples: int = 1) -> list[ImageResult]:
        return run_rounds(problem, prior, params, ILOHook(), num_samples=num_samples)


methods.register("ilo")(ILO())
