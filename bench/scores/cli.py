"""Layer score priors for any world: invert training images with ILO, train, install.

    python -m bench.scores invert --prior embedded -n 5000            # ILO inversions -> runs/scores-embedded/layer<k>.pt
    python -m bench.scores train --prior embedded --layer 1            # DSM on those states (resumable)
    python -m bench.scores evaluate --prior embedded --layer 1         # Figure-4 grid + statistics
    python -m bench.scores install --prior embedded --layer 1          # the prior now loads it as its layer-1 score
    python -m bench.scores card --prior embedded --results results/embedded   # model card: bars, curves, grids
    python -m bench.scores invert --prior ffhq -n 70000 --dry-run      # what it needs and what it would cost

The invert stage runs as cells on the sweep's executors (local processes, SLURM arrays via
submitit, or ``--plan-only`` + ``slurm/grid.sh``) into a kill-safe store: re-running resumes.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

from bench.harness.cli import (
    UsageError,
    add_execution_arguments,
    execute_with_options,
    execution_from_args,
    run_main,
    sbatch_line,
    validate_prior,
)
from bench.scores.invert import DEFAULT_STEPS, INVERTERS, InvertConfig, merge_states, plan_cells
from bench.scores.train import STATS, WEIGHTINGS, ScoreTrainConfig


def _default_out(prior: str) -> Path:
    return Path("runs") / f"scores-{prior}"


def _model_dir(a: argparse.Namespace) -> Path:
    """The trained model's folder: ``score_layer<k>`` or, for a named variant, ``score_layer<k>-<variant>``."""
    store = Path(a.out) if a.out else _default_out(a.prior)
    return store / (f"score_layer{a.layer}" + (f"-{a.variant}" if a.variant else ""))


def invert_config(a: argparse.Namespace) -> InvertConfig:
    from bench.priors.catalog import get_world

    try:
        steps = tuple(int(s) for s in a.steps.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--steps {a.steps!r}: comma-separated integers, one per round") from None
    for flag, value in (("-n", a.n), ("--batch", a.batch)):
        if value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if not steps or min(steps) < 1:
        raise UsageError(f"--steps {a.steps!r}: at least one round, every round >= 1 step")
    if a.radius is not None and (a.method != "ilo" or a.radius <= 0):
        raise UsageError(f"--radius {a.radius}: only with --method ilo, and > 0 (ILO's l1-ball radius per element)")
    return InvertConfig(a.prior, Path(a.out) if a.out else _default_out(a.prior), n=a.n, batch=a.batch, steps=steps,
                        lr=a.lr, seed=a.seed, method=a.method, radius=a.radius,
                        execution=execution_from_args(a, get_world(a.prior).slurm_gpus))



def describe_invert(cfg: InvertConfig, n_cells: int, executor: str, chunk: int) -> str:
    from bench.priors.catalog import get_spec

    spec = get_spec(cfg.prior)
    image_steps = cfg.n * sum(cfg.steps)
    layers = ", ".join(str(k) for k in range(min(len(cfg.steps) - 1, spec.n_layers)))  # round k+1 optimises layer k's state
    lines = [f"invert {cfg.prior!r} training images -> {cfg.out}: {cfg.n} images in {n_cells} cells of {cfg.batch} "
             f"({executor}, {max(1, -(-n_cells // chunk))} jobs of {chunk} cells)",
             f"{INVERTERS[cfg.method]}, every pixel observed, steps per round {list(cfg.steps)}, lr {cfg.lr}: the optimised "
             f"states after layers {layers or '(none: at least 2 rounds are needed)'}; {image_steps:,} image-steps"]
    per = spec.world.gpu_seconds_per_image_step
    if per:
        lines.append(f"estimated GPU time: {image_steps * per / 3600:.1f} GPU hours at {per * 1000:.1f} ms per "
                     f"image-step (the world's figure, measured at batch 16 on one H100; results/perf/perf.md)")
    return "\n".join(lines)


def run_invert(a: argparse.Namespace) -> int:
    from bench.harness.slurm import default_chunk_size, resolve_executor
    from bench.harness.store import ResultStore
    from bench.priors.catalog import count_images, missing_assets

    validate_prior(a.prior, _prior_names())
    cfg = invert_config(a)
    missing = missing_assets(cfg.prior, images=False)
    n_train = count_images(cfg.prior, "train") if not missing or a.dry_run else 0
    executor = resolve_executor(cfg.execution.executor)
    chunk = default_chunk_size(cfg.execution.chunk_size, executor)
    try:
        cells = plan_cells(cfg, n_train) if n_train else []
    except ValueError as err:
        raise UsageError(str(err)) from None
    if a.dry_run or missing or not cells:
        print(describe_invert(cfg, len(cells) or -(-cfg.n // cfg.batch), executor, chunk))
        from bench.priors.catalog import get_world

        problems = missing + ([] if cells else [f"no training images for {cfg.prior!r}: its world's 'train' image set "
                                                 f"is empty ({get_world(cfg.prior).description})"])
        if problems:
            print("\nmissing (the run would stop):\n  - " + "\n  - ".join(problems), file=sys.stderr if not a.dry_run else sys.stdout)
        return 0 if a.dry_run else 2
    store = ResultStore(cfg.out)
    plan = store.write_plan(cells, meta={"stage": "invert", "prior": cfg.prior}, name="plan_invert.json")
    if a.plan_only:
        print(f"wrote {plan} ({len(cells)} cells): "
              f"{sbatch_line(len(cells), chunk, cfg.execution.slurm.gpus_per_node, plan)}\n"
              f"then re-run this command without --plan-only to merge the states")
        return 0
    print(describe_invert(cfg, len(cells), executor, chunk), file=sys.stderr)
    counts = execute_with_options(cells, store, executor, cfg.execution, chunk, "invert")
    summary = merge_states(cfg, cells)
    print(f"cells {counts}; {summary['images']} images inverted (mean MSE {summary['mse_mean']}); "
          f"states: {', '.join(summary['files'].values())}")
    return 0 if summary["images"] else 1


def run_train(a: argparse.Namespace) -> int:
    from bench.priors.catalog import load_prior
    from bench.scores.train import train

    validate_prior(a.prior, _prior_names())
    if a.generator_states < 0:
        raise UsageError(f"--generator-states {a.generator_states}: a pool size, >= 0")
    store = Path(a.out) if a.out else _default_out(a.prior)
    data = store / f"layer{a.layer}.pt"
    if not data.exists():
        print(f"{data} is missing: run `python -m bench.scores invert --prior {a.prior}` first", file=sys.stderr)
        return 2
    from bench.core.device import get_device

    prior = load_prior(a.prior, get_device(a.device or None))
    heldout = store / f"layer{a.layer}_heldout.pt"
    cfg = ScoreTrainConfig(out=str(_model_dir(a)), source="ilo", data=str(data), generator="",
                           layer=a.layer, steps=a.train_steps, minutes=a.minutes, threads=a.threads,
                           device=a.device or "", stats=a.stats, time_conditioning=a.time_conditioning,
                           gaussian_skip=a.gaussian_skip, weighting=a.weighting,
                           heldout=str(heldout) if heldout.exists() else "", eval_every=a.eval_every,
                           dim=a.dim, depth=a.depth, heads=a.heads, generator_states=a.generator_states)
    print(f"wrote {train(cfg, g=prior.generator.cpu())}")
    return 0


def run_install(a: argparse.Namespace) -> int:
    from bench.priors.catalog import get_spec
    from bench.priors.score_prior import ScorePrior

    spec = get_spec(validate_prior(a.prior, _prior_names()))
    src = _model_dir(a) / "score_prior.pt"
    if not src.exists():
        print(f"{src} is missing: run `python -m bench.scores train --prior {a.prior} --layer {a.layer}` first",
              file=sys.stderr)
        return 2
    if spec.score_dir is None:
        print(f"prior {a.prior!r} has no folder for installed score priors (it loads {dict(spec.score_assets) or 'none'}); "
              f"use {src} directly", file=sys.stderr)
        return 2
    if ScorePrior.load(src).layer != a.layer:
        print(f"{src} models another layer than {a.layer}", file=sys.stderr)
        return 2
    dest = spec.score_dir() / f"score_layer{a.layer}.pt"
    shutil.copyfile(src, dest)
    from bench.priors.catalog import clear_cache

    clear_cache()  # this process's loaded copy of the prior no longer has the new score
    print(f"installed {src} as {dest}")
    return 0


def run_evaluate(a: argparse.Namespace) -> int:
    from bench.scores.evaluate import add_decode_seed_spread, add_sdedit, evaluate_layer

    validate_prior(a.prior, _prior_names())
    store = Path(a.out) if a.out else _default_out(a.prior)
    score = _model_dir(a) / "score_prior.pt"
    heldout = store / f"layer{a.layer}_heldout.pt"
    for path, stage in ((score, "train"), (heldout, "invert")):
        if not path.exists():
            print(f"{path} is missing: run `python -m bench.scores {stage} --prior {a.prior}` first", file=sys.stderr)
            return 2
    if a.sdedit_only:
        try:
            rows = add_sdedit(a.prior, a.layer, score, heldout)
        except (FileNotFoundError, ValueError) as err:
            print(err, file=sys.stderr)
            return 2
        print(json.dumps(rows))
        return 0
    if a.decode_seeds_only:
        try:
            spread = add_decode_seed_spread(a.prior, a.layer, score.parent, heldout)
        except (FileNotFoundError, ValueError) as err:
            print(err, file=sys.stderr)
            return 2
        summary = {k: {m: spread[k][m] for m in ("meets", "of", "min_share", "max_share")}
                   for k in ("real_states", "langevin")}
        print(json.dumps({**summary, "class_tv": spread["class_tv"], "dispersion": spread["dispersion"]}))
        return 0
    res = evaluate_layer(a.prior, a.layer, score, heldout, score.parent, n=a.samples, rgb=a.decode_rgb,
                         sdedit=not a.no_sdedit)
    print(json.dumps({k: v for k, v in res.items() if k != "training"}, indent=1))
    return 0


def run_samplers(a: argparse.Namespace) -> int:
    from bench.core.io import atomic_write_text
    from bench.scores.evaluate import SAMPLER_STUDY, sampler_study, sampler_study_markdown

    validate_prior(a.prior, _prior_names())
    store = Path(a.out) if a.out else _default_out(a.prior)
    names = [x.strip() for x in a.samplers.split(";") if x.strip()] if a.samplers else list(SAMPLER_STUDY)
    score = _model_dir(a) / "score_prior.pt" if a.variant else None
    if score is not None and not score.exists():
        print(f"{score} is missing: run `python -m bench.scores train --variant {a.variant}` first", file=sys.stderr)
        return 2
    heldout = store / f"layer{a.layer}_heldout.pt"
    if not heldout.exists():
        print(f"note: {heldout} is missing (run `python -m bench.scores invert` for it): the table has no "
              "real-states row and no FID ratio", file=sys.stderr)
    results = Path(a.results) if a.results else store
    try:
        res = sampler_study(a.prior, a.layer, results, names, n=a.n, heldout=heldout if heldout.exists() else None,
                            score_file=score)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    md = atomic_write_text(results / f"sampler_study_layer{a.layer}.md", sampler_study_markdown(res))
    print(f"wrote {md}")
    return 0


def run_card(a: argparse.Namespace) -> int:
    from bench.scores.card import write_card

    validate_prior(a.prior, _prior_names())
    store = Path(a.out) if a.out else _default_out(a.prior)
    try:
        card = write_card(a.prior, store, Path(a.results) if a.results else store)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"wrote {card}")
    return 0


def _prior_names() -> list[str]:
    from bench.priors.catalog import prior_names

    return prior_names()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.scores", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    inv = sub.add_parser("invert", help="ILO inversions of the world's training images (cells on the executors)")
    inv.add_argument("-n", type=int, default=2000, help="training images to invert (default 2000)")
    inv.add_argument("--batch", type=int, default=16, help="images per cell (default 16)")
    inv.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)), help="ILO steps per round (default 60,60,60)")
    inv.add_argument("--lr", type=float, default=0.1)
    inv.add_argument("--seed", type=int, default=0)
    inv.add_argument("--method", default="ilo_unreg", choices=list(INVERTERS),
                     help="the inverter: ilo_unreg (default; the installed embedded priors' data) or ilo (its l1-ball "
                          "projections keep each state near the generator's own output; the paper says it inverted "
                          "FFHQ 'with ILO')")
    inv.add_argument("--radius", type=float, default=None,
                     help="with --method ilo: the l1-ball radius per element (default: ILO's own default)")
    inv.add_argument("--dry-run", action="store_true", help="print the plan, what is missing and the cost; run nothing")
    inv.add_argument("--plan-only", action="store_true", help="write plan_invert.json for slurm/grid.sh and exit")
    add_execution_arguments(inv)
    tr = sub.add_parser("train", help="train one layer's score prior on the inverted states (resumable)")
    tr.add_argument("--layer", type=int, required=True)
    tr.add_argument("--train-steps", type=int, default=20000)
    tr.add_argument("--minutes", type=float, default=120.0, help="wall budget of this invocation (it resumes)")
    tr.add_argument("--stats", default="official", choices=STATS,
                    help="normalisation statistics (default official: one min/max pair; bench/scores/train.py "
                         "norm_stats says what each does)")
    tr.add_argument("--time-conditioning", default="official", choices=["official", "adaln"],
                    help="score ViT variant: the official per-token time offset, or adaptive LayerNorm (ours)")
    tr.add_argument("--gaussian-skip", action="store_true",
                    help="the network learns only the residual from the exact noise prediction of a Gaussian fitted "
                         "to the training states (named variant, bench/priors/score_vit.py)")
    tr.add_argument("--weighting", default="likelihood_is", choices=WEIGHTINGS,
                    help="DSM weighting over t: likelihood_is (default: likelihood weighting by importance sampling "
                         "of t, which concentrates on small t), likelihood, or none (uniform t, the eps-MSE of DDPM's "
                         "simple loss, which weights large t more)")
    tr.add_argument("--eval-every", type=int, default=500,
                    help="steps between held-out DSM evaluations (the training curve; 0: only at the end)")
    net = ScoreTrainConfig()
    tr.add_argument("--dim", type=int, default=net.dim,
                    help=f"ViT width (default {net.dim}; parameters grow with dim^2 x depth: the installed embedded "
                         "priors, 128 x 4, have 1.08M, 4.3 MB; committed weights stay under 20 MB in all)")
    tr.add_argument("--depth", type=int, default=net.depth, help=f"ViT blocks (default {net.depth})")
    tr.add_argument("--heads", type=int, default=net.heads, help=f"attention heads (default {net.heads})")
    tr.add_argument("--generator-states", type=int, default=0, metavar="N",
                    help="a mixture prior: add a fixed pool of N of the generator's own layer states (z ~ N(0, I), "
                         "fresh noise) to the inverted states; its held-out curve mixes them in the same proportion "
                         "(the official release's syn_ models train on such states alone; default 0: none)")
    tr.add_argument("--threads", type=int, default=2)
    tr.add_argument("--device", default="", help="cpu, cuda, ...; default $BENCH_DEVICE or auto")
    ev = sub.add_parser("evaluate", help="the Figure-4 grid and the statistics of one trained layer prior")
    ev.add_argument("--layer", type=int, required=True)
    ev.add_argument("--samples", type=int, default=1000,
                    help="prior samples (each sampler of bench.scores.evaluate.SAMPLERS) and held-out states to decode")
    from bench.scores.evaluate import BAR_DECODE_RGB, DECODE_RGB

    ev.add_argument("--decode-rgb", choices=DECODE_RGB, default=BAR_DECODE_RGB,
                    help="decode each state with its own ToRGB term ('own', the bars') or with the RGB sum restarted "
                         "after it, as the rounds do ('dropped')")
    ev.add_argument("--decode-seeds-only", action="store_true",
                    help="only decode the saved samples and the held-out states again with each of "
                         "bench.scores.evaluate.DECODE_SEEDS, and add how many decodes meet the class-share bar to "
                         "the existing evaluation (no sampling; a few minutes)")
    ev.add_argument("--no-sdedit", action="store_true",
                    help="leave out the SDEdit diagnostic (not a bar; it costs about 1.5 samplings): add it later "
                         "with --sdedit-only")
    ev.add_argument("--sdedit-only", action="store_true",
                    help="only measure where along t the prior loses quality (held-out states diffused to each of "
                         "bench.scores.evaluate.SDEDIT_STARTS and sampled back, then decoded) and add it to the "
                         "existing evaluation (a few minutes)")
    ins = sub.add_parser("install", help="make the trained prior the world's score model of its layer")
    ins.add_argument("--layer", type=int, required=True)
    sm = sub.add_parser("samplers", help="decoded-sample FID of one layer prior under each sampler of "
                        "bench.scores.evaluate.SAMPLER_STUDY: is the bars' figure the prior's or its sampler's?")
    sm.add_argument("--layer", type=int, required=True)
    sm.add_argument("--samplers", default="", help="';'-separated names (default: all of SAMPLER_STUDY, in order)")
    sm.add_argument("-n", type=int, default=400, help="samples per sampler (default 400, the card's n)")
    sm.add_argument("--results", default=None, help="folder for sampler_study_layer<k>.json/.md (default: the "
                    "pipeline's folder); resumable: finished samplers are kept")
    cd = sub.add_parser("card", help="the model card (bars, training curves, Figure-4 grids) of every evaluated model")
    cd.add_argument("--results", default=None, help="folder for the card and its figures (default: the pipeline's "
                    "folder); the card is also copied beside the installed weights")
    for s in (inv, tr, ev, ins, cd, sm):
        s.add_argument("--prior", default="embedded", help="prior whose world's training images are used")
        s.add_argument("--out", default=None, help="the pipeline's folder (default runs/scores-<prior>)")
    for s in (tr, ev, ins, sm):
        s.add_argument("--variant", default="", help="name of a training variant: its model lives in "
                       "score_layer<k>-<variant>/ beside the default score_layer<k>/ (e.g. to compare architectures)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    stages = {"invert": run_invert, "train": run_train, "evaluate": run_evaluate, "install": run_install,
              "card": run_card, "samplers": run_samplers}
    return run_main(build_parser(), argv, lambda a: stages[a.stage](a))
