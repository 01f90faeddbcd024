"""Fits and summaries of the experiment's numbers: decay rates, log-log slopes, hitting-time
quantiles, and the width of a sample's law near z*."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from bench.experiments.theory.dynamics import Instances, distances, sliced_w2


def basin_sw(z: torch.Tensor, inst: Instances, ref: torch.Tensor, dirs: torch.Tensor, radius: float) -> float:
    """Mean over instances of SW between the runs within ``radius`` of z* and the reference (nan if none)."""
    inside = distances(inst, z)["star"] < radius
    vals = [sliced_w2(z[i, inside[i]], ref[i], dirs).item() for i in range(inst.count) if inside[i].sum() >= 16]
    return sum(vals) / len(vals) if vals else math.nan


def spread_near_star(samples: torch.Tensor, inst: Instances) -> float:
    """E||z - z*||^2 over runs within B(z*, 0.5), averaged over instances (a low-noise summary of the law's width)."""
    d2 = (samples - inst.z_star).pow(2).sum(-1)
    return sum(d2[i][d2[i] < 0.25].mean().item() for i in range(inst.count)) / inst.count


def decay_rate(times: Sequence[float], sw: Sequence[float], lo: float, hi: float) -> float | None:
    """-d log SW / d(eta t), fitted where lo < SW < hi (the exponential phase)."""
    pts = [(t, math.log(v)) for t, v in zip(times, sw) if lo < v < hi]
    if len(pts) < 3:
        return None
    mt, mv = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    stt = sum((p[0] - mt) ** 2 for p in pts)
    return -sum((p[0] - mt) * (p[1] - mv) for p in pts) / stt if stt > 0 else None


def slope_through_one(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """b of the least-squares line y = 1 + b x (the spread ratio is 1 at eta = 0)."""
    sxx = sum(x * x for x in xs)
    return sum(x * (y - 1) for x, y in zip(xs, ys)) / sxx if sxx > 0 else None


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log y vs log x over the finite, positive y (None if fewer than 2)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if math.isfinite(y) and y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else None


def hitting_summary(hits: torch.Tensor) -> dict[str, float]:
    """Median and quartiles of hitting times with censored (inf) runs ranked last, and the hit fraction."""
    v = hits.sort().values
    q = lambda p: float(v[int(p * (len(v) - 1))])  # noqa: E731
    return {"median": q(0.5), "q25": q(0.25), "q75": q(0.75), "hit_fraction": float(torch.isfinite(hits).float().mean())}
