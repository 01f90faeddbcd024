"""SGILO at temperature 0: the control that isolates what SGILO's score prior adds.

Everything of SGILO but the score step: same rounds, init, learning rates, schedules, latent noise and
budget; the state noise is gated off with the temperature (as the official code). Tuned on a grid of the
same size as SGILO's paper grid (both optimisation setups x three latent-noise levels), so that the
control gets at least SGILO's tuning effort.
"""
from __future__ import annotations

import dataclasses

import methods
from methods._core import Hyper, ImageResult, Problem
from methods.sgilo import SGILO, SGILOParams, paper_grid


class SGILOT0(SGILO):
    name = "sgilo_t0"

    def default_params(self) -> Hyper:
        return dataclasses.replace(SGILOParams(), temperature=(0.0,))

    def grid(self, grid_key: str = "embedded") -> list[Hyper]:
        if grid_key == "paper":
            return paper_grid(temperatures=(0.0,), latent_noise=(0.0, 0.025, 0.05))
        unique = {}
        for p in super().grid(grid_key):  # points differing only in temperature or state noise coincide at T = 0
            q = dataclasses.replace(p, temperature=(0.0,), noise_temp=0.0)
            unique.setdefault(str(q.to_dict()), q)
        return list(unique.values())

    def smoke_params(self) -> Hyper:
        return dataclasses.replace(super().smoke_params(), temperature=(0.0,))

    def solve(self, problem: Problem, prior, params: SGILOParams, num_samples: int = 1) -> list[ImageResult]:
        if any(t != 0 for t in params.temperature):
            raise ValueError(f"sgilo_t0 is SGILO at temperature 0; got temperature {params.temperature} (use sgilo)")
        return super().solve(problem, prior, params, num_samples)


methods.register("sgilo_t0")(SGILOT0())
