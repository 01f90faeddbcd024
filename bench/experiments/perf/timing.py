"""Timers that are honest on CPU and GPU: warm-up, device synchronisation, medians."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int = 5, warmup: int = 1,
                   inner: int = 1) -> float:
    """Median over ``repeats`` of the wall time of ``inner`` calls of ``fn``, divided by ``inner``."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def marginal_step_seconds(run: Callable[[int], object], short: int, long: int, device: torch.device,
                          repeats: int = 3) -> dict[str, float]:
    """Per-step cost of an optimisation loop, free of its fixed set-up cost.

    ``run(n)`` performs a whole solve whose measured round has ``n`` steps; the per-step time is
    (T(long) - T(short)) / (long - short) with each T a median, short and long runs interleaved
    so that a slow spell of the machine hits both.
    """
    if long <= short:
        raise ValueError(f"long ({long}) must exceed short ({short})")
    run(short)  # warm-up (allocator, lazy init, cudnn autotune)
    sync(device)
    ts, tl = [], []
    for _ in range(repeats):
        for n, bucket in ((short, ts), (long, tl)):
            t0 = time.perf_counter()
            run(n)
            sync(device)
            bucket.append(time.perf_counter() - t0)
    t_short, t_long = statistics.median(ts), statistics.median(tl)
    return {"step_seconds": max(t_long - t_short, 0.0) / (long - short), "short_seconds": t_short,
            "long_seconds": t_long, "short": short, "long": long}
