"""Running the fairness table: plan, check files, execute the cells (the sweep's executors),
classify, write ``fairness.md`` / ``fairness.csv`` / ``fairness_images.csv``."""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from bench.core.io import atomic_write_text
from bench.experiments.fairness.baseline import BASELINE_METHOD, measurement_only_rows
from bench.experiments.fairness.classify import build_classifier, check_classifier_ready, classifier_groups, classify
from bench.experiments.fairness.config import Choice, FairnessConfig, choose_params, tuned_superres
from bench.experiments.fairness.plan import fairness_set, plan_cells, prior_missing
from bench.experiments.fairness.report import (
    failures_section,
    log_table_wandb,
    paired_section,
    params_section,
    table_markdown,
)
from bench.experiments.fairness.stats import MAJORITY, fairness_table, paired_comparisons
from bench.harness.cli import execute_with_options, resolve_wandb, sbatch_line
from bench.harness.runner import Cell
from bench.harness.slurm import default_chunk_size, resolve_executor
from bench.harness.store import ResultStore
from bench.harness.sweep.plan import hours_clause, image_steps, progress_clause

# the paired comparisons of the table: SGILO against ILO and against its own T = 0 control, one sample each;
# the majority votes at an equal budget (5 chains each: what the prior adds to an ensemble) and against one ILO
# run (the paper's comparison, 5x the budget); the measurement-only baseline against both kinds of method
PAIRS = (("sgilo", "ilo"), ("sgilo", "sgilo_t0"), ("sgilo_t0", "ilo"),
         ("sgilo@majority", "sgilo_t0@majority"), ("sgilo@majority", "ilo"),
         (BASELINE_METHOD, "ilo"), (BASELINE_METHOD, "sgilo@majority"))


class StopRun(Exception):
    """A problem that stops the run: printed, exit code ``code`` (2: found before any cell ran, 1: every cell failed)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


@dataclass
class Planned:
    positions: list[int]
    labels: list[int]
    groups: tuple[str, ...]
    choices: dict[tuple[int, str], Choice]
    cells: list[Cell]
    missing: list[str] = field(default_factory=list)

    @property
    def n_per_group(self) -> dict[str, int]:
        return {g: self.labels.count(i) for i, g in enumerate(self.groups)}


def smoke_reason(cfg: FairnessConfig, random_weights: bool = False) -> str:
    """Why a run is plumbing, not a result ("" for a real run)."""
    from bench.priors.catalog import get_spec

    why = []
    if not get_spec(cfg.prior).for_results:
        why.append(f"{cfg.prior} prior (tests only: random generator, pseudo-groups)")
    if cfg.limit:
        why.append(f"--limit {cfg.limit} images per group")
    if random_weights:
        why.append("randomly initialised classifier")
    return "; ".join(why)


def describe(cfg: FairnessConfig, executor: str, planned: Planned) -> str:
    side = cfg.image_side
    fs = ", ".join(f"x{f}/side = x{f * f} pixels" + (f" ({side}->{side // f})" if side else "") for f in cfg.factors)
    lines = [f"fairness {cfg.name!r}: prior={cfg.prior}, classifier={cfg.classifier}, out={cfg.out}, executor={executor}",
             "images: " + ", ".join(f"{g} {n}" for g, n in planned.n_per_group.items()) + f" (batches of {cfg.batch})",
             f"factors: {fs}", f"posterior samples for samplers: {cfg.samples}"]
    for (f, m), ch in planned.choices.items():
        lines.append(f"  x{f} {m}: {ch.source}: {json.dumps(ch.params, sort_keys=True)}")
    lines.append(f"cells: {len(planned.cells)} (done already: {sum(ResultStore(cfg.out).is_done(c) for c in planned.cells)})")
    steps = sum(image_steps(c) for c in planned.cells)
    gpu = executor == "slurm" and cfg.execution.slurm.gpus_per_node > 0
    amount = f"{steps / 1e6:.2f}M" if steps >= 1e6 else f"{steps:,}"
    lines.append(f"cost: {amount} image-steps (steps x images x posterior samples)" + hours_clause(cfg.prior, steps, gpu))
    progress = progress_clause(ResultStore(cfg.out), planned.cells, cfg.execution.workers if executor == "local" else 1)
    if progress:
        lines.append(progress)
    lines.append(f"wandb: {resolve_wandb(cfg.execution.wandb)}")
    return "\n".join(lines)


def _image_groups(cfg: FairnessConfig, dry_run: bool) -> tuple[list[int], list[int], tuple[str, ...], list[str]]:
    """The fairness set; in a dry run a missing set becomes placeholder groups + a message."""
    from bench.core.assets import MissingAssetError

    try:
        return (*fairness_set(cfg.prior, cfg.limit), [])
    except (MissingAssetError, FileNotFoundError, NotADirectoryError) as err:
        if not dry_run:
            raise StopRun(f"cannot run; missing:\n  - {err}") from None
        n = cfg.limit or 64  # plan with placeholder groups so the dry run still shows the cells
        groups = tuple(classifier_groups(cfg) or ("group-a", "group-b"))
        return list(range(2 * n)), [0] * n + [1] * n, groups, [str(err)]


def _choices(cfg: FairnessConfig) -> dict[tuple[int, str], Choice]:
    tuned = tuned_superres(cfg.from_sweep, cfg.prior) if cfg.from_sweep else {}
    if cfg.from_sweep and not tuned:
        print(f"note: {cfg.from_sweep} has no superres tuning rows for prior {cfg.prior!r}; using method defaults",
              file=sys.stderr)
    # a report's rows.csv is named by its folder (results/embedded/paper-superres/rows.csv -> paper-superres)
    sweep_name = "" if not cfg.from_sweep else (cfg.from_sweep.parent.name if cfg.from_sweep.is_file()
                                                else cfg.from_sweep.name)
    try:
        return {(f, m): choose_params(m, f, tuned, sweep_name, cfg.params_override.get(m), cfg.steps_scale,
                                      cfg.independent_chains)
                for f in cfg.factors for m in cfg.methods}
    except (ValueError, TypeError) as err:
        raise StopRun(f"error: bad hyperparameters: {err}") from None


def plan_run(cfg: FairnessConfig, dry_run: bool) -> Planned:
    positions, labels, groups, missing = _image_groups(cfg, dry_run)
    choices = _choices(cfg)
    planned = Planned(positions, labels, groups, choices, plan_cells(cfg, positions, choices), missing)
    promised = classifier_groups(cfg)
    if promised is not None and set(promised) != set(groups):
        raise StopRun(f"error: classifier {cfg.classifier!r} decides between {list(promised)}, but the {cfg.prior} "
                      f"fairness set's groups are {list(groups)}" +
                      (" (set --clip-groups)" if cfg.classifier == "clip" else ""))
    planned.missing += prior_missing(cfg.prior, planned.cells)
    clf_missing = check_classifier_ready(cfg)
    if clf_missing:
        planned.missing.append(clf_missing)
    return planned


def config_dict(cfg: FairnessConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg), default=str))


def _classify_and_write(cfg: FairnessConfig, planned: Planned, wandb_mode: str, command: str) -> None:
    clf = build_classifier(cfg)
    if set(clf.groups) != set(planned.groups):
        raise StopRun(f"error: classifier groups {list(clf.groups)} do not match the fairness set's groups "
                      f"{list(planned.groups)}")
    per_image = classify(cfg, planned.cells, planned.positions, planned.labels, planned.groups, clf, planned.choices)
    per_image = pd.concat([per_image, measurement_only_rows(cfg, planned, clf)], ignore_index=True)
    table = fairness_table(per_image, clf.groups)
    present = set(per_image["method"])
    pairs = [(a, b) for a, b in PAIRS if {a.removesuffix(MAJORITY), b.removesuffix(MAJORITY)} <= present]
    paired = paired_comparisons(per_image, pairs)
    meta = {"prior": cfg.prior, "classifier": clf.description,
            "n_per_group": ", ".join(f"{g} {n}" for g, n in planned.n_per_group.items()),
            "image_side": cfg.image_side, "store": str(cfg.out), "seeds": ", ".join(map(str, cfg.seeds)),
            "smoke": smoke_reason(cfg, clf.random_weights), "command": command}
    md = (table_markdown(table, clf.groups, meta) + paired_section(paired) + failures_section(per_image)
          + params_section(planned.choices))
    atomic_write_text(cfg.out / "fairness_images.csv", per_image.to_csv(index=False))
    atomic_write_text(cfg.out / "fairness_paired.csv", paired.to_csv(index=False))
    atomic_write_text(cfg.out / "fairness.csv", table.to_csv(index=False))
    atomic_write_text(cfg.out / "fairness.md", md)
    log_table_wandb(cfg, table, wandb_mode, md)


def _execute(cfg: FairnessConfig, planned: Planned, executor: str, chunk: int, command: str) -> None:
    store = ResultStore(cfg.out)
    print(describe(cfg, executor, planned), file=sys.stderr)
    ex = cfg.execution
    wandb_mode = resolve_wandb(ex.wandb)
    counts = execute_with_options(planned.cells, store, executor, ex, chunk, "fairness")
    if counts["ok"] == 0:
        raise StopRun(f"every cell failed ({counts['failed']}); the reasons are in {cfg.out / 'cells'} (field 'reason')",
                      code=1)
    _classify_and_write(cfg, planned, wandb_mode, command)
    print(f"\ncells {counts}; wrote {cfg.out / 'fairness.md'}, {cfg.out / 'fairness.csv'}, "
          f"{cfg.out / 'fairness_images.csv'}")
    if cfg.results:
        cfg.results.mkdir(parents=True, exist_ok=True)
        for name in ("fairness.md", "fairness_images.csv", "fairness_paired.csv"):
            shutil.copyfile(cfg.out / name, cfg.results / name)
        print(f"copied the table, the per-image predictions and the paired tests to {cfg.results}")


def _check_weights(cfg: FairnessConfig, rerun_score_cells: bool, dry_run: bool) -> None:
    """The store records the prior's weight fingerprints (``weights.json``) and refuses other weights, so
    cells of two priors never mix; after a score model was re-installed, ``rerun_score_cells`` sets aside
    the cells that loaded it instead (bench/harness/sweep/rescore.py)."""
    from bench.core.io import atomic_write_json
    from bench.harness.sweep.config import dict_differences
    from bench.harness.sweep.rescore import score_change
    from bench.priors.catalog import data_identity

    path = cfg.out / "weights.json"
    now = data_identity(cfg.prior)
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != now:
            handled, message = score_change(cfg.out, stored, now, cfg.prior, rerun_score_cells, dry_run)
            if not handled:
                diffs = dict_differences(stored, now)
                raise StopRun(f"{cfg.out} holds cells made with other weights:\n  - " + "\n  - ".join(diffs) +
                              (f"\n{message}" if message else "") + "\nUse another --out, or move it away.")
            print(message, file=sys.stderr)
    if not dry_run:
        cfg.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, now)


def run_fairness(cfg: FairnessConfig, dry_run: bool = False, command: str = "", plan_only: bool = False,
                 rerun_score_cells: bool = False) -> int:
    """Exit code 0 (done, planned, or a dry run with nothing missing), 1 (every cell failed), 2 (a problem
    found before any cell ran, or missing files in a dry run)."""
    try:
        planned = plan_run(cfg, dry_run)
        executor = resolve_executor(cfg.execution.executor)
        chunk = default_chunk_size(cfg.execution.chunk_size, executor)
        if dry_run:
            _check_weights(cfg, rerun_score_cells, dry_run=True)
            print(describe(cfg, executor, planned))
            if planned.missing:
                print("\nmissing (the run would stop):\n  - " + "\n  - ".join(planned.missing))
            return 2 if planned.missing else 0
        if planned.missing:
            raise StopRun("cannot run; missing:\n  - " + "\n  - ".join(planned.missing))
        if cfg.results and smoke_reason(cfg):
            raise StopRun(f"error: --results copies only real measurements; this is a smoke run ({smoke_reason(cfg)})")
        _check_weights(cfg, rerun_score_cells, dry_run=False)
        plan = ResultStore(cfg.out).write_plan(planned.cells, meta={"stage": "fairness", "config": config_dict(cfg)},
                                               name="plan_fairness.json")
        if plan_only:
            print(f"wrote {plan} ({len(planned.cells)} cells): "
                  f"{sbatch_line(len(planned.cells), chunk, cfg.execution.slurm.gpus_per_node, plan)}\n"
                  f"then re-run this command without --plan-only to classify and write the table")
            return 0
        _execute(cfg, planned, executor, chunk, command)
        return 0
    except StopRun as err:
        print(str(err), file=sys.stderr)
        return err.code
