"""Sweep profiles: how much protocol a sweep runs.

``quick`` (default): the world's small grids and levels, one seed; the embedded world's default sweep
fits 10 minutes on 2 cores. ``paper``: the paper's budgets and a protocol built for claims (issue 16):
300 steps per round (the ILO paper's schedule, truncated to the world's rounds), at least 6 grid
points per method, SGILO temperatures 0.1-1 in rounds 1 and 2 under two optimisation setups, the
SGILO T = 0 control tuned on the same kind of grid, and 3 seeds, each tuned and evaluated on its own.
"""
from __future__ import annotations

from dataclasses import dataclass

QUICK_METHODS = ("csgm", "ilo", "ilo_unreg", "sgilo")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    grid_key: str | None  # the methods' built-in grids to use (None: the world's grid_key)
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    ilo_paper_steps_scale: float | None  # None: the world's


PROFILES = {
    "quick": Profile("quick", "the world's small grids, one seed", None, QUICK_METHODS, (0,), None),
    "paper": Profile("paper", "paper budgets (300 steps per round), >= 6 grid points per method, the SGILO T = 0 "
                     "control, 3 seeds", "paper", QUICK_METHODS + ("sgilo_t0",), (0, 1, 2), 1.0),
}
