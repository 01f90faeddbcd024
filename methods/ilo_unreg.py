"""ILO-unregularized: ILO's rounds with no l1-ball projection (the paper plots it as part of "ILO")."""
from __future__ import annotations

import methods
from bench.priors.prior import Prior
from methods._core import Hyper, ImageResult, Method, Problem
from methods._rounds import RoundHook, RoundParams, run_rounds


class ILOUnregularized(Method):
    name = "ilo_unreg"
    Params = RoundParams
    # ILO's official objective without its projections (ilo_stylegan.py): full-image data term, LPIPS-VGG fill weight 1.0,
    # the RGB sum restarted at the optimised layer
    official_settings = {"data_term": "official", "lpips": 1.0, "skip_mode": "official"}

    def grid(self, grid_key: str = "embedded") -> list[Hyper]:
        if grid_key == "embedded":
            return [RoundParams(steps=(25, 25, 25), lr=(lr,)) for lr in (0.05, 0.1)]
        if grid_key == "paper":  # the ILO paper's schedule, 6 points
            return [RoundParams(steps=(300, 300, 300, 100), lr=(lr,), geocross=gc)
                    for lr in (0.03, 0.05, 0.1) for gc in (0.01, 0.001)]
        return [RoundParams(steps=(300, 300, 300, 100), lr=(lr,)) for lr in (0.03, 0.05, 0.1)]

    def smoke_params(self) -> Hyper:
        return RoundParams(steps=(5, 5))

    def solve(self, problem: Problem, prior: Prior, params: RoundParams, num_samples: int = 1) -> list[ImageResult]:
        return run_rounds(problem, prior, params, RoundHook(), num_samples=num_samples)


methods.register("ilo_unreg")(ILOUnregularized())
