"""Fairness table: which group does a heavily downsampled image come back as?

    python -m bench.fairness                                  # embedded: ILO + SGILO at x4, x8 per side
    python -m bench.fairness --from-sweep runs/embedded-superres --factor 4 8 --samples 5 \\
        --results results/embedded                            # tuned hyperparameters; commit the table
    python -m bench.fairness --prior ffhq --clip-weights ~/clip.bin --executor slurm   # the paper: x16/side
    python -m bench.fairness --dry-run                        # print the plan, run nothing

The SGILO paper's posterior sampling ablation: 64 images of each of two groups (FFHQ men and
women there; Fashion-MNIST Sandal and Sneaker here, see bench/data/evalset/manifest.json) are
downsampled (bicubic, ``superres`` task) by a factor f per side, i.e. f^2 in pixel count (the
paper: x16 per side = x256 on 1024x1024), reconstructed by each method, and an attribute
classifier (``bench.priors.attributes``: CLIP zero-shot on FFHQ, the embedded CNN here) predicts each
reconstruction's group. Reading: a prior that collapses to the majority look of its training
data maps many images of one group to the other; a posterior sampler should keep the groups.

The reconstructions are ordinary ``superres`` cells (stage "fairness") run by the sweep's
execution path (``bench.harness.execution.execute``: in-process, local pool or SLURM, resumable), with
``Cell.save_images`` so the runner stores each cell's reconstructions and posterior samples
under ``<out>/images/``; classification then runs in this process. Outputs in ``--out``:
``fairness.md`` (the table), ``fairness.csv`` (long form), ``fairness_images.csv`` (one row
per image and method: every prediction), ``plan_fairness.json`` (the cells; also runnable as a
plain sbatch array: ``--plan-only`` writes it and prints the ``sbatch ... slurm/grid.sh`` line;
afterwards re-run the same command to classify). Re-running resumes: finished cells are never recomputed.

Statistics (pure functions below): per method and group, correct out of n with a 95% Wilson
interval, and the total out of 2n. For posterior samplers (``Method.samples_posterior``), S
samples per image: the single-sample result (sample 0, the runner's reconstruction), the
majority vote over the S samples, and the mean per-image agreement among samples (diversity:
1 = all samples agree). "preserved" is the official SGILO criterion: the reconstruction gets
the classifier's answer on the original image (rather than the true group).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from bench.experiments.fairness.config import DEFAULT_METHODS, FairnessConfig
from bench.experiments.fairness.plan import fairness_priors
from bench.experiments.fairness.run import run_fairness
from bench.harness.cli import (
    UsageError,
    add_execution_arguments,
    execution_from_args,
    run_main,
    split_list,
    validate_names,
    validate_prior,
)


def parse_factors(values: Sequence[str], prior: str, side: int | None) -> tuple[int, ...]:
    """Per-side factors (``4 8`` or ``4,8``); each must be an integer >= 2 the image size allows."""
    import tasks as task_registry
    from tasks.superres import reflect_pads

    out = []
    for v in split_list(values):
        try:
            f = int(v)
        except ValueError:
            raise UsageError(f"--factor {v!r}: factors are integers per side (x4 per side = x16 in pixel count)") from None
        if f < 2:
            raise UsageError(f"--factor {f}: must be >= 2 (factor 1 is not the identity: a half-pixel shift)")
        if side:
            try:
                task_registry.get("superres").build(f, (1, side, side))
            except ValueError as err:
                valid = [k for k in range(2, side + 1) if side % k == 0 and max(reflect_pads(k)) < side]
                raise UsageError(f"--factor {f} on the {side}x{side} {prior} images: {err}; valid factors: "
                                 f"{', '.join(map(str, valid))}") from None
        out.append(f)
    if not out:
        raise UsageError("--factor lists no factor")
    return tuple(dict.fromkeys(out))


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in split_list([text]))
    except ValueError:
        raise UsageError(f"--seeds {text!r}: comma-separated integers") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r}: distinct integers, at least one")
    return seeds


def parse_params(specs: Sequence[str], methods: Sequence[str]) -> dict[str, dict]:
    """``METHOD=JSON`` strings (e.g. sgilo='{"temperature": [0, 0, 1]}') -> {method: dict}."""
    out: dict[str, dict] = {}
    for spec in specs:
        if "=" not in spec:
            raise UsageError(f"malformed --params {spec!r}: expected METHOD=JSON, e.g. sgilo='{{\"steps\": [40, 40, 40]}}'")
        m, blob = spec.split("=", 1)
        m = m.strip()
        if m not in methods:
            raise UsageError(f"--params names method {m!r}, which is not in --methods ({', '.join(methods)})")
        try:
            d = json.loads(blob)
        except json.JSONDecodeError as err:
            raise UsageError(f"--params {m}: not valid JSON ({err})") from None
        if not isinstance(d, dict):
            raise UsageError(f"--params {m}: expected a JSON object of hyperparameters")
        out[m] = {**out.get(m, {}), **d}
    return out


def build_parser() -> argparse.ArgumentParser:
    from bench.priors.attributes import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, DEFAULT_GROUPS, DEFAULT_PROMPTS

    p = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", default="embedded",
                   help="embedded (default), ffhq (rosinality .pt), ffhq-ada (NVIDIA ffhq.pkl), or tiny (tests only)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated method names (default {','.join(DEFAULT_METHODS)}: sgilo_t0 is the control)")
    p.add_argument("--factor", nargs="+", default=None, metavar="N",
                   help="downsampling factors PER SIDE; the pixel count shrinks by N^2 (default: 4 8 on the embedded "
                        "32x32 images = x16, x64 in pixel count; 16 on FFHQ 1024 = x256, the paper's)")
    p.add_argument("--samples", type=int, default=5, help="posterior samples per image for samplers (default 5)")
    p.add_argument("--from-sweep", default=None, metavar="DIR|CSV",
                   help="take hyperparameters tuned on superres by a sweep (bench.report.stats.select_best): its "
                        "store, or the rows.csv of its committed report; default: each method's defaults")
    p.add_argument("--params", action="append", default=[], metavar="METHOD=JSON",
                   help="override hyperparameters of a method (repeatable), e.g. sgilo='{\"temperature\": [0, 0, 1]}'")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply every method's step counts (smoke runs)")
    p.add_argument("--limit", type=int, default=None, help="images per group (smoke runs; default all 64)")
    p.add_argument("--batch", type=int, default=16, help="images per cell (default 16)")
    p.add_argument("--seeds", default="0,1,2", metavar="S1,S2,...",
                   help="replicates: operator and initialisation draws (default 0,1,2)")
    p.add_argument("--shared-chain-init", action="store_true",
                   help="let posterior samples share SGILO's start (z = ones) instead of an independent draw each")
    p.add_argument("--out", default=None, help="store folder (default runs/fairness-<prior>)")
    p.add_argument("--results", default=None, metavar="DIR", help="also copy fairness.md there (e.g. results/embedded)")
    p.add_argument("--classifier", default=None, help="attribute classifier (default: embedded for the embedded prior, "
                                                      "clip for ffhq)")
    p.add_argument("--clip-model", default=DEFAULT_CLIP_MODEL, help=f"open_clip model name (default {DEFAULT_CLIP_MODEL})")
    p.add_argument("--clip-pretrained", default=DEFAULT_CLIP_PRETRAINED,
                   help=f"open_clip pretrained tag the weights file holds (default {DEFAULT_CLIP_PRETRAINED})")
    p.add_argument("--clip-weights", default=None, metavar="FILE",
                   help="CLIP weights file (default: open_clip_<model>_<tag>.bin in $SGILO_BENCH_CACHE)")
    p.add_argument("--clip-groups", default=",".join(DEFAULT_GROUPS), help="group names (default man,woman)")
    p.add_argument("--clip-prompts", default="|".join(DEFAULT_PROMPTS),
                   help="one prompt per group, '|'-separated (default '" + "|".join(DEFAULT_PROMPTS) + "')")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan and exit")
    p.add_argument("--plan-only", action="store_true",
                   help="write <out>/plan_fairness.json for slurm/grid.sh, print the sbatch line and exit")
    p.add_argument("--rerun-score-cells", action="store_true",
                   help="continue a store whose only change is re-installed score models: the stored cells that "
                        "loaded a changed one move to <out>/superseded/ and run again; the rest are kept")
    add_execution_arguments(p)
    return p


def _check_ranges(a: argparse.Namespace) -> None:
    for flag, value, ok in (("--samples", a.samples, a.samples >= 1), ("--batch", a.batch, a.batch >= 1),
                            ("--limit", a.limit, a.limit is None or a.limit >= 1)):
        if not ok:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if a.steps_scale <= 0:
        raise UsageError(f"--steps-scale must be > 0, got {a.steps_scale}")


def _classifier(a: argparse.Namespace, default: str | None) -> tuple[str, dict[str, Any]]:
    """The attribute classifier's name and options (CLIP: model, weights, groups, prompts)."""
    from bench.priors.attributes import classifier_names

    clf = a.classifier or default
    if clf is None:
        raise UsageError(f"the {a.prior} prior has no attribute classifier; pass --classifier "
                         f"(valid classifiers: {', '.join(classifier_names())})")
    if clf not in classifier_names():
        raise UsageError(f"unknown classifier {clf!r}; valid classifiers: {', '.join(classifier_names())}")
    if clf != "clip":
        return clf, {}
    groups, prompts = split_list([a.clip_groups]), [s.strip() for s in a.clip_prompts.split("|") if s.strip()]
    if len(groups) != len(prompts) or len(groups) < 2:
        raise UsageError(f"--clip-groups {groups} and --clip-prompts {prompts}: need one prompt per group, >= 2 groups")
    return clf, {"model": a.clip_model, "pretrained": a.clip_pretrained, "weights": a.clip_weights,
                 "groups": tuple(groups), "prompts": tuple(prompts)}


def config_from_args(a: argparse.Namespace) -> FairnessConfig:
    """The config, with the world's defaults (factors, classifier, image side, SLURM GPUs)."""
    import methods as method_registry
    from bench.priors.catalog import get_world

    prior = validate_prior(a.prior, fairness_priors())
    world = get_world(prior)
    side = world.image_shape[-1]
    method_names = validate_names("method", split_list([a.methods]), method_registry.names())
    factors = parse_factors(a.factor, prior, side) if a.factor else world.fairness.factors
    _check_ranges(a)
    clf, opts = _classifier(a, world.fairness.classifier)
    from_sweep = Path(a.from_sweep) if a.from_sweep else None
    if from_sweep is not None and not ((from_sweep / "cells").is_dir() or
                                       (from_sweep.is_file() and from_sweep.suffix == ".csv")):
        raise UsageError(f"--from-sweep {from_sweep}: neither a sweep store (no cells/ folder) nor a report's "
                         "rows.csv (e.g. results/embedded/paper-superres/rows.csv)")
    return FairnessConfig(
        prior=prior, methods=method_names, factors=factors, samples=a.samples,
        out=Path(a.out) if a.out else Path("runs") / f"fairness-{prior}", from_sweep=from_sweep,
        params_override=parse_params(a.params, method_names), steps_scale=a.steps_scale, limit=a.limit, batch=a.batch,
        seeds=_seeds(a.seeds), independent_chains=not a.shared_chain_init, classifier=clf, classifier_options=opts, image_side=side,
        results=Path(a.results) if a.results else None, execution=execution_from_args(a, world.slurm_gpus))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    command = "python -m bench.fairness " + " ".join(args)
    return run_main(build_parser(), argv, lambda a: run_fairness(config_from_args(a), dry_run=a.dry_run,
                                                                 command=command, plan_only=a.plan_only,
                                                                 rerun_score_cells=a.rerun_score_cells))
