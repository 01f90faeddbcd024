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
classifier (``bench.attributes``: CLIP zero-shot on FFHQ, the embedded CNN here) predicts each
reconstruction's group. Reading: a prior that collapses to the majority look of its training
data maps many images of one group to the other; a posterior sampler should keep the groups.

The reconstructions are ordinary ``superres`` cells (stage "fairness") run by the sweep's
execution path (``bench.execution.execute``: in-process, local pool or SLURM, resumable), with
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
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from bench.execution import SlurmConfig, add_slurm_arguments, execute, resolve_executor, slurm_config_from_args
from bench.runner import Cell
from bench.store import ResultStore

Z95 = 1.959963984540054  # standard normal 97.5% quantile
# keyed by the prior's world (bench.priors.catalog.prior_world: ffhq-ada is an ffhq prior)
DEFAULT_FACTORS = {"embedded": (4, 8), "ffhq": (16,), "tiny": (4,)}  # per side; pixel count = factor^2
DEFAULT_CLASSIFIER = {"embedded": "embedded", "ffhq": "clip", "tiny": None}  # tiny: tests pass their own
IMAGE_SIDE = {"embedded": 32, "ffhq": 1024, "tiny": 16}
DEFAULT_METHODS = ("ilo", "sgilo")
TINY_GROUPS = ("tiny-a", "tiny-b")  # the tiny prior's pseudo-groups (first/second half): plumbing tests only


class UsageError(Exception):
    """Bad command-line input: printed with the valid choices, exit code 2."""


# ============================================================================= statistics (pure)
def wilson_ci(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (NaNs for n = 0).

    Chosen over the normal approximation because it stays inside [0, 1] and keeps its coverage
    for small n and proportions near 0 or 1 (n = 64 per group, some methods near 100%)."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def majority_vote(preds: Any) -> np.ndarray:
    """[N, S] predictions -> [N]: the most frequent class per row.

    Ties go to the tied class that appears first in sample order; with two groups and an even
    S that is the first sample's prediction, so a tie never favours a fixed group."""
    p = np.asarray(preds)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"expected predictions [N, S] with S >= 1, got shape {p.shape}")
    out = np.empty(p.shape[0], dtype=np.int64)
    for i, row in enumerate(p):
        values, counts = np.unique(row, return_counts=True)
        tied = set(values[counts == counts.max()].tolist())
        out[i] = next(v for v in row.tolist() if v in tied)
    return out


def agreement_rate(preds: Any) -> np.ndarray:
    """[N, S] -> [N]: per image, the fraction of samples that agree with the majority vote."""
    p = np.asarray(preds)
    return (p == majority_vote(p)[:, None]).mean(axis=1)


def _count_row(correct: np.ndarray, n_failed: int) -> dict[str, Any]:
    k, n = int(correct.sum()), int(correct.size)
    lo, hi = wilson_ci(k, n)
    return {"n": n, "n_failed": n_failed, "correct": k, "accuracy": k / n if n else math.nan, "ci_low": lo, "ci_high": hi}


def fairness_table(per_image: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """Long-form table from per-image predictions.

    ``per_image`` has one row per (factor, method, image) with columns factor, method,
    params_source, group (name), label (group index), status ("ok"/"failed"), pred (single
    sample), ref_pred (the classifier on the original image), and for samplers
    samples (S > 1), pred_majority and agreement (NaN/-1 otherwise). Returns, per factor,
    method and vote ("single" and, for samplers, "majority of S"), one row per group and a
    "total" row: n, n_failed, correct, accuracy, Wilson 95% CI, preserved, mean agreement.
    """
    out: list[dict[str, Any]] = []
    df = per_image.copy()
    if "samples" not in df.columns:
        df["samples"] = 1
    keys = ["factor", "method"]
    for (factor, method), sub in df.groupby(keys, sort=False):
        ok = sub[sub["status"] == "ok"]
        S = int(sub["samples"].max())
        votes = [("single", "pred")] + ([(f"majority of {S}", "pred_majority")] if S > 1 else [])
        agreement = float(ok["agreement"].mean()) if S > 1 and len(ok) else math.nan
        for vote, col in votes:
            for g in [*groups, "total"]:
                part = ok if g == "total" else ok[ok["group"] == g]
                failed = sub[sub["status"] != "ok"]
                n_failed = len(failed) if g == "total" else int((failed["group"] == g).sum())
                pred = part[col].to_numpy(dtype=np.int64)
                row = _count_row(pred == part["label"].to_numpy(dtype=np.int64), n_failed)
                preserved = int((pred == part["ref_pred"].to_numpy(dtype=np.int64)).sum())
                out.append({"factor": int(factor), "pixel_factor": int(factor) ** 2, "method": method,
                            "params_source": str(sub["params_source"].iloc[0]), "vote": vote, "samples": S,
                            "group": g, **row, "preserved": preserved, "agreement_mean": agreement})
    return pd.DataFrame(out)


def _fmt_count(r: pd.Series) -> str:
    if r["n"] == 0:
        return f"- ({r['n_failed']} failed)" if r["n_failed"] else "-"
    s = f"{r['correct']}/{r['n']} ({100 * r['ci_low']:.0f}-{100 * r['ci_high']:.0f}%)"
    return s + (f", {r['n_failed']} failed" if r["n_failed"] else "")


def table_markdown(table: pd.DataFrame, groups: Sequence[str], meta: dict[str, Any]) -> str:
    """The markdown report: one table per factor, methods x (single, majority) rows."""
    lines = []
    if meta.get("smoke"):
        lines += [f"> **SMOKE RUN, NOT A RESULT**: {meta['smoke']}", ""]
    lines += [f"# Fairness table ({meta.get('prior', '?')} prior)", "",
              f"Images per group: {meta.get('n_per_group', '?')}. Each is downsampled (bicubic) by the factor "
              f"per side (x factor^2 in pixel count), reconstructed by each method, and "
              f"classified by {meta.get('classifier', '?')}. Cells: correct/n (95% Wilson CI). "
              f"'majority of S': majority vote over S posterior samples (ties: the first sample's class); "
              f"'agreement': mean per-image fraction of samples agreeing with their majority (1 = no diversity). "
              f"'preserved': same class as the classifier gives the original image (the official SGILO criterion). "
              f"'original': the classifier on the undegraded images (its ceiling).", ""]
    for key in ("hyperparameters", "store", "seed", "command"):
        if meta.get(key):
            lines.append(f"- {key}: {meta[key]}")
    lines.append("")
    side = meta.get("image_side")
    for factor, sub in table.groupby("factor", sort=True):
        res = f" ({side}x{side} -> {side // factor}x{side // factor})" if side and factor else ""
        title = "original images (no degradation)" if factor == 0 else f"x{factor} per side = x{factor ** 2} in pixel count{res}"
        lines += [f"## {title}", "",
                  "| method | vote | hyperparameters | " + " | ".join(groups) + " | total | preserved | agreement |",
                  "|---|---|---|" + "---|" * len(groups) + "---|---|---|"]
        for (method, vote), rows in sub.groupby(["method", "vote"], sort=False):
            by = {r["group"]: r for _, r in rows.iterrows()}
            tot = by["total"]
            agr = "" if math.isnan(tot["agreement_mean"]) or vote == "single" else f"{tot['agreement_mean']:.2f}"
            pres = f"{tot['preserved']}/{tot['n']}" if tot["n"] else "-"
            lines.append(f"| {method} | {vote} | {tot['params_source']} | " + " | ".join(_fmt_count(by[g]) for g in groups)
                         + f" | {_fmt_count(tot)} | {pres} | {agr} |")
        lines.append("")
    return "\n".join(lines)


# ============================================================================= the fairness image set
def fairness_set(prior: str, limit: int | None = None) -> tuple[list[int], list[int], tuple[str, ...]]:
    """(positions in the prior's "fairness" image set, group index per position, group names).

    embedded: the manifest's Sandal/Sneaker labels. ffhq: the group is the file-name prefix
    before the first "_" in ``$SGILO_BENCH_FFHQ_DIR/fairness`` (e.g. man_00012.png,
    woman_00345.png); groups are sorted by name. tiny: first/second half (tests only).
    ``limit`` keeps the first ``limit`` images of each group (smoke runs)."""
    prior = _world(prior)
    if prior == "embedded":
        from bench.data.evalset import FAIRNESS_GROUPS, load_evalset

        _, y = load_evalset("fairness")
        groups = tuple(FAIRNESS_GROUPS)
        lab_to_group = {lab: i for i, lab in enumerate(FAIRNESS_GROUPS.values())}
        labels = [lab_to_group[int(v)] for v in y.tolist()]
    elif prior == "ffhq":
        names = _ffhq_fairness_names()
        groups = tuple(sorted({n.split("_", 1)[0] for n in names}))
        labels = [groups.index(n.split("_", 1)[0]) for n in names]
    elif prior == "tiny":
        labels = [0] * 64 + [1] * 64
        groups = TINY_GROUPS
    else:
        raise UsageError(f"prior {prior!r} has no fairness groups; valid priors: {', '.join(_fairness_priors())}")
    keep: list[int] = []
    for g in range(len(groups)):
        pos = [i for i, lab in enumerate(labels) if lab == g]
        keep += pos[:limit] if limit else pos
    keep.sort()
    return keep, [labels[i] for i in keep], groups


def _world(prior: str) -> str:
    """The prior's world (ffhq-ada -> ffhq); unknown names pass through for the error messages."""
    from bench.priors.catalog import prior_world

    try:
        return prior_world(prior)
    except KeyError:
        return prior


def _fairness_priors() -> list[str]:
    from bench.priors.catalog import prior_names

    return [p for p in prior_names() if _world(p) in DEFAULT_FACTORS]


def _ffhq_fairness_names() -> list[str]:
    """File names of the FFHQ fairness folder, in the order the catalog loads them."""
    from bench.core.assets import MissingAssetError
    from bench.data.image_folder import list_images
    from bench.priors.catalog import FFHQ_DIR_ENV

    root = os.environ.get(FFHQ_DIR_ENV)
    if not root:
        raise MissingAssetError(f"FFHQ fairness images: set ${FFHQ_DIR_ENV} to a folder with a fairness/ subfolder of "
                                f"64 + 64 images named <group>_<anything>.png (e.g. man_00012.png, woman_00345.png)")
    folder = Path(root) / "fairness"
    return [p.relative_to(folder).as_posix() for p in list_images(folder)]


# ============================================================================= configuration and planning
@dataclass
class FairnessConfig:
    prior: str = "embedded"
    methods: tuple[str, ...] = DEFAULT_METHODS
    factors: tuple[int, ...] = (4, 8)  # per side; the pixel count shrinks by factor^2
    samples: int = 5  # posterior samples per image for samplers (others: 1)
    out: Path = Path("runs/fairness-embedded")
    from_sweep: Path | None = None
    params_override: dict[str, dict] = field(default_factory=dict)  # method -> hyperparameters set by hand
    steps_scale: float = 1.0
    limit: int | None = None  # images per group (smoke runs); None: all 64
    batch: int = 16  # images per cell
    seed: int = 0
    classifier: str = "embedded"
    classifier_options: dict = field(default_factory=dict)
    executor: str = "auto"
    workers: int = 2
    chunk_size: int = 1
    max_attempts: int = 2
    wandb: str = "auto"
    results: Path | None = None
    slurm: SlurmConfig = field(default_factory=SlurmConfig)

    @property
    def name(self) -> str:
        return self.out.name


@dataclass(frozen=True)
class Choice:
    """The hyperparameters a method runs with at one factor, and where they come from."""

    params: dict
    source: str  # for the table: "method defaults", "tuned (sweep, superres x4)", ...
    variant: str  # Cell.variant


def tuned_superres(sweep_dir: Path, prior: str) -> dict[tuple[float, str], dict]:
    """{(level, method): params} chosen by ``bench.collect.select_best`` from a sweep's superres
    tuning rows on this prior (noise-free measurements only); empty if it tuned no superres."""
    from bench.collect import select_best

    rows = [r for r in ResultStore(sweep_dir).rows()
            if r.get("stage") == "tune" and r.get("task") == "superres" and r.get("prior") == prior]
    if not rows:
        return {}
    chosen = select_best(pd.DataFrame(rows))
    out = {}
    for _, r in chosen.iterrows():
        if float(r.get("noise_sigma", 0.0) or 0.0) == 0.0 and r["params"]:
            out[(float(r["level"]), str(r["method"]))] = json.loads(r["params"])
    return out


def choose_params(method: str, factor: int, tuned: dict[tuple[float, str], dict], sweep_name: str,
                  override: dict | None = None, steps_scale: float = 1.0) -> Choice:
    """Tuned hyperparameters at this factor, else at the nearest tuned factor (log scale), else
    the method's defaults; then hand overrides and the step scale, each named in ``source``."""
    import methods as method_registry
    from bench.sweep import scale_steps

    levels = [lvl for (lvl, m) in tuned if m == method]
    if levels:
        lvl = min(levels, key=lambda v: (abs(math.log(v / factor)), v))
        params = dict(tuned[(lvl, method)])
        exact = lvl == factor
        source = f"tuned ({sweep_name}, superres x{lvl:g}{'' if exact else ', nearest tuned factor'})"
        variant = "tuned" if exact else f"tuned@{lvl:g}"
    else:
        params = method_registry.get(method).default_params().to_dict()
        source, variant = "method defaults", "default"
    if override:
        params = {**params, **override}
        source += " + --params " + json.dumps(override, sort_keys=True)
        variant += "+params"
    if steps_scale != 1.0:
        params = scale_steps(params, steps_scale)
        source += f", steps x{steps_scale:g}"
        variant += f"+steps{steps_scale:g}"
    method_registry.get(method).params_from_dict(params)  # unknown keys fail here, not in every cell
    return Choice(params, source, variant)


def plan_cells(cfg: FairnessConfig, positions: Sequence[int], choices: dict[tuple[int, str], Choice]) -> list[Cell]:
    """Ordinary superres cells (stage "fairness") that save their reconstructions and samples."""
    import methods as method_registry
    from bench.execution import chunked

    cells = []
    for factor in cfg.factors:
        for m in cfg.methods:
            ch = choices[(factor, m)]
            S = cfg.samples if method_registry.get(m).samples_posterior else 1
            for batch in chunked(list(positions), cfg.batch):
                cells.append(Cell(cfg.name, "fairness", cfg.prior, "superres", float(factor), m, ch.params, "fairness",
                                  tuple(batch), seed=cfg.seed, variant=ch.variant, num_samples=S,
                                  save_images=str(cfg.out / "images")))
    return cells


# ============================================================================= classification
def classify(cfg: FairnessConfig, cells: Sequence[Cell], positions: Sequence[int], labels: Sequence[int],
             set_groups: Sequence[str], clf, choices: dict[tuple[int, str], Choice]) -> pd.DataFrame:
    """Per-image predictions of the originals (factor 0, method "original") and of every
    cell's reconstruction and posterior samples, read from ``<out>/images/<key>.pt``."""
    from bench.priors.catalog import load_images

    images, ids = load_images(cfg.prior, "fairness")
    pos = list(positions)
    ref = clf.predict(images[pos]).tolist()
    info = {p: {"image_index": p, "image_id": ids[p], "group": set_groups[lab], "label": clf.groups.index(set_groups[lab]),
                "ref_pred": r} for p, lab, r in zip(pos, labels, ref)}
    rows = [{"factor": 0, "method": "original", "params_source": "-", **info[p], "status": "ok", "pred": info[p]["ref_pred"],
             "samples": 1, "pred_majority": -1, "agreement": math.nan} for p in pos]
    store = ResultStore(cfg.out)
    for cell in cells:
        base = {"factor": int(cell.level), "method": cell.method,
                "params_source": choices[(int(cell.level), cell.method)].source}
        rec_path = store.record_path(cell)
        status = json.loads(rec_path.read_text())["status"] if rec_path.exists() else "missing"
        img_path = cfg.out / "images" / f"{cell.key}.pt"
        if status != "ok" or not img_path.exists():
            rows += [base | info[p] | {"status": status if status != "ok" else "missing images", "pred": -1,
                                       "samples": cell.num_samples, "pred_majority": -1, "agreement": math.nan}
                     for p in cell.image_indices]
            continue
        blob = torch.load(img_path, map_location="cpu", weights_only=True)
        single = clf.predict(decode_image(blob["recon"])).numpy()
        S = cell.num_samples
        if blob["samples"] is not None and S > 1:
            smp = decode_image(blob["samples"])
            sp = clf.predict(smp.flatten(0, 1)).numpy().reshape(smp.shape[0], smp.shape[1])
            maj, agr = majority_vote(sp), agreement_rate(sp)
        else:
            maj, agr = np.full(len(single), -1), np.full(len(single), math.nan)
        for j, p in enumerate(blob["image_indices"]):
            rows.append(base | info[p] | {"status": "ok", "pred": int(single[j]), "samples": S,
                                          "pred_majority": int(maj[j]), "agreement": float(agr[j])})
    return pd.DataFrame(rows)


def decode_image(t: torch.Tensor) -> torch.Tensor:
    """Saved images (uint8, see ``bench.runner.image_to_uint8``) back to float in [-1, 1]."""
    return t.float() / 127.5 - 1 if t.dtype == torch.uint8 else t.float()


def build_classifier(cfg: FairnessConfig):
    from bench.attributes import get_classifier
    from bench.core.device import get_device

    opts = dict(cfg.classifier_options)
    opts.setdefault("device", get_device())
    return get_classifier(cfg.classifier, **opts)


def classifier_groups(cfg: FairnessConfig) -> tuple[str, ...] | None:
    """The groups a built-in classifier will decide between, known without loading it (None: unknown)."""
    if cfg.classifier == "clip":
        from bench.attributes import DEFAULT_GROUPS

        return tuple(cfg.classifier_options.get("groups", DEFAULT_GROUPS))
    if cfg.classifier == "embedded":
        from bench.data.evalset import FAIRNESS_GROUPS

        return tuple(FAIRNESS_GROUPS)
    return None


def check_classifier_ready(cfg: FairnessConfig) -> str | None:
    """A message if the classifier's weights are missing (checked before any reconstruction)."""
    from bench.core.assets import MissingAssetError, get_asset

    try:
        if cfg.classifier == "clip":
            from bench.attributes import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, resolve_clip_weights

            o = cfg.classifier_options
            if not o.get("random_init"):
                resolve_clip_weights(o.get("model", DEFAULT_CLIP_MODEL), o.get("pretrained", DEFAULT_CLIP_PRETRAINED),
                                     o.get("weights"))
        elif cfg.classifier == "embedded" and cfg.classifier_options.get("path") is None:
            get_asset("fmnist-classifier").require()
    except MissingAssetError as err:
        return str(err)
    return None


# ============================================================================= running
def log_table_wandb(cfg: FairnessConfig, table: pd.DataFrame, mode: str, markdown: str) -> None:
    """One W&B run per fairness store holding the table (offline works without network)."""
    if mode == "disabled":
        return
    from bench.wandb_log import _project, _wandb, run_id

    folder = cfg.out / "wandb"
    wandb = _wandb(mode, folder)
    run = wandb.init(project=_project(), group=cfg.name, job_type="fairness", id=run_id(cfg.name, "fairness-table"),
                     name=f"fairness/{cfg.prior}", resume="allow", mode=mode, dir=str(folder), reinit="finish_previous",
                     config={"prior": cfg.prior, "methods": list(cfg.methods), "factors": list(cfg.factors),
                             "samples": cfg.samples, "classifier": cfg.classifier, "limit": cfg.limit},
                     settings=wandb.Settings(console="off", disable_git=True, x_disable_stats=True))
    try:
        run.log({"fairness": wandb.Table(dataframe=table), "fairness_md": wandb.Html(f"<pre>{markdown}</pre>")})
        tot = table[table["group"] == "total"]
        run.summary.update({f"acc/x{r['factor']}/{r['method']}/{r['vote']}": r["accuracy"] for _, r in tot.iterrows()})
    finally:
        run.finish()


def prior_missing(prior: str, cells: Sequence[Cell] = ()) -> list[str]:
    """Messages for the prior's missing model files, score models the ``cells`` need included
    (its image folders are checked by :func:`fairness_set`: FFHQ needs only fairness/, not the
    sweep's tune/ and test/)."""
    from bench.core.assets import get_asset
    from bench.priors.catalog import get_spec
    from bench.runner import score_layers

    spec = get_spec(prior)
    needed = [spec.score_assets[k] for k in sorted(score_layers(cells)) if k in spec.score_assets]
    return [get_asset(a).missing_message() for a in [*spec.required_assets, *needed] if not get_asset(a).exists()]


def smoke_reason(cfg: FairnessConfig, random_weights: bool = False) -> str:
    why = []
    if cfg.prior == "tiny":
        why.append("tiny prior (random generator, pseudo-groups)")
    if cfg.limit:
        why.append(f"--limit {cfg.limit} images per group")
    if random_weights:
        why.append("randomly initialised classifier")
    return "; ".join(why)


def describe(cfg: FairnessConfig, executor: str, cells: list[Cell], n_per_group: dict[str, int],
             choices: dict[tuple[int, str], Choice]) -> str:
    side = IMAGE_SIDE.get(_world(cfg.prior))
    fs = ", ".join(f"x{f}/side = x{f * f} pixels" + (f" ({side}->{side // f})" if side else "") for f in cfg.factors)
    lines = [f"fairness {cfg.name!r}: prior={cfg.prior}, classifier={cfg.classifier}, out={cfg.out}, executor={executor}",
             f"images: " + ", ".join(f"{g} {n}" for g, n in n_per_group.items()) + f" (batches of {cfg.batch})",
             f"factors: {fs}", f"posterior samples for samplers: {cfg.samples}"]
    for (f, m), ch in choices.items():
        lines.append(f"  x{f} {m}: {ch.source}: {json.dumps(ch.params, sort_keys=True)}")
    lines.append(f"cells: {len(cells)} (done already: {sum(ResultStore(cfg.out).is_done(c) for c in cells)})")
    lines.append(f"wandb: {_resolve_wandb(cfg.wandb)}")
    return "\n".join(lines)


def _resolve_wandb(mode: str) -> str:
    from bench.sweep import resolve_wandb

    return resolve_wandb(mode)


def run_fairness(cfg: FairnessConfig, dry_run: bool = False, command: str = "", plan_only: bool = False) -> int:
    from bench.core.assets import MissingAssetError
    from bench.sweep import _progress_printer

    missing: list[str] = []
    try:
        positions, labels, set_groups = fairness_set(cfg.prior, cfg.limit)
    except (MissingAssetError, FileNotFoundError, NotADirectoryError) as err:
        if not dry_run:
            print(f"cannot run; missing:\n  - {err}", file=sys.stderr)
            return 2
        missing.append(str(err))  # plan with placeholder groups so the dry run still shows the cells
        n = cfg.limit or 64
        positions, labels, set_groups = list(range(2 * n)), [0] * n + [1] * n, tuple(classifier_groups(cfg) or TINY_GROUPS)
    tuned = tuned_superres(cfg.from_sweep, cfg.prior) if cfg.from_sweep else {}
    if cfg.from_sweep and not tuned:
        print(f"note: {cfg.from_sweep} has no superres tuning rows for prior {cfg.prior!r}; using method defaults",
              file=sys.stderr)
    sweep_name = cfg.from_sweep.name if cfg.from_sweep else ""
    try:
        choices = {(f, m): choose_params(m, f, tuned, sweep_name, cfg.params_override.get(m), cfg.steps_scale)
                   for f in cfg.factors for m in cfg.methods}
    except (ValueError, TypeError) as err:
        print(f"error: bad hyperparameters: {err}", file=sys.stderr)
        return 2
    cells = plan_cells(cfg, positions, choices)
    executor = resolve_executor(cfg.executor)
    n_per_group = {g: labels.count(i) for i, g in enumerate(set_groups)}
    promised = classifier_groups(cfg)
    if promised is not None and set(promised) != set(set_groups):
        print(f"error: classifier {cfg.classifier!r} decides between {list(promised)}, but the {cfg.prior} fairness set's "
              f"groups are {list(set_groups)}" + (" (set --clip-groups)" if cfg.classifier == "clip" else ""),
              file=sys.stderr)
        return 2
    missing += prior_missing(cfg.prior, cells)
    clf_missing = check_classifier_ready(cfg)
    if clf_missing:
        missing.append(clf_missing)
    if dry_run:
        print(describe(cfg, executor, cells, n_per_group, choices))
        if missing:
            print("\nmissing (the run would stop):\n  - " + "\n  - ".join(missing))
        return 0
    if missing:
        print("cannot run; missing:\n  - " + "\n  - ".join(missing), file=sys.stderr)
        return 2
    if cfg.results and smoke_reason(cfg):
        print(f"error: --results copies only real measurements; this is a smoke run ({smoke_reason(cfg)})", file=sys.stderr)
        return 2
    store = ResultStore(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    plan = store.write_plan(cells, meta={"stage": "fairness", "config": _config_dict(cfg)}, name="plan_fairness.json")
    if plan_only:
        n_chunks = max(1, -(-len(cells) // cfg.chunk_size))
        gres = "" if cfg.slurm.gpus_per_node else " --gres=none"
        print(f"wrote {plan} ({len(cells)} cells): CHUNK_SIZE={cfg.chunk_size} sbatch{gres} --array=0-{n_chunks - 1} "
              f"slurm/grid.sh {plan}\nthen re-run this command without --plan-only to classify and write the table")
        return 0
    print(describe(cfg, executor, cells, n_per_group, choices), file=sys.stderr)
    wandb_mode = _resolve_wandb(cfg.wandb)
    counts = execute(cells, store, executor, workers=cfg.workers, chunk_size=cfg.chunk_size,
                     max_attempts=cfg.max_attempts, wandb_mode=wandb_mode, slurm=cfg.slurm,
                     progress=_progress_printer("fairness"))
    clf = build_classifier(cfg)
    if set(clf.groups) != set(set_groups):
        print(f"error: classifier groups {list(clf.groups)} do not match the fairness set's groups {list(set_groups)}",
              file=sys.stderr)
        return 2
    per_image = classify(cfg, cells, positions, labels, set_groups, clf, choices)
    table = fairness_table(per_image, clf.groups)
    smoke = smoke_reason(cfg, clf.random_weights)
    meta = {"prior": cfg.prior, "classifier": clf.description, "n_per_group": ", ".join(f"{g} {n}" for g, n in n_per_group.items()),
            "image_side": IMAGE_SIDE.get(_world(cfg.prior)), "store": str(cfg.out), "seed": cfg.seed, "smoke": smoke,
            "command": command}
    md = table_markdown(table, clf.groups, meta) + _params_section(choices)
    per_image.to_csv(cfg.out / "fairness_images.csv", index=False)
    table.to_csv(cfg.out / "fairness.csv", index=False)
    (cfg.out / "fairness.md").write_text(md)
    log_table_wandb(cfg, table, wandb_mode, md)
    print(f"\ncells {counts}; wrote {cfg.out / 'fairness.md'}, {cfg.out / 'fairness.csv'}, {cfg.out / 'fairness_images.csv'}")
    if cfg.results:
        cfg.results.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cfg.out / "fairness.md", cfg.results / "fairness.md")
        print(f"copied the table to {cfg.results / 'fairness.md'}")
    return 0


def _params_section(choices: dict[tuple[int, str], Choice]) -> str:
    lines = ["", "## Hyperparameters", ""]
    for (f, m), ch in choices.items():
        lines.append(f"- x{f} per side, {m} ({ch.source}): `{json.dumps(ch.params, sort_keys=True)}`")
    return "\n".join(lines) + "\n"


def _config_dict(cfg: FairnessConfig) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(cfg)
    return json.loads(json.dumps(d, default=str))


# ============================================================================= CLI
def _split(values: Sequence[str]) -> list[str]:
    return [v.strip() for tok in values for v in tok.split(",") if v.strip()]


def parse_factors(values: Sequence[str], prior: str) -> tuple[int, ...]:
    """Per-side factors (``4 8`` or ``4,8``); each must be an integer >= 2 the image size allows."""
    import tasks as task_registry
    from tasks.superres import reflect_pads

    out = []
    for v in _split(values):
        try:
            f = int(v)
        except ValueError:
            raise UsageError(f"--factor {v!r}: factors are integers per side (x4 per side = x16 in pixel count)") from None
        if f < 2:
            raise UsageError(f"--factor {f}: must be >= 2 (factor 1 is not the identity: a half-pixel shift)")
        side = IMAGE_SIDE.get(_world(prior))
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
    from bench.attributes import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, DEFAULT_GROUPS, DEFAULT_PROMPTS

    p = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", default="embedded",
                   help="embedded (default), ffhq (rosinality .pt), ffhq-ada (NVIDIA ffhq.pkl), or tiny (tests only)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated method names (default ilo,sgilo)")
    p.add_argument("--factor", nargs="+", default=None, metavar="N",
                   help="downsampling factors PER SIDE; the pixel count shrinks by N^2 (default: 4 8 on the embedded "
                        "32x32 images = x16, x64 in pixel count; 16 on FFHQ 1024 = x256, the paper's)")
    p.add_argument("--samples", type=int, default=5, help="posterior samples per image for samplers (default 5)")
    p.add_argument("--from-sweep", default=None, metavar="DIR",
                   help="take hyperparameters tuned on superres by a sweep store (bench.collect.select_best); "
                        "default: each method's defaults")
    p.add_argument("--params", action="append", default=[], metavar="METHOD=JSON",
                   help="override hyperparameters of a method (repeatable), e.g. sgilo='{\"temperature\": [0, 0, 1]}'")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply every method's step counts (smoke runs)")
    p.add_argument("--limit", type=int, default=None, help="images per group (smoke runs; default all 64)")
    p.add_argument("--batch", type=int, default=16, help="images per cell (default 16)")
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--executor", default="auto", choices=["auto", "slurm", "local", "debug"],
                   help="auto: slurm when a controller answers `scontrol ping`, else local worker processes")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="local worker processes")
    p.add_argument("--chunk-size", type=int, default=None, help="cells per job (default: 1 local, 8 slurm)")
    p.add_argument("--max-attempts", type=int, default=2)
    p.add_argument("--wandb", default="auto", choices=["auto", "online", "offline", "disabled"],
                   help="auto: online with WANDB_API_KEY set, else offline")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan and exit")
    p.add_argument("--plan-only", action="store_true",
                   help="write <out>/plan_fairness.json for slurm/grid.sh, print the sbatch line and exit")
    add_slurm_arguments(p)
    return p


def config_from_args(a: argparse.Namespace) -> FairnessConfig:
    import methods as method_registry
    from bench.attributes import classifier_names
    from bench.sweep import validate_names

    if a.prior not in _fairness_priors():
        raise UsageError(f"unknown prior {a.prior!r}; valid priors: {', '.join(_fairness_priors())}")
    world = _world(a.prior)
    try:
        method_names = validate_names("method", _split([a.methods]), method_registry.names())
    except Exception as err:  # the sweep's UsageError: same message, our exit path
        raise UsageError(str(err)) from None
    factors = parse_factors(a.factor, a.prior) if a.factor else DEFAULT_FACTORS[world]
    if a.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {a.samples}")
    if a.limit is not None and a.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {a.limit}")
    if a.batch < 1:
        raise UsageError(f"--batch must be >= 1, got {a.batch}")
    if a.steps_scale <= 0:
        raise UsageError(f"--steps-scale must be > 0, got {a.steps_scale}")
    clf = a.classifier or DEFAULT_CLASSIFIER[world]
    if clf is None:
        raise UsageError(f"the {a.prior} prior has no attribute classifier; pass --classifier "
                         f"(valid classifiers: {', '.join(classifier_names())})")
    if clf not in classifier_names():
        raise UsageError(f"unknown classifier {clf!r}; valid classifiers: {', '.join(classifier_names())}")
    opts: dict[str, Any] = {}
    if clf == "clip":
        groups, prompts = _split([a.clip_groups]), [s.strip() for s in a.clip_prompts.split("|") if s.strip()]
        if len(groups) != len(prompts) or len(groups) < 2:
            raise UsageError(f"--clip-groups {groups} and --clip-prompts {prompts}: need one prompt per group, >= 2 groups")
        opts = {"model": a.clip_model, "pretrained": a.clip_pretrained, "weights": a.clip_weights,
                "groups": tuple(groups), "prompts": tuple(prompts)}
    from_sweep = Path(a.from_sweep) if a.from_sweep else None
    if from_sweep is not None and not (from_sweep / "cells").is_dir():
        raise UsageError(f"--from-sweep {from_sweep}: not a sweep store (no cells/ folder)")
    executor = a.executor
    chunk = a.chunk_size or (8 if resolve_executor(executor) == "slurm" else 1)
    slurm = slurm_config_from_args(a, a.prior)
    return FairnessConfig(
        prior=a.prior, methods=method_names, factors=factors, samples=a.samples,
        out=Path(a.out) if a.out else Path("runs") / f"fairness-{a.prior}", from_sweep=from_sweep,
        params_override=parse_params(a.params, method_names), steps_scale=a.steps_scale, limit=a.limit, batch=a.batch,
        seed=a.seed, classifier=clf, classifier_options=opts, executor=executor, workers=a.workers, chunk_size=chunk,
        max_attempts=a.max_attempts, wandb=a.wandb, results=Path(a.results) if a.results else None, slurm=slurm)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        cfg = config_from_args(a)
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = sys.argv[1:] if argv is None else argv
    return run_fairness(cfg, dry_run=a.dry_run, command="python -m bench.fairness " + " ".join(args), plan_only=a.plan_only)


if __name__ == "__main__":
    sys.exit(main())
