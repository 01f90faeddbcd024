"""Tune on the world's tuning images, evaluate on its held-out test images, then tabulate and plot.

    python -m bench.sweep --tasks inpaint,cs                  # the embedded default, here
    python -m bench.sweep --tasks inpaint --prior ffhq --executor slurm --slurm-partition gpu
    python -m bench.sweep --tasks cs --dry-run                # print the plan, submit nothing
    python -m bench.sweep --tasks cs --plan-only tune         # write plan_tune.json for slurm/grid.sh

Protocol (the paper's Section 4): for each task, level and method, every point of the
method's tuning grid runs on the tuning images (8); the lowest mean reference MSE (ties: LPIPS)
is chosen; the chosen hyperparameters then run on the test images (30 by default). ILO is
also evaluated with the ILO paper's schedule ("ilo_paper") so the report can show "ILO" as
the best of ILO tuned, ILO paper and ILO-unregularized. Results go to a kill-safe store:
re-running the same command resumes, skipping finished cells.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from bench.harness.cli import (
    UsageError,
    add_execution_arguments,
    execution_from_args,
    run_main,
    split_list,
    validate_names,
    validate_prior,
)
from bench.harness.sweep.config import DEFAULT_METHODS, SweepConfig, resolve, validate_levels
from bench.harness.sweep.run import run_sweep


def parse_levels(specs: list[str], tasks: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """``task=l1,l2`` strings -> {task: levels}; UsageError on anything malformed."""
    out: dict[str, tuple[float, ...]] = {}
    for part in (p for spec in specs for p in spec.split(";") if p.strip()):
        if "=" not in part:
            raise UsageError(f"malformed --levels {part!r}: expected task=level1,level2 (e.g. inpaint=0.05,0.2)")
        name, values = (s.strip() for s in part.split("=", 1))
        if name not in tasks:
            raise UsageError(f"--levels names task {name!r}, which is not in --tasks ({', '.join(tasks)})")
        try:
            levels = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise UsageError(f"malformed --levels {part!r}: levels must be numbers") from None
        if not levels:
            raise UsageError(f"--levels {part!r} lists no level")
        out[name] = validate_levels(name, levels)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="inpaint,cs", help="comma-separated task names (default: inpaint,cs)")
    p.add_argument("--methods", default=None, help="comma-separated method names (default: the profile's: "
                   f"{','.join(DEFAULT_METHODS)}; paper adds sgilo_t0)")
    p.add_argument("--levels", action="append", default=[], metavar="TASK=L1,L2",
                   help="levels per task, e.g. --levels inpaint=0.02,0.1 (repeatable; default: the world's quick grid)")
    p.add_argument("--prior", default="embedded",
                   help="embedded (default), ffhq (rosinality .pt), ffhq-ada (NVIDIA ffhq.pkl), or tiny (tests only)")
    p.add_argument("--out", default=None, help="sweep folder (default: runs/<prior>-<tasks>)")
    p.add_argument("--seed", type=int, default=None, help="one seed (operator and initialisation draws); default 0")
    p.add_argument("--seeds", default=None, metavar="S1,S2,...",
                   help="replicates: each seed is tuned and evaluated on its own (default: the profile's; paper: 0,1,2)")
    p.add_argument("--profile", choices=["quick", "paper"], default="quick",
                   help="quick: the world's small grids, one seed (default); paper: 300 steps per round, >= 6 grid "
                        "points per method, the SGILO T = 0 control (sgilo_t0), 3 seeds -- hours; see --dry-run")
    p.add_argument("--n-test", type=int, default=None, help="held-out test images (default: the world's, 30)")
    p.add_argument("--eval-batch", type=int, default=10, help="test images per eval cell")
    p.add_argument("--ilo-paper-steps-scale", type=float, default=None,
                   help="scale of the ILO paper schedule (300,300,300,100) for the ilo_paper variant "
                        "(default: the world's; 0.075 on the embedded prior, i.e. 22 steps per round, 1 on FFHQ)")
    p.add_argument("--steps-scale", type=float, default=1.0,
                   help="multiply every method's step counts (e.g. 0.1 for a quick smoke run)")
    p.add_argument("--grid", action="append", default=[], metavar="METHOD.PARAM=V1,V2",
                   help="replace a method's tuning grid (repeatable; JSON values, lists for per-round settings), e.g. "
                        "--grid 'sgilo.temperature=[0,0,0.3],[0,0,1]'; other settings from the built-in grid's first "
                        "point (bench/harness/grids.py)")
    p.add_argument("--grid-file", default=None, metavar="TOML",
                   help="grids from a TOML file: one table per method of lists of values, e.g. [ilo] lr = [[0.05], [0.1]]")
    p.add_argument("--objective", choices=["ours", "official"], default=None,
                   help="the ILO-family objective: 'official' runs every method in the official code's mode (data-term "
                        "normalisation, LPIPS term, clamp, noise maps, returned iterate, skip mode; docs/DEVIATIONS.md), "
                        "'ours' the harness's; default: the world's (ffhq: official, embedded: ours)")
    p.add_argument("--allow-no-lpips", action="store_true",
                   help="run a world that reports LPIPS (FFHQ) without the LPIPS backbone file: LPIPS 'unavailable'")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan and exit")
    p.add_argument("--rerun-score-cells", action="store_true",
                   help="continue a sweep folder whose only change is re-installed score models: the stored cells "
                        "that loaded a changed one move to <out>/superseded/ and run again; every other result is kept")
    p.add_argument("--plan-only", choices=["tune", "eval"], help="write plan_<stage>.json for slurm/grid.sh and exit")
    add_execution_arguments(p)
    return p


def config_from_args(a: argparse.Namespace) -> SweepConfig:
    import methods as method_registry
    import tasks as task_registry
    from bench.priors.catalog import get_world, prior_names

    task_names = validate_names("task", split_list(a.tasks), task_registry.names())
    method_names = validate_names("method", split_list(a.methods), method_registry.names()) if a.methods else None
    prior = validate_prior(a.prior, prior_names())
    from bench.harness.grids import parse_grid_specs, read_grid_file

    grids = read_grid_file(a.grid_file) if a.grid_file else {}
    for method, params in parse_grid_specs(a.grid).items():
        grids.setdefault(method, {}).update(params)
    return resolve(task_names, prior, levels=parse_levels(a.levels, task_names), n_test=a.n_test, grid_overrides=grids,
                   ilo_paper_steps_scale=a.ilo_paper_steps_scale, out=Path(a.out) if a.out else None, objective=a.objective,
                   methods=method_names, seeds=_seeds(a), profile=a.profile, allow_no_lpips=a.allow_no_lpips,
                   eval_batch=a.eval_batch,
                   steps_scale=a.steps_scale,
                   execution=execution_from_args(a, get_world(prior).slurm_gpus))


def _seeds(a: argparse.Namespace) -> tuple[int, ...] | None:
    if a.seed is not None and a.seeds:
        raise UsageError("give --seed or --seeds, not both")
    if a.seeds:
        try:
            seeds = tuple(int(s) for s in split_list(a.seeds))
        except ValueError:
            raise UsageError(f"--seeds {a.seeds!r}: comma-separated integers") from None
        if len(set(seeds)) != len(seeds) or not seeds:
            raise UsageError(f"--seeds {a.seeds!r}: distinct integers, at least one")
        return seeds
    return (a.seed,) if a.seed is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), argv,
                    lambda a: run_sweep(config_from_args(a), dry_run=a.dry_run, plan_only=a.plan_only,
                                        rerun_score_cells=a.rerun_score_cells))
