"""Planning the fairness run: its image set and groups, its cells, the files they need."""
from __future__ import annotations

from typing import Sequence

from bench.experiments.fairness.config import Choice, FairnessConfig
from bench.harness.cli import UsageError
from bench.harness.runner import Cell


def fairness_priors() -> list[str]:
    """Priors whose world defines fairness groups."""
    from bench.priors.catalog import get_world, prior_names

    return [p for p in prior_names() if get_world(p).fairness is not None]


def fairness_set(prior: str, limit: int | None = None) -> tuple[list[int], list[int], tuple[str, ...]]:
    """(positions in the prior's "fairness" image set, group index per position, group names).

    The groups come from the prior's world (``World.fairness.groups``): embedded, the manifest's
    Sandal/Sneaker labels; ffhq, the file-name prefix before the first "_" in
    ``$SGILO_BENCH_FFHQ_DIR/fairness`` (e.g. man_00012.png); tiny, first/second half (tests only).
    ``limit`` keeps the first ``limit`` images of each group (smoke runs)."""
    from bench.priors.catalog import get_world

    try:
        world = get_world(prior)
    except KeyError:
        world = None
    if world is None or world.fairness is None:
        raise UsageError(f"prior {prior!r} has no fairness groups; valid priors: {', '.join(fairness_priors())}")
    labels, groups = world.fairness.groups()
    keep: list[int] = []
    for g in range(len(groups)):
        pos = [i for i, lab in enumerate(labels) if lab == g]
        keep += pos[:limit] if limit else pos
    keep.sort()
    return keep, [labels[i] for i in keep], groups


def plan_cells(cfg: FairnessConfig, positions: Sequence[int], choices: dict[tuple[int, str], Choice]) -> list[Cell]:
    """Ordinary superres cells (stage "fairness") that save their reconstructions and samples."""
    import methods as method_registry
    from bench.harness.execution import chunked

    cells = []
    for seed in cfg.seeds:
        for factor in cfg.factors:
            for m in cfg.methods:
                ch = choices[(factor, m)]
                S = cfg.samples if method_registry.get(m).samples_posterior else 1
                for batch in chunked(list(positions), cfg.batch):
                    cells.append(Cell(cfg.name, "fairness", cfg.prior, "superres", float(factor), m, ch.params,
                                      "fairness", tuple(batch), seed=seed, variant=ch.variant, num_samples=S,
                                      save_images=str(cfg.out / "images")))
    return cells



def prior_missing(prior: str, cells: Sequence[Cell] = ()) -> list[str]:
    """Messages for the prior's missing model files, score models the ``cells`` need included
    (its image folders are checked by :func:`fairness_set`: FFHQ needs only fairness/, not the
    sweep's tune/ and test/)."""
    from bench.harness.runner import score_layers
    from bench.priors.catalog import missing_assets

    return missing_assets(prior, score_layers(cells), images=False)


