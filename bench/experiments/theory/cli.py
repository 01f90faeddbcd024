"""Numerical check of SGILO's Theorem 3.1: Langevin vs gradient descent on random ReLU generators.

``python -m bench.theory [--quick] [--out results/theory] [--threads 1]`` runs three
experiments on instances (W_1..W_d, A, z*) with W_i ~ N(0, 2/n_i), A ~ N(0, 1/m), ||z*|| = 1,
y = A G(z*) and f(z) = ||A G(z) - y||^2, all chains of all instances advanced together (one
batched matmul per layer), with the very step the ``langevin`` method uses
(:func:`bench.priors.relu_net.langevin_step`, beta = C k as in the theorem, k = latent dim):

1. escape: fraction of runs in the ball B(z*, r), in B(-rho z*, r) and in the wrong hemisphere
   (<z, z*> < 0) vs iteration, for GD and Langevin, from random and from saddle inits; plus
   a C sweep and a finite-width diagnostic (how far -rho z* is from being critical).
2. mixing: sliced Wasserstein distance between the chains' law at step t and a long
   reference chain, for several eta, and the stationary bias vs eta.
3. scaling: iterations to first reach B(z*, r) vs eps (eta = eps^2) and vs k, next to the
   theorem's t = log(1/eps)/eps^2.

Writes PNGs, ``theory.json`` (raw numbers) and ``report.md`` under the output folder.
"""
from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import torch

from bench.core.io import atomic_write_json
from bench.core.runtime import init_process
from bench.experiments.theory.config import DEFAULT_OUT, Config
from bench.experiments.theory.experiments import experiment_escape, experiment_mixing, experiment_scaling
from bench.experiments.theory.plots import plot_escape, plot_mixing, plot_scaling
from bench.experiments.theory.report import write_report


def run(cfg: Config, out_dir: Path, quick: bool = False, threads: int = 1,
        log: Callable[[str], None] = print) -> dict:
    """Run the three experiments, then write the plots, ``theory.json`` and ``report.md`` under ``out_dir``."""
    torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out: dict = {"quick": quick, "threads": threads, "config": asdict(cfg), "timings": {},
                 "load_average_start": _load(), "cpus": os.cpu_count()}
    for name, fn in (("escape", experiment_escape), ("mixing", experiment_mixing), ("scaling", experiment_scaling)):
        t = time.perf_counter()
        log(f"[{name}]")
        out[name] = fn(cfg, log)
        out["timings"][name] = time.perf_counter() - t
        log(f"  ({out['timings'][name]:.0f} s)")
    plot_escape(out["escape"], cfg, out_dir / "escape.png")
    plot_mixing(out["mixing"], out_dir / "mixing.png")
    plot_scaling(out["scaling"], out_dir / "scaling.png")
    out["seconds"] = time.perf_counter() - t0
    out["load_average_end"] = _load()
    atomic_write_json(out_dir / "theory.json", _finite(out), indent=1)
    write_report(out, cfg, out_dir / "report.md")
    log(f"wrote {out_dir}/{{escape,mixing,scaling}}.png, theory.json, report.md in {out['seconds']:.0f} s")
    return out


def _load() -> float | None:
    """1-minute load average (other jobs on the machine slow the run down; the report says so)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _finite(x: object) -> object:
    """JSON-safe copy: non-finite floats (censored hitting times) become the strings "inf"/"nan"."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.theory", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds): a smoke test, not results")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared machines)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    init_process()
    a = build_parser().parse_args(argv)
    cfg = Config.quick() if a.quick else Config()
    run(cfg, a.out, quick=a.quick, threads=a.threads, log=lambda s: print(s, flush=True))
    return 0
