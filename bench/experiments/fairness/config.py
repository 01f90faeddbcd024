"""The fairness run's configuration and where each method's hyperparameters come from."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.harness.cli import ExecutionOptions
from bench.harness.store import ResultStore

DEFAULT_METHODS = ("ilo", "sgilo", "sgilo_t0")  # sgilo_t0: the control isolating the score prior


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
    seeds: tuple[int, ...] = (0, 1, 2)  # replicates (operator and initialisation draws)
    independent_chains: bool = True  # samplers start every posterior sample from its own latent draw
    classifier: str = "embedded"
    classifier_options: dict = field(default_factory=dict)
    image_side: int | None = None  # the world's image side (factor validation, table headings)
    results: Path | None = None
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)

    @property
    def name(self) -> str:
        return self.out.name

    @property
    def seed(self) -> int:
        return self.seeds[0]


@dataclass(frozen=True)
class Choice:
    """The hyperparameters a method runs with at one factor, and where they come from."""

    params: dict
    source: str  # for the table: "method defaults", "tuned (sweep, superres x4)", ...
    variant: str  # Cell.variant


def sweep_rows(source: Path) -> pd.DataFrame:
    """A sweep's per-image rows: from its store (a run folder with cells/) or from the ``rows.csv`` its
    committed report holds, so a fairness run needs no raw run folder once the sweep's report is in git."""
    if source.is_file():
        return pd.read_csv(source, dtype={"params": str})
    return pd.DataFrame(ResultStore(source).rows())


def tuned_superres(source: Path, prior: str) -> dict[tuple[float, str], dict]:
    """{(level, method): params} chosen by ``bench.report.stats.select_best`` from a sweep's superres
    tuning rows on this prior (noise-free measurements only); empty if it tuned no superres.
    ``source``: a sweep store or a report's ``rows.csv`` (the same rows, the same choice)."""
    from bench.report.stats import select_best

    df = sweep_rows(source)
    if df.empty or not {"stage", "task", "prior"} <= set(df.columns):
        return {}
    df = df[(df["stage"] == "tune") & (df["task"] == "superres") & (df["prior"] == prior)]
    if df.empty:
        return {}
    chosen = select_best(df.reset_index(drop=True))
    out = {}
    for _, r in chosen.iterrows():
        if float(r.get("noise_sigma", 0.0) or 0.0) == 0.0 and r["params"]:
            out[(float(r["level"]), str(r["method"]))] = json.loads(r["params"])
    return out


def choose_params(method: str, factor: int, tuned: dict[tuple[float, str], dict], sweep_name: str,
                  override: dict | None = None, steps_scale: float = 1.0, independent_chains: bool = False) -> Choice:
    """Tuned hyperparameters at this factor, else at the nearest tuned factor (log scale), else
    the method's defaults; then hand overrides and the step scale, each named in ``source``."""
    import methods as method_registry
    from bench.harness.sweep.plan import scale_steps

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
    m = method_registry.get(method)
    if independent_chains and m.samples_posterior and params.get("init", "randn") != "randn":
        # SGILO starts z at ones: every posterior sample would start from the same latent, and majority votes
        # and agreement would measure the optimiser's noise rather than posterior diversity
        params = {**params, "init": "randn"}
        source += ", init randn (an independent start per posterior sample)"
        variant += "+randinit"
    if steps_scale != 1.0:
        params = scale_steps(params, steps_scale)
        source += f", steps x{steps_scale:g}"
        variant += f"+steps{steps_scale:g}"
    method_registry.get(method).params_from_dict(params)  # unknown keys fail here, not in every cell
    return Choice(params, source, variant)


