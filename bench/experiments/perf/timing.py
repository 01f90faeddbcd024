"""Timers that are honest on CPU and GPU: warm-up, device synchronisation (CUDA events on a GPU), interleaved
measurements with every repeat kept, ratios with bootstrap CIs and goals judged on them."""
from __future__ import annotations

import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- interleaved, with CIs
MIN_EXTRA_STEPS = 30  # a marginal estimate differences two runs at least this many steps apart


class Stopwatch:
    """Elapsed seconds of a callable: CUDA events on a GPU (device time, no host jitter), perf_counter elsewhere.
    ``clock`` replaces perf_counter (tests run the timing logic on a fake clock)."""

    def __init__(self, device: torch.device, clock: Callable[[], float] | None = None):
        self.device, self.clock = device, clock or time.perf_counter
        self.cuda = device.type == "cuda" and clock is None

    def __call__(self, fn: Callable[[], object]) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(self.device)
            return start.elapsed_time(end) / 1000
        sync(self.device)
        t0 = self.clock()
        fn()
        sync(self.device)
        return self.clock() - t0


def interleaved_marginals(runners: dict[str, Callable[[int], object]], short: int, long: int, repeats: int,
                          device: torch.device, clock: Callable[[], float] | None = None,
                          min_extra: int = MIN_EXTRA_STEPS) -> dict[str, list[float]]:
    """Per-step seconds of every runner, one estimate per repeat: (T(long) - T(short)) / (long - short).

    ``runners[name](n)`` performs a whole run whose measured part has ``n`` steps (the bare generator step is
    one of them). Within a repeat every runner is measured back to back, and the order reverses every repeat
    (ABBA...), so a slow spell of a shared machine hits all of them alike; every repeat is kept. A non-positive
    estimate is kept as it is (the caller reports it as a failed measurement, never clips it)."""
    if long - short < max(min_extra, 1):
        raise ValueError(f"long - short must be >= {max(min_extra, 1)} steps, got {long} - {short}")
    watch = Stopwatch(device, clock)
    names = list(runners)
    for name in names:  # warm-up (allocator, lazy init, cudnn autotune)
        runners[name](short)
    out: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in (names if rep % 2 == 0 else names[::-1]):
            t_short = watch(lambda: runners[name](short))
            t_long = watch(lambda: runners[name](long))
            out[name].append((t_long - t_short) / (long - short))
    return out


def ratio_ci(num: list[float], den: list[float], n_boot: int = 2000, seed: int = 0) -> dict:
    """median(num) / median(den) with a paired bootstrap 95% CI (repeats resampled together, as they were
    measured side by side). A failed measurement (a non-positive median) gives ratio None and the reason."""
    import numpy as np

    a, b = np.asarray(num, float), np.asarray(den, float)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError("num and den need the same, non-zero number of repeats")
    if np.median(a) <= 0 or np.median(b) <= 0:
        return {"ratio": None, "ci": None, "failed": f"non-positive marginal time (median {np.median(a):.3g} s / "
                                                     f"{np.median(b):.3g} s): noise exceeded the signal"}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    ma, mb = np.median(a[idx], axis=1), np.median(b[idx], axis=1)
    ratios = ma[mb > 0] / mb[mb > 0]
    return {"ratio": float(np.median(a) / np.median(b)),
            "ci": [float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))], "failed": ""}


def judge(ratio: dict, limit: float, at_least: bool = False) -> str:
    """A goal judged on the CI: "met" when the whole CI is on the right side of ``limit``, "NOT met" when the
    whole CI is on the wrong side, else "undecided (CI spans the limit)"; "not measured" for a failed ratio."""
    if ratio.get("ratio") is None:
        return "not measured (" + ratio.get("failed", "no ratio") + ")"
    lo, hi = ratio["ci"]
    good, bad = (lo >= limit, hi < limit) if at_least else (hi <= limit, lo > limit)
    return "met" if good else "NOT met" if bad else "undecided (CI spans the limit)"
