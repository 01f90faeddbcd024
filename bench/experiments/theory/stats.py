"""Summaries of the experiment's numbers with instance-level bootstrap CIs: the instance (one
random network, A and z*) is the unit of resampling, since chains on one instance share its
landscape and are not independent evidence."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

N_BOOT = 2000


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _statistic_ci(values: Sequence[float], statistic, n_boot: int, seed: int,
                  level: float) -> tuple[float, float, float]:
    """(statistic, lo, hi): percentile bootstrap over instances (rows resampled with replacement)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    idx = _rng(seed).integers(0, v.size, size=(n_boot, v.size))
    boot = np.sort(statistic(v[idx], axis=1))
    a = (1 - level) / 2
    return float(statistic(v)), float(boot[int(a * (n_boot - 1))]), float(boot[int((1 - a) * (n_boot - 1))])


def median_ci(values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0,
              level: float = 0.95) -> tuple[float, float, float]:
    """(median, lo, hi): percentile bootstrap over instances; inf values (censored) stay inf."""
    return _statistic_ci(values, np.median, n_boot, seed, level)


def mean_ci(values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0,
            level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap of the mean over instances."""
    return _statistic_ci(values, np.mean, n_boot, seed, level)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log y vs log x; None unless every y is finite and positive (no silent drops)."""
    if len(xs) < 2 or any(not (math.isfinite(y) and y > 0) for y in ys):
        return None
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    sxx = ((lx - lx.mean()) ** 2).sum()
    return float(((lx - lx.mean()) * (ly - ly.mean())).sum() / sxx) if sxx > 0 else None


def slope_ci(xs: Sequence[float], table: Sequence[Sequence[float]], paired: bool, n_boot: int = N_BOOT,
             seed: int = 0, level: float = 0.95) -> dict:
    """Log-log slope of the across-instance median of ``table`` [len(xs)][instances] vs xs, with a CI.

    ``paired``: the same instances at every x (resampled jointly); otherwise each column is
    resampled on its own (different instances per x, e.g. per latent dimension). A resample whose median
    is censored (inf) at some x has no slope; ``valid`` is the fraction that had one, and the CI
    is None when fewer than 95% did (the fit would hide non-mixing).
    """
    stat = lambda a: np.median(a, axis=1)
    rng = _rng(seed)
    cols = [np.asarray(c, dtype=float) for c in table]
    point = loglog_slope(xs, [float(np.median(c)) for c in cols])
    if point is None:
        return {"slope": None, "lo": None, "hi": None, "valid": 0.0}
    if paired:
        idx = rng.integers(0, cols[0].size, size=(n_boot, cols[0].size))
        meds = np.stack([stat(c[idx]) for c in cols], axis=1)
    else:
        meds = np.stack([stat(c[rng.integers(0, c.size, size=(n_boot, c.size))]) for c in cols], axis=1)
    ok = np.isfinite(meds).all(axis=1) & (meds > 0).all(axis=1)
    valid = float(ok.mean())
    if valid < 0.95 or point is None:
        return {"slope": point, "lo": None, "hi": None, "valid": valid}
    lx = np.log(np.asarray(xs, float))
    lm = np.log(meds[ok])
    lxc = lx - lx.mean()
    slopes = np.sort((lm - lm.mean(axis=1, keepdims=True)) @ lxc / (lxc ** 2).sum())
    a = (1 - level) / 2
    return {"slope": point, "lo": float(slopes[int(a * (len(slopes) - 1))]),
            "hi": float(slopes[int((1 - a) * (len(slopes) - 1))]), "valid": valid}


def theorem_exponent(eps_values: Sequence[float]) -> float:
    """Chord slope of log(1/eps)/eps^2 vs 1/eps over the eps range (the theorem's sufficient count)."""
    lo, hi = min(eps_values), max(eps_values)
    f = lambda e: math.log(math.log(1 / e) / e ** 2)
    return (f(lo) - f(hi)) / math.log(hi / lo)


def hitting_median(hits: Sequence[float]) -> float:
    """Median of per-chain hitting times with censored (inf) runs ranked last."""
    v = np.sort(np.asarray(hits, dtype=float))
    return float(v[(len(v) - 1) // 2]) if v.size else math.nan
