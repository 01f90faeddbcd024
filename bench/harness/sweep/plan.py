"""Planning: the tuning cells of a sweep, and its evaluation cells from the stored tuning
results (selection by bench.report.stats.select_best, on the tuning images only)."""
from __future__ import annotations

import dataclasses
import json
import statistics
from collections import Counter

from bench.harness.execution import chunked
from bench.harness.runner import Cell
from bench.harness.store import ResultStore
from bench.harness.sweep.config import SweepConfig
from bench.report.stats import ILO_PAPER_VARIANT


def scale_steps(params: dict, scale: float) -> dict:
    """Multiply the ``steps`` entry (an int or one int per round) by ``scale`` (at least 1 step)."""
    if scale == 1.0 or "steps" not in params:
        return params
    s = params["steps"]
    scaled = max(1, round(s * scale)) if isinstance(s, (int, float)) else [max(1, round(v * scale)) for v in s]
    return {**params, "steps": scaled}


def method_grid(cfg: SweepConfig, method: str) -> list[dict]:
    """The tuning grid of ``method`` in this sweep's world, as plain dicts (defaults filled in)."""
    import methods as method_registry

    m = method_registry.get(method)
    grid = [m.params_from_dict(p) for p in cfg.grids[method]] if method in cfg.grids else m.grid(cfg.grid_key)
    return [truncate_rounds(in_objective(cfg, method, p).to_dict(), cfg.n_layers) for p in grid]


def truncate_rounds(params: dict, n_rounds: int) -> dict:
    """Keep the first ``n_rounds`` rounds of a per-round ``steps`` schedule (the world's depth cap: a round
    starting at a deeper layer would optimise a state outside the regime the world is built for)."""
    steps = params.get("steps")
    if isinstance(steps, (list, tuple)) and len(steps) > n_rounds:
        return {**params, "steps": list(steps)[:n_rounds]}
    return params


def in_objective(cfg: SweepConfig, method: str, params):
    """``params`` in the sweep's objective: unchanged for "ours", the method's official mode for "official"."""
    import methods as method_registry

    return method_registry.get(method).official(params) if cfg.objective == "official" else params


def plan_tune(cfg: SweepConfig) -> list[Cell]:
    cells = []
    tune_images = tuple(range(cfg.tune_count))
    grids = {m: method_grid(cfg, m) for m in cfg.methods}
    for seed in cfg.seeds:
        for task in cfg.tasks:
            for level in cfg.levels[task]:
                for m in cfg.methods:
                    for i, p in enumerate(grids[m]):
                        cells.append(Cell(cfg.name, "tune", cfg.prior, task, float(level), m,
                                          scale_steps(p, cfg.steps_scale), "tune", tune_images, seed=seed,
                                          variant=f"grid{i}"))
                    if m == "ilo":  # the ILO paper schedule on the tuning images: the composite ILO selects on them
                        cells.append(Cell(cfg.name, "tune", cfg.prior, task, float(level), m, ilo_paper_params(cfg),
                                          "tune", tune_images, seed=seed, variant=ILO_PAPER_VARIANT))
    return cells


def ilo_paper_params(cfg: SweepConfig) -> dict:
    """ILO with the ILO paper's schedule (300, 300, 300, 100) scaled by the world's factor and
    truncated to the generator's depth (a shallower generator has fewer layers to start rounds at)."""
    import methods as method_registry

    p = method_registry.get("ilo").presets()["ilo_paper"]
    n_rounds = min(len(p.steps), cfg.n_layers)
    steps = tuple(max(1, round(s * cfg.ilo_paper_steps_scale)) for s in p.steps[:n_rounds])
    return scale_steps(in_objective(cfg, "ilo", dataclasses.replace(p, steps=steps)).to_dict(), cfg.steps_scale)


def _chosen_params(cfg: SweepConfig, store: ResultStore) -> dict[tuple[int, str, float, str], dict]:
    """(seed, task, level, method) -> the params chosen on that seed's tuning images."""
    import pandas as pd

    from bench.report.stats import select_best

    rows = [r for r in store.rows() if r["stage"] == "tune" and r["sweep"] == cfg.name]
    chosen = select_best(pd.DataFrame(rows)) if rows else pd.DataFrame()
    return {(int(r.get("seed", cfg.seed)), r["task"], float(r["level"]), r["method"]): json.loads(r["params"])
            for _, r in chosen.iterrows()}


def plan_eval(cfg: SweepConfig, store: ResultStore) -> tuple[list[Cell], list[str]]:
    """Eval cells from the stored tuning results; also returns (task, level, method)s still untuned."""
    lookup = _chosen_params(cfg, store)
    cells, missing = [], []
    batches = chunked(list(range(cfg.n_test)), cfg.eval_batch)
    for seed in cfg.seeds:
        for task in cfg.tasks:
            for level in cfg.levels[task]:
                for m in cfg.methods:
                    key = (seed, task, float(level), m)
                    if key not in lookup:
                        missing.append(f"{task}@{level}/{m}" + (f" (seed {seed})" if len(cfg.seeds) > 1 else ""))
                        continue
                    variants = [("tuned", lookup[key])] + ([(ILO_PAPER_VARIANT, ilo_paper_params(cfg))] if m == "ilo" else [])
                    for variant, params in variants:
                        for b in batches:
                            cells.append(Cell(cfg.name, "eval", cfg.prior, task, float(level), m, params, "test",
                                              tuple(b), seed=seed, variant=variant))
    return cells, missing


def count_eval_cells(cfg: SweepConfig) -> int:
    """Eval cells a full tuning will lead to (ILO runs twice: tuned and ILO paper)."""
    n_batches = len(chunked(list(range(cfg.n_test)), cfg.eval_batch))
    n_levels = sum(len(cfg.levels[t]) for t in cfg.tasks)
    return n_levels * (len(cfg.methods) + ("ilo" in cfg.methods)) * n_batches * len(cfg.seeds)


def image_steps(cell: Cell) -> int:
    """Optimisation steps times images of one cell (the unit of the cost estimate; score evaluations aside)."""
    steps = cell.params.get("steps", 0)
    total = sum(steps) if isinstance(steps, (list, tuple)) else int(steps)
    return total * int(cell.params.get("restarts", 1)) * len(cell.image_indices) * max(1, cell.num_samples)


def cost_line(cfg: SweepConfig, tune: list[Cell], executor: str) -> str:
    """Estimated compute of the tuning stage and (from the tuning grids' mean budget) of the eval stage."""
    from bench.priors.catalog import get_world

    world = get_world(cfg.prior)
    tune_steps = sum(image_steps(c) for c in tune)
    per_cell = tune_steps / max(len(tune), 1) / max(cfg.tune_count, 1)
    eval_steps = count_eval_cells(cfg) * per_cell * min(cfg.eval_batch, cfg.n_test)
    gpu = world.slurm_gpus > 0 or executor == "slurm" and cfg.execution.slurm.gpus_per_node > 0
    text = f"cost: {tune_steps / 1e6:.2f}M image-steps to tune, ~{eval_steps / 1e6:.2f}M to evaluate"
    return text + hours_clause(cfg.prior, tune_steps + eval_steps, gpu)


def hours_clause(prior: str, total_image_steps: float, gpu: bool) -> str:
    """"; estimated 3.7 2-core CPU hours at ..." from the world's measured cost per image-step ("" if unknown)."""
    from bench.priors.catalog import get_world

    world = get_world(prior)
    rate, where = ((world.gpu_seconds_per_image_step, "GPU") if gpu and world.gpu_seconds_per_image_step
                   else (world.cpu_seconds_per_image_step, "2-core CPU"))
    if not rate:
        return ""
    return (f"; estimated {total_image_steps * rate / 3600:.1f} {where} hours at {rate * 1000:.2f} ms per "
            "image-step (the world's measured wall-clock figure on one such device; divide by the devices used in parallel)")


def _cell_rate(cell: Cell, record: dict) -> float | None:
    """Wall seconds per image-step of one finished cell: its rows' seconds (each the batch's wall time over its
    size) summed, over the cell's image-steps."""
    steps = image_steps(cell)
    seconds = sum(r.get("seconds") or 0.0 for r in record.get("rows", []))
    return seconds / steps if steps and seconds > 0 else None


def progress_clause(store: ResultStore, cells: list[Cell], workers: int) -> str:
    """"progress: 88/144 cells done; the other 56 ..." with the hours left at the rate the finished cells ran at.

    The world's figure (:func:`hours_clause`) is one measurement on one device; the finished cells of this very run
    measure its own mix of methods, batches and worker contention (on the embedded paper profile with 2 workers on
    2 cores they ran about twice as slow as that figure). Per method, the median over its finished cells: a cell
    that ran while the machine was paused or shared records hours, and the median ignores it. A method with no
    finished cell yet takes the median over all of them. Empty when no cell has finished."""
    rates: dict[str, list[float]] = {}
    left = []
    for c in cells:
        path = store.record_path(c)
        if not path.exists():
            left.append(c)
            continue
        record = json.loads(path.read_text())
        rate = _cell_rate(c, record) if record.get("status") == "ok" else None
        if rate is not None:
            rates.setdefault(c.method, []).append(rate)
    if not rates:
        return ""
    median = {m: float(statistics.median(v)) for m, v in rates.items()}
    overall = float(statistics.median([r for v in rates.values() for r in v]))
    steps = sum(image_steps(c) for c in left)
    worker_hours = sum(image_steps(c) * median.get(c.method, overall) for c in left) / 3600
    per_method = ", ".join(f"{m} {1000 * r:.2f}" for m, r in sorted(median.items()))
    return (f"progress: {len(cells) - len(left)}/{len(cells)} cells done; the other {len(left)} "
            f"({steps / 1e6:.2f}M image-steps) take ~{worker_hours:.1f} worker-hours at the finished cells' median "
            f"ms per image-step per worker ({per_method}), ~{worker_hours / max(workers, 1):.1f} h with "
            f"{workers} worker(s) as they ran")


def describe_plan(cfg: SweepConfig, executor: str, chunk_size: int, wandb: str, tune: list[Cell],
                  eval_cells: list[Cell] | None) -> str:
    lines = [f"sweep {cfg.name!r}: prior={cfg.prior}, profile={cfg.profile}, executor={executor}, out={cfg.out}, "
             f"seeds={','.join(map(str, cfg.seeds))}",
             "tasks/levels: " + "; ".join(f"{t}={','.join(str(lv) for lv in cfg.levels[t])}" for t in cfg.tasks),
             f"methods: {', '.join(cfg.methods)}; objective: {cfg.objective}"
             + (" (each method's official mode, docs/DEVIATIONS.md)" if cfg.objective == "official" else ""),
             f"tune stage: {len(tune)} cells ({len(tune) * cfg.tune_count} image-runs), "
             f"per method: {dict(Counter(c.method for c in tune))}"]
    if eval_cells is not None:
        lines.append(f"eval stage: {len(eval_cells)} cells on {cfg.n_test} test images (batches of {cfg.eval_batch})")
    else:
        lines.append(f"eval stage: {count_eval_cells(cfg)} cells, planned after tuning from the chosen hyperparameters")
    lines.append(cost_line(cfg, tune, executor))
    store = ResultStore(cfg.out)
    for stage, cells in (("tune", tune), ("eval", eval_cells or [])):
        progress = progress_clause(store, cells, cfg.execution.workers if executor == "local" else 1)
        if progress:
            lines.append(f"{stage} {progress}")
    jobs = len(chunked(tune, chunk_size))
    if executor == "slurm":
        s = cfg.execution.slurm
        lines.append(f"slurm: {jobs} array tasks for tuning (chunk {chunk_size} cells), "
                     f"partition={s.partition or 'default'}, gpus/node={s.gpus_per_node}, cpus={s.cpus_per_task}, "
                     f"mem={s.mem_gb} GB, time={s.timeout_min} min, account={s.account or '-'}")
    else:
        lines.append(f"local: {cfg.execution.workers} worker processes, {jobs} chunks")
    lines.append(f"wandb: {wandb}")
    return "\n".join(lines)
