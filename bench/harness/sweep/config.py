"""The sweep's configuration: a plain dataclass, resolved once from the world of its prior."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from bench.harness.cli import ExecutionOptions, UsageError
from bench.harness.sweep.profiles import QUICK_METHODS as DEFAULT_METHODS  # noqa: E402


@dataclass
class SweepConfig:
    """Everything a sweep needs, world-specific values already resolved (see :func:`resolve`)."""

    tasks: tuple[str, ...]
    levels: dict[str, tuple[float, ...]]  # every task's levels, hardest first
    methods: tuple[str, ...] = DEFAULT_METHODS
    prior: str = "embedded"
    out: Path = Path("runs/sweep")
    seeds: tuple[int, ...] = (0,)  # replicates: each seed is tuned and evaluated on its own (operator + init draws)
    profile: str = "quick"  # "quick": the world's small grids; "paper": PAPER_PROFILE (bench/harness/sweep/profiles.py)
    tune_count: int = 8  # tuning images (the world's)
    n_test: int = 30
    eval_batch: int = 10
    grid_key: str = "embedded"  # which built-in method grids (Method.grid)
    grids: dict[str, list[dict]] = field(default_factory=dict)  # method -> grid replacing the built-in one
    ilo_paper_steps_scale: float = 1.0  # scale of the ILO paper schedule for the "ilo_paper" variant
    n_layers: int = 4  # rounds of the ILO paper schedule kept: the generator's depth or the world's cap
    steps_scale: float = 1.0  # multiplies every method's step counts (quick smoke runs)
    objective: str = "ours"  # "official": every grid point in its method's official mode (Method.official)
    data: dict[str, str] = field(default_factory=dict)  # fingerprints of weights and images (catalog.data_identity)
    allow_no_lpips: bool = False  # run a world that requires LPIPS without its backbone file (LPIPS "unavailable")
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)

    @property
    def name(self) -> str:
        return self.out.name

    @property
    def seed(self) -> int:
        """The first replicate's seed."""
        return self.seeds[0]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        return d

    def identity(self) -> dict:
        """What makes two sweeps the same sweep: everything but where and how the cells run (JSON round-tripped,
        so it compares equal to a stored config.json)."""
        import json

        d = self.to_dict()
        for k in ("execution", "out", "allow_no_lpips"):
            d.pop(k)
        return json.loads(json.dumps(d, default=str))


def stored_identity(stored: dict) -> dict:
    """The identity part of a stored config.json (older sweeps stored execution options at the top level)."""
    return {k: v for k, v in stored.items() if k not in ("execution", "out", "slurm", "executor", "workers",
                                                         "chunk_size", "max_attempts", "wandb", "allow_no_lpips")}


def dict_differences(old: dict, new: dict) -> list[str]:
    """Human-readable ``key: stored ..., now ...`` lines for the keys whose values differ (empty: equal)."""
    return [f"{k}: stored {old.get(k, '(absent)')!r}, now {new.get(k, '(absent)')!r}"
            for k in sorted(set(new) | set(old)) if old.get(k) != new.get(k)]


def identity_differences(stored: dict, cfg: SweepConfig) -> list[str]:
    """Human-readable differences between a stored config.json and ``cfg`` (empty: the same sweep)."""
    return dict_differences(stored_identity(stored), cfg.identity())


def validate_levels(task: str, levels: tuple[float, ...]) -> tuple[float, ...]:
    import tasks as task_registry

    t = task_registry.get(task)
    for lv in levels:
        try:
            t.validate_level(lv)
        except ValueError as err:
            raise UsageError(f"--levels {task}={lv}: {err}") from None
    return levels


def resolve(tasks: tuple[str, ...], prior: str = "embedded", *,
            levels: Mapping[str, tuple[float, ...]] | None = None, n_test: int | None = None,
            ilo_paper_steps_scale: float | None = None, out: Path | None = None, objective: str | None = None,
            profile: str = "quick", seeds: tuple[int, ...] | None = None, methods: tuple[str, ...] | None = None,
            grid_overrides: dict[str, dict[str, list]] | None = None, **options) -> SweepConfig:
    """A SweepConfig with the world's defaults filled in: levels of the tasks not in ``levels``,
    tuning count, grids (the world's, then ``grid_overrides`` from --grid/--grid-file), ILO-paper scale,
    depth, objective; ``options`` are the remaining SweepConfig fields."""
    import tasks as task_registry
    from bench.harness.sweep.profiles import PROFILES
    from bench.priors.catalog import data_identity, get_spec

    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    prof = PROFILES[profile]
    spec = get_spec(prior)
    world = spec.world
    given = dict(levels or {})
    resolved = {t: tuple(given[t]) if t in given else world.levels(t, task_registry.get(t).default_levels, profile)
                for t in tasks}
    grid_key = prof.grid_key or world.grid_key
    methods = tuple(methods) if methods else prof.methods
    grids = {m: [dict(p) for p in g] for m, g in world.grids.items()} if prof.grid_key is None else {}
    if grid_overrides:
        from bench.harness.grids import expand_grids

        grids.update(expand_grids(grid_overrides, methods, grid_key, grids))
    if ilo_paper_steps_scale is None:
        ilo_paper_steps_scale = world.ilo_paper_steps_scale if prof.ilo_paper_steps_scale is None \
            else prof.ilo_paper_steps_scale
    return SweepConfig(
        tasks=tuple(tasks), levels=resolved, prior=prior, methods=methods, profile=profile,
        seeds=tuple(seeds) if seeds else prof.seeds,
        out=out if out is not None else Path("runs") / (f"{prior}-{'-'.join(tasks)}" + ("-paper" if profile == "paper" else "")),
        tune_count=world.tune_count, n_test=n_test if n_test is not None else world.test_count,
        grid_key=grid_key, grids=grids, ilo_paper_steps_scale=ilo_paper_steps_scale,
        n_layers=min(spec.n_layers, world.ilo_paper_rounds or spec.n_layers), data=data_identity(prior),
        objective=objective or world.objective, **options)
