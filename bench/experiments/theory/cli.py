"""Numerical check of SGILO's Theorem 3.1: the W2 mixing time of Langevin on random ReLU generators.

``python -m bench.theory [--quick] [--out results/theory] [--threads 1]`` runs, on instances
(W_1..W_d, A, z*) with W_i ~ N(0, 2/n_i), A ~ N(0, 1/m), ||z*|| = 1, y = A G(z*) and
f(z) = ||A G(z) - y||^2, with the very step the ``langevin`` method uses
(:func:`bench.priors.relu_net.langevin_step`, beta = C k, k = latent dim):

1. escape: GD vs Langevin from -rho z* (and random inits), fractions near z*, near -rho z* and
   on the wrong side, with a per-instance bootstrap CI of the difference;
2. landscape: is -rho z* critical, is rho = rho_d, does GD stall there, as the widths grow
   (up to c = 16: the premise of the theorem, each part judged from its CI);
3. t_eps: the first step at which the exact W2 between the chains' empirical law and a MALA
   reference sample of mu ~ exp(-beta f) is <= eps, eta = eps^2, vs eps and vs k, with fitted
   exponents and CIs (the theorem's quantity).

Writes ``escape.png``, ``teps.png``, ``theory.json`` (raw numbers) and ``report.md``.
"""
from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path

import torch

from bench.core.io import atomic_write_json
from bench.core.runtime import init_process
from bench.experiments.theory.config import DEFAULT_OUT, Config
from bench.experiments.theory.experiments import (
    experiment_escape,
    experiment_landscape,
    experiment_teps,
)
from bench.experiments.theory.plots import plot_escape, plot_teps
from bench.experiments.theory.report import write_report


def run(cfg: Config, out_dir: Path, quick: bool = False, threads: int = 1,
        log: Callable[[str], None] = print) -> dict:
    """Run the experiments, then write the plots, ``theory.json`` and ``report.md`` under ``out_dir``."""
    torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out: dict = {"quick": quick, "threads": threads, "config": asdict(cfg), "timings": {},
                 "load_average_start": _load(), "cpus": os.cpu_count()}
    for name, fn in (("escape", experiment_escape), ("landscape", experiment_landscape), ("teps", experiment_teps)):
        t = time.perf_counter()
        log(f"[{name}]")
        out[name] = fn(cfg, log)
        out["timings"][name] = time.perf_counter() - t
        log(f"  ({out['timings'][name]:.0f} s)")
    plot_escape(out["escape"], out["landscape"], cfg, out_dir / "escape.png")
    plot_teps(out["teps"], out_dir / "teps.png")
    out["seconds"] = time.perf_counter() - t0
    out["load_average_end"] = _load()
    atomic_write_json(out_dir / "theory.json", _finite(out), indent=1)
    write_report(out, cfg, out_dir / "report.md")
    log(f"wrote {out_dir}/{{escape,teps}}.png, theory.json, report.md in {out['seconds']:.0f} s")
    return out


def rerender(json_path: Path, out_dir: Path) -> dict:
    """Plots and ``report.md`` again from a saved ``theory.json`` (no simulation): text changes only."""
    import json

    out = _unfinite(json.loads(json_path.read_text()))
    out["rerendered"] = True
    known = {f.name for f in fields(Config)}
    cfg = Config(**{k: v for k, v in out["config"].items() if k in known})
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_escape(out["escape"], out["landscape"], cfg, out_dir / "escape.png")
    plot_teps(out["teps"], out_dir / "teps.png")
    write_report(out, cfg, out_dir / "report.md")
    return out


def _unfinite(x: object) -> object:
    """Inverse of :func:`_finite`: the strings "inf"/"nan" become floats again."""
    if x in ("inf", "-inf", "nan"):
        return float(x)  # type: ignore[arg-type]
    if isinstance(x, dict):
        return {k: _unfinite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unfinite(v) for v in x]
    return x


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
    ap.add_argument("--from-json", type=Path, default=None,
                    help="re-render plots and report.md from this theory.json into --out (no simulation)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    init_process()
    a = build_parser().parse_args(argv)
    if a.from_json is not None:
        rerender(a.from_json, a.out)
        return 0
    cfg = Config.quick() if a.quick else Config()
    run(cfg, a.out, quick=a.quick, threads=a.threads, log=lambda s: print(s, flush=True))
    return 0
