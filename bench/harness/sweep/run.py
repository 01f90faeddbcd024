"""Running a sweep: dry run, plan-only (for slurm/grid.sh), or tune -> eval -> report."""
from __future__ import annotations

import sys
import time

from bench.harness.cli import execute_with_options, resolve_wandb, sbatch_line
from bench.harness.runner import Cell
from bench.harness.slurm import default_chunk_size, resolve_executor
from bench.harness.store import ResultStore
from bench.harness.sweep.config import SweepConfig
from bench.harness.sweep.plan import describe_plan, plan_eval, plan_tune


def run_stage(cfg: SweepConfig, stage: str, cells: list[Cell], store: ResultStore, executor: str,
              chunk_size: int) -> dict[str, int]:
    store.write_plan(cells, meta={"stage": stage, "config": cfg.to_dict()}, name=f"plan_{stage}.json")
    return execute_with_options(cells, store, executor, cfg.execution, chunk_size, stage)


def _dry_run(cfg: SweepConfig, store: ResultStore, executor: str, chunk: int, tune: list[Cell],
             missing: list[str], problems: list[str], rerun_score_cells: bool = False) -> int:
    eval_cells = None
    if tune and all(store.is_done(c) for c in tune):
        eval_cells, _ = plan_eval(cfg, store)
    print(describe_plan(cfg, executor, chunk, resolve_wandb(cfg.execution.wandb), tune, eval_cells))
    conflict = _other_sweep_in(cfg, rerun_score_cells, dry_run=True)
    if conflict:
        print("\n" + conflict)
    note = _lpips_note()
    if note and not _required_lpips(cfg):
        print(f"\noptional (the sweep runs without it):\n  - {note}")
    if missing:
        print(f"\nmissing for prior {cfg.prior!r} (the sweep would stop):\n  - " + "\n  - ".join(missing))
    if problems:
        print("\nproblems (the sweep would stop):\n  - " + "\n  - ".join(problems))
    return 2 if missing or problems or conflict else 0


def _required_lpips(cfg: SweepConfig) -> list[str]:
    """The LPIPS backbone as a missing file when the world reports LPIPS (FFHQ) and --allow-no-lpips is not given."""
    from bench.priors.catalog import get_world

    note = _lpips_note()
    if not note or not get_world(cfg.prior).requires_lpips or cfg.allow_no_lpips:
        return []
    return [f"{note}; the {get_world(cfg.prior).name} world reports LPIPS (pass --allow-no-lpips to run without it)"]


def _lpips_note() -> str:
    """What the report will lack without the LPIPS backbone file (empty when it is there)."""
    from bench.core.metrics import find_backbone

    path, reason = find_backbone("alex")
    return "" if path is not None else f"{reason}. Without it every row's LPIPS is reported as 'unavailable'"


def _write_plan_only(cfg: SweepConfig, store: ResultStore, stage: str, chunk: int, tune: list[Cell]) -> int:
    cells = tune
    if stage == "eval":
        cells, untuned = plan_eval(cfg, store)
        if untuned:
            print(f"tuning results missing for {len(untuned)} (task, level, method): {', '.join(untuned[:6])}...; "
                  f"run the tune stage first", file=sys.stderr)
            return 2
    path = store.write_plan(cells, meta={"stage": stage, "config": cfg.to_dict()}, name=f"plan_{stage}.json")
    print(f"wrote {path} ({len(cells)} cells): "
          f"{sbatch_line(len(cells), chunk, cfg.execution.slurm.gpus_per_node, path)}")
    return 0


def _tune_eval_report(cfg: SweepConfig, store: ResultStore, executor: str, chunk: int, tune: list[Cell]) -> int:
    from bench.report.collect import collect

    print(describe_plan(cfg, executor, chunk, resolve_wandb(cfg.execution.wandb), tune, None), file=sys.stderr)
    if _lpips_note():
        print(f"note: {_lpips_note()}", file=sys.stderr)
    t0 = time.time()
    counts = run_stage(cfg, "tune", tune, store, executor, chunk)
    if counts["ok"] == 0:
        print(f"every tuning cell failed ({counts['failed']}); reasons: {cfg.out / 'cells'} (field 'reason'), "
              f"e.g. python -m bench.collect {cfg.out}", file=sys.stderr)
        return 1
    eval_cells, untuned = plan_eval(cfg, store)
    if untuned:
        print(f"warning: no successful tuning result for {', '.join(untuned)}; skipped in eval", file=sys.stderr)
    counts_eval = run_stage(cfg, "eval", eval_cells, store, executor, chunk)
    outputs = collect(cfg.out)
    mode = resolve_wandb(cfg.execution.wandb)
    if mode != "disabled":
        from bench.harness.wandb_log import log_summary

        log_summary(cfg.out, mode=mode)
    print(f"\ndone in {time.time() - t0:.0f} s: tune {counts}, eval {counts_eval}")
    for name, path in outputs.items():
        print(f"  {name}: {path}")
    return 0 if counts_eval["ok"] else 1


def _other_sweep_in(cfg: SweepConfig, rerun_score_cells: bool = False, dry_run: bool = False) -> str:
    """A message when ``cfg.out`` holds a different sweep (other tasks, levels, methods, grids, seed, weights
    or images): results of two sweeps must never mix, and nothing of the stored one is overwritten. When
    only score models changed and ``rerun_score_cells`` is set, the cells that loaded them are set aside
    instead (bench/harness/sweep/rescore.py; a dry run only says how many)."""
    import json

    from bench.harness.sweep.config import identity_differences, stored_identity
    from bench.harness.sweep.rescore import score_change

    path = cfg.out / "config.json"
    if not path.exists():
        return ""
    stored = json.loads(path.read_text())
    diffs = identity_differences(stored, cfg)
    if not diffs:
        return ""
    hint = ""
    old, new = stored_identity(stored), cfg.identity()
    old_data, new_data = old.pop("data", {}), new.pop("data")
    if old == new:  # only weights or images differ: a re-installed score model is handled here
        handled, hint = score_change(cfg.out, old_data, new_data, cfg.prior, rerun_score_cells, dry_run)
        if handled:
            print(hint, file=sys.stderr)
            return ""
    return (f"{cfg.out} holds another sweep (its config.json differs):\n  - " + "\n  - ".join(diffs[:12]) +
            (f"\n{hint}" if hint else "") +
            f"\nUse another --out for this one. To continue the stored sweep, repeat its options; to start over, "
            f"move {cfg.out} away.")


def run_sweep(cfg: SweepConfig, dry_run: bool = False, plan_only: str | None = None,
              rerun_score_cells: bool = False) -> int:
    """Exit code: 0 done (or planned; a dry run with nothing missing), 1 every cell of a stage failed,
    2 a required file is missing, the preflight found a problem, or the eval plan has no tuning.
    ``rerun_score_cells``: continue a folder whose only change is re-installed score models (see
    ``_other_sweep_in``)."""
    from bench.core.io import atomic_write_json
    from bench.harness.preflight import sweep_problems
    from bench.harness.runner import score_layers
    from bench.priors.catalog import missing_assets

    store = ResultStore(cfg.out)
    executor = resolve_executor(cfg.execution.executor)
    chunk = default_chunk_size(cfg.execution.chunk_size, executor)
    tune = plan_tune(cfg)
    missing = missing_assets(cfg.prior, score_layers(tune)) + _required_lpips(cfg)
    problems = sweep_problems(cfg, tune, load=not missing)
    if dry_run:
        return _dry_run(cfg, store, executor, chunk, tune, missing, problems, rerun_score_cells)
    if missing or problems:
        print(f"cannot run prior {cfg.prior!r}:\n  - " + "\n  - ".join(missing + problems), file=sys.stderr)
        return 2
    conflict = _other_sweep_in(cfg, rerun_score_cells)
    if conflict:
        print(conflict, file=sys.stderr)
        return 2
    atomic_write_json(cfg.out / "config.json", cfg.to_dict(), indent=1)
    if plan_only:
        return _write_plan_only(cfg, store, plan_only, chunk, tune)
    return _tune_eval_report(cfg, store, executor, chunk, tune)
