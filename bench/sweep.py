"""Tune on the 8 tuning images, evaluate on the held-out test images, then tabulate and plot.

    python -m bench.sweep --tasks inpaint,cs                  # the embedded default, here
    python -m bench.sweep --tasks inpaint --prior ffhq --executor slurm --slurm-partition gpu
    python -m bench.sweep --tasks cs --dry-run                # print the plan, submit nothing
    python -m bench.sweep --tasks cs --plan-only --stage tune # write plan.json for slurm/grid.sh

Protocol (the paper's Section 4): for each task, level and method, every point of the
method's tuning grid runs on the 8 tuning images; the lowest mean reference MSE (ties: LPIPS)
is chosen; the chosen hyperparameters then run on the test images (30 by default). ILO is
also evaluated with the ILO paper's schedule ("ilo_paper") so the report can show "ILO" as
the best of ILO tuned, ILO paper and ILO-unregularized. Results go to a kill-safe store:
re-running the same command resumes, skipping finished cells.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.execution import SlurmConfig, add_slurm_arguments, chunked, execute, resolve_executor, slurm_config_from_args
from bench.runner import Cell
from bench.store import ResultStore

DEFAULT_METHODS = ("csgm", "ilo", "ilo_unreg", "sgilo")
# The quick embedded grid: three levels per task so the default run fits in 10 minutes on 2 cores.
QUICK_LEVELS = {"inpaint": (0.05, 0.2, 0.5), "cs": (0.05, 0.1, 0.25), "denoise": (1.0, 0.5, 0.25),
                "superres": (8, 4, 2), "inpaint_box": (0.5, 0.25, 0.1), "colorize": (0.0,)}


class UsageError(Exception):
    """Bad command-line input: printed with the valid choices, exit code 2."""


@dataclass
class SweepConfig:
    tasks: tuple[str, ...]
    methods: tuple[str, ...] = DEFAULT_METHODS
    levels: dict[str, tuple[float, ...]] = field(default_factory=dict)
    prior: str = "embedded"
    out: Path = Path("runs/sweep")
    seed: int = 0
    n_test: int = 30
    eval_batch: int = 10
    executor: str = "auto"
    workers: int = 2
    chunk_size: int = 1
    max_attempts: int = 2
    wandb: str = "auto"
    ilo_paper_steps_scale: float | None = None  # None: 0.075 on the embedded prior, 1.0 on FFHQ
    steps_scale: float = 1.0  # multiplies every method's step counts (quick smoke runs)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)

    @property
    def name(self) -> str:
        return self.out.name


# ----------------------------------------------------------------------------- validation
def parse_levels(specs: list[str], tasks: tuple[str, ...]) -> dict[str, tuple[float, ...]]:
    """``task=l1,l2`` strings -> {task: levels}; UsageError on anything malformed."""
    import tasks as task_registry

    out: dict[str, tuple[float, ...]] = {}
    for spec in specs:
        for part in spec.split(";"):
            if not part.strip():
                continue
            if "=" not in part:
                raise UsageError(f"malformed --levels {part!r}: expected task=level1,level2 (e.g. inpaint=0.05,0.2)")
            name, values = part.split("=", 1)
            name = name.strip()
            if name not in tasks:
                raise UsageError(f"--levels names task {name!r}, which is not in --tasks ({', '.join(tasks)})")
            try:
                levels = tuple(float(v) for v in values.split(",") if v.strip())
            except ValueError:
                raise UsageError(f"malformed --levels {part!r}: levels must be numbers") from None
            if not levels:
                raise UsageError(f"--levels {part!r} lists no level")
            t = task_registry.get(name)
            for lv in levels:
                try:
                    t.validate_level(lv)
                except ValueError as err:
                    raise UsageError(f"--levels {name}={lv}: {err}") from None
            out[name] = levels
    return out


def validate_names(kind: str, names: list[str], valid: list[str]) -> tuple[str, ...]:
    bad = [n for n in names if n not in valid]
    if bad:
        raise UsageError(f"unknown {kind} {', '.join(map(repr, bad))}; valid {kind}s: {', '.join(valid)}")
    if not names:
        raise UsageError(f"no {kind} given; valid {kind}s: {', '.join(valid)}")
    return tuple(names)


def levels_for(cfg: SweepConfig, task: str) -> tuple[float, ...]:
    import tasks as task_registry

    if task in cfg.levels:
        return cfg.levels[task]
    from bench.priors.catalog import prior_world

    t = task_registry.get(task)
    if prior_world(cfg.prior) == "ffhq":
        return tuple(t.ffhq_levels)
    return QUICK_LEVELS.get(task, tuple(t.default_levels)[:3])


# ----------------------------------------------------------------------------- planning
def scale_steps(params: dict, scale: float) -> dict:
    """Multiply the ``steps`` entry (an int or one int per round) by ``scale`` (at least 1 step)."""
    if scale == 1.0 or "steps" not in params:
        return params
    s = params["steps"]
    scaled = max(1, round(s * scale)) if isinstance(s, (int, float)) else [max(1, round(v * scale)) for v in s]
    return {**params, "steps": scaled}


def plan_tune(cfg: SweepConfig) -> list[Cell]:
    import methods as method_registry
    from bench.priors.catalog import get_spec

    scale = get_spec(cfg.prior).grid_scale
    cells = []
    for task in cfg.tasks:
        for level in levels_for(cfg, task):
            for m in cfg.methods:
                for i, p in enumerate(method_registry.get(m).grid(scale)):
                    cells.append(Cell(cfg.name, "tune", cfg.prior, task, float(level), m,
                                      scale_steps(p.to_dict(), cfg.steps_scale), "tune",
                                      tuple(range(8)), seed=cfg.seed, variant=f"grid{i}"))
    return cells


def _ilo_paper_params(cfg: SweepConfig) -> dict:
    import methods as method_registry
    from bench.priors.catalog import get_spec, prior_world

    p = method_registry.get("ilo").presets()["ilo_paper"]
    scale = cfg.ilo_paper_steps_scale
    if scale is None:
        scale = 1.0 if prior_world(cfg.prior) == "ffhq" else 0.075

    # a shallower generator than FFHQ's has fewer layers to start rounds at: keep the first rounds
    n_rounds = min(len(p.steps), get_spec(cfg.prior).n_layers)
    steps = tuple(max(1, round(s * scale)) for s in p.steps[:n_rounds])
    return scale_steps(dataclasses.replace(p, steps=steps).to_dict(), cfg.steps_scale)


def plan_eval(cfg: SweepConfig, store: ResultStore) -> tuple[list[Cell], list[str]]:
    """Eval cells from the stored tuning results; also returns (task, level, method)s still untuned."""
    import pandas as pd

    from bench.collect import select_best

    rows = [r for r in store.rows() if r["stage"] == "tune" and r["sweep"] == cfg.name]
    chosen = select_best(pd.DataFrame(rows)) if rows else pd.DataFrame()
    lookup = {}
    for _, r in chosen.iterrows():
        lookup[(r["task"], float(r["level"]), r["method"])] = json.loads(r["params"])
    cells, missing = [], []
    n_test = cfg.n_test
    batches = chunked(list(range(n_test)), cfg.eval_batch)
    for task in cfg.tasks:
        for level in levels_for(cfg, task):
            for m in cfg.methods:
                key = (task, float(level), m)
                if key not in lookup:
                    missing.append(f"{task}@{level}/{m}")
                    continue
                variants = [("tuned", lookup[key])]
                if m == "ilo":
                    variants.append(("ilo_paper", _ilo_paper_params(cfg)))
                for variant, params in variants:
                    for b in batches:
                        cells.append(Cell(cfg.name, "eval", cfg.prior, task, float(level), m, params, "test",
                                          tuple(b), seed=cfg.seed, variant=variant))
    return cells, missing


# ----------------------------------------------------------------------------- running
def _progress_printer(stage: str):
    start = time.time()
    last = [0.0]

    def show(s: dict[str, int]) -> None:
        now = time.time()
        if now - last[0] < 1.0 and s["done"] < s["total"]:
            return
        last[0] = now
        line = (f"\r[{stage}] {s['done']}/{s['total']} cells done, {s['failed']} failed, {s['running']} running "
                f"({now - start:.0f} s)")
        sys.stderr.write(line + ("\n" if s["done"] >= s["total"] else ""))
        sys.stderr.flush()

    return show


def resolve_wandb(mode: str) -> str:
    if mode != "auto":
        return mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def run_stage(cfg: SweepConfig, stage: str, cells: list[Cell], store: ResultStore, executor: str) -> dict[str, int]:
    store.write_plan(cells, meta={"stage": stage, "config": config_dict(cfg)}, name=f"plan_{stage}.json")
    return execute(cells, store, executor, workers=cfg.workers, chunk_size=cfg.chunk_size,
                   max_attempts=cfg.max_attempts, wandb_mode=resolve_wandb(cfg.wandb), slurm=cfg.slurm,
                   progress=_progress_printer(stage))


def config_dict(cfg: SweepConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["out"] = str(cfg.out)
    return d


def describe_plan(cfg: SweepConfig, executor: str, tune: list[Cell], eval_cells: list[Cell] | None) -> str:
    from collections import Counter

    lines = [f"sweep {cfg.name!r}: prior={cfg.prior}, executor={executor}, out={cfg.out}, seed={cfg.seed}",
             f"tasks/levels: " + "; ".join(f"{t}={','.join(str(l) for l in levels_for(cfg, t))}" for t in cfg.tasks),
             f"methods: {', '.join(cfg.methods)}",
             f"tune stage: {len(tune)} cells ({len(tune) * 8} image-runs), "
             f"per method: {dict(Counter(c.method for c in tune))}"]
    if eval_cells is not None:
        lines.append(f"eval stage: {len(eval_cells)} cells on {cfg.n_test} test images (batches of {cfg.eval_batch})")
    else:
        n_per = len(chunked(list(range(cfg.n_test)), cfg.eval_batch))
        n_eval = sum(len(levels_for(cfg, t)) for t in cfg.tasks) * (len(cfg.methods) + ("ilo" in cfg.methods)) * n_per
        lines.append(f"eval stage: {n_eval} cells, planned after tuning from the chosen hyperparameters")
    jobs = len(chunked(tune, cfg.chunk_size))
    if executor == "slurm":
        s = cfg.slurm
        lines.append(f"slurm: {jobs} array tasks for tuning (chunk {cfg.chunk_size} cells), partition={s.partition or 'default'}, "
                     f"gpus/node={s.gpus_per_node}, cpus={s.cpus_per_task}, mem={s.mem_gb} GB, time={s.timeout_min} min, "
                     f"account={s.account or '-'}")
    else:
        lines.append(f"local: {cfg.workers} worker processes, {jobs} chunks")
    lines.append(f"wandb: {resolve_wandb(cfg.wandb)}")
    return "\n".join(lines)


def _sbatch_line(cfg: SweepConfig, n_cells: int, path: Path) -> str:
    n_chunks = max(1, -(-n_cells // cfg.chunk_size))
    gres = "" if cfg.slurm.gpus_per_node else " --gres=none"
    return f"CHUNK_SIZE={cfg.chunk_size} sbatch{gres} --array=0-{n_chunks - 1} slurm/grid.sh {path}"


def run_sweep(cfg: SweepConfig, dry_run: bool = False, plan_only: str | None = None) -> int:
    from bench.priors.catalog import missing_assets
    from bench.runner import score_layers

    store = ResultStore(cfg.out)
    executor = resolve_executor(cfg.executor)
    tune = plan_tune(cfg)
    missing = missing_assets(cfg.prior, score_layers(tune))
    if dry_run:
        eval_cells = None
        if all(store.is_done(c) for c in tune) and tune:
            eval_cells, _ = plan_eval(cfg, store)
        print(describe_plan(cfg, executor, tune, eval_cells))
        if missing:
            print(f"\nmissing for prior {cfg.prior!r} (the sweep would stop):\n  - " + "\n  - ".join(missing))
        return 0
    if missing:
        print(f"cannot run prior {cfg.prior!r}; missing:\n  - " + "\n  - ".join(missing), file=sys.stderr)
        return 2
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.json").write_text(json.dumps(config_dict(cfg), indent=1, default=str))
    if plan_only == "tune":
        path = store.write_plan(tune, meta={"stage": "tune", "config": config_dict(cfg)}, name="plan_tune.json")
        print(f"wrote {path} ({len(tune)} cells): {_sbatch_line(cfg, len(tune), path)}")
        return 0
    if plan_only == "eval":
        eval_cells, untuned = plan_eval(cfg, store)
        if untuned:
            print(f"tuning results missing for {len(untuned)} (task, level, method): {', '.join(untuned[:6])}...; "
                  f"run the tune stage first", file=sys.stderr)
            return 2
        path = store.write_plan(eval_cells, meta={"stage": "eval", "config": config_dict(cfg)}, name="plan_eval.json")
        print(f"wrote {path} ({len(eval_cells)} cells): {_sbatch_line(cfg, len(eval_cells), path)}")
        return 0

    print(describe_plan(cfg, executor, tune, None), file=sys.stderr)
    t0 = time.time()
    counts = run_stage(cfg, "tune", tune, store, executor)
    eval_cells, untuned = plan_eval(cfg, store)
    if untuned:
        print(f"warning: no successful tuning result for {', '.join(untuned)}; skipped in eval", file=sys.stderr)
    counts_eval = run_stage(cfg, "eval", eval_cells, store, executor)
    from bench.collect import collect

    outputs = collect(cfg.out)
    if resolve_wandb(cfg.wandb) != "disabled":
        from bench.wandb_log import log_summary

        log_summary(cfg.out, mode=resolve_wandb(cfg.wandb))
    print(f"\ndone in {time.time() - t0:.0f} s: tune {counts}, eval {counts_eval}")
    for name, path in outputs.items():
        print(f"  {name}: {path}")
    return 0


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="inpaint,cs", help="comma-separated task names (default: inpaint,cs)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated method names")
    p.add_argument("--levels", action="append", default=[], metavar="TASK=L1,L2",
                   help="levels per task, e.g. --levels inpaint=0.02,0.1 (repeatable; default: a quick grid)")
    p.add_argument("--prior", default="embedded",
                   help="embedded (default), ffhq (rosinality .pt), ffhq-ada (NVIDIA ffhq.pkl), or tiny (tests only)")
    p.add_argument("--executor", default="auto", choices=["auto", "slurm", "local", "debug"],
                   help="auto: slurm when a controller answers `scontrol ping`, else local worker processes")
    p.add_argument("--wandb", default="auto", choices=["auto", "online", "offline", "disabled"],
                   help="auto: online with WANDB_API_KEY set, else offline (sync later with `wandb sync`)")
    p.add_argument("--out", default=None, help="sweep folder (default: runs/<prior>-<tasks>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-test", type=int, default=30, help="held-out test images (default 30)")
    p.add_argument("--eval-batch", type=int, default=10, help="test images per eval cell")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="local worker processes")
    p.add_argument("--chunk-size", type=int, default=None, help="cells per job (default: 1 local, 8 slurm)")
    p.add_argument("--max-attempts", type=int, default=2, help="tries per cell before it is recorded as failed")
    p.add_argument("--ilo-paper-steps-scale", type=float, default=None,
                   help="scale of the ILO paper schedule (300,300,300,100) for the ilo_paper variant "
                        "(default 0.075 on the embedded prior, i.e. 74 steps, 1 on FFHQ)")
    p.add_argument("--steps-scale", type=float, default=1.0,
                   help="multiply every method's step counts (e.g. 0.1 for a quick smoke run)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan and exit")
    p.add_argument("--plan-only", choices=["tune", "eval"], help="write plan_<stage>.json for slurm/grid.sh and exit")
    add_slurm_arguments(p)
    return p


def config_from_args(a: argparse.Namespace) -> SweepConfig:
    import methods as method_registry
    import tasks as task_registry
    from bench.priors.catalog import prior_names

    task_names = validate_names("task", [t.strip() for t in a.tasks.split(",") if t.strip()], task_registry.names())
    method_names = validate_names("method", [m.strip() for m in a.methods.split(",") if m.strip()], method_registry.names())
    if a.prior not in prior_names():
        raise UsageError(f"unknown prior {a.prior!r}; valid priors: {', '.join(prior_names())}")
    levels = parse_levels(a.levels, task_names)
    out = Path(a.out) if a.out else Path("runs") / f"{a.prior}-{'-'.join(task_names)}"
    executor = a.executor
    chunk = a.chunk_size or (8 if resolve_executor(executor) == "slurm" else 1)
    slurm = slurm_config_from_args(a, a.prior)
    return SweepConfig(task_names, method_names, levels, a.prior, out, a.seed, a.n_test, a.eval_batch, executor,
                       a.workers, chunk, a.max_attempts, a.wandb, a.ilo_paper_steps_scale, a.steps_scale, slurm)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        cfg = config_from_args(a)
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run_sweep(cfg, dry_run=a.dry_run, plan_only=a.plan_only)


if __name__ == "__main__":
    sys.exit(main())
