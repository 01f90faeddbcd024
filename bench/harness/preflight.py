"""Everything a sweep's cells need, checked once before the first cell (and in --dry-run): option
ranges, every level against the world's image size and channels, image counts, the prior's files
(loaded once, so a corrupt or mis-shaped checkpoint is reported here, not in every cell), and the
score models its SGILO cells need. Each problem is one line saying what is wrong and what to do."""
from __future__ import annotations

from bench.harness.runner import Cell


def option_problems(cfg) -> list[str]:
    ex = cfg.execution
    checks = [("--n-test", cfg.n_test, cfg.n_test >= 1), ("--eval-batch", cfg.eval_batch, cfg.eval_batch >= 1),
              ("--workers", ex.workers, ex.workers >= 1), ("--max-attempts", ex.max_attempts, ex.max_attempts >= 1),
              ("--chunk-size", ex.chunk_size, ex.chunk_size is None or ex.chunk_size >= 1)]
    out = [f"{flag} must be >= 1, got {value}" for flag, value, ok in checks if not ok]
    for flag, value in (("--steps-scale", cfg.steps_scale), ("--ilo-paper-steps-scale", cfg.ilo_paper_steps_scale)):
        if not value > 0:
            out.append(f"{flag} must be > 0, got {value}")
    for task, levels in cfg.levels.items():
        dup = sorted({lv for lv in levels if levels.count(lv) > 1})
        if dup:
            out.append(f"--levels {task}: {', '.join(map(str, dup))} given twice; list each level once")
    return out


def level_problems(cfg) -> list[str]:
    """Build every (task, level) operator on the world's image shape: a level the images cannot take
    (superres 3 on 32-pixel images, inpaint 1e-6, colorize on grayscale) is reported here."""
    import tasks as task_registry
    from bench.priors.catalog import get_world

    shape = get_world(cfg.prior).image_shape
    out = []
    for task in cfg.tasks:
        for level in cfg.levels[task]:
            try:
                task_registry.get(task).build(level, shape, seed=0)
            except ValueError as err:
                out.append(f"{task}={level} on the {cfg.prior} images {tuple(shape)}: {err}")
    return out


def image_problems(cfg) -> list[str]:
    from bench.priors.catalog import count_images, get_world

    if get_world(cfg.prior).missing_images():
        return []  # reported with the missing files
    out = []
    for image_set, need, flag in (("tune", cfg.tune_count, "the protocol"), ("test", cfg.n_test, "--n-test")):
        try:
            have = count_images(cfg.prior, image_set)
        except Exception as err:  # noqa: BLE001 - a folder that cannot be read is a problem to report, not a crash
            out.append(f"the {image_set} images of {cfg.prior!r} cannot be read: {err}")
            continue
        if have < need:
            out.append(f"{flag} needs {need} {image_set} images but {cfg.prior!r} has {have}; "
                       + ("add images to its folder" if flag == "the protocol" else f"use --n-test {have} or fewer"))
    return out


def score_problems(prior: str, cells: list[Cell]) -> list[str]:
    """SGILO cells whose rounds need a layer's score model the prior does not have (files the prior takes
    from the cache are reported with the missing files instead)."""
    from bench.harness.runner import score_layers
    from bench.priors.catalog import get_spec

    spec = get_spec(prior)
    need = score_layers(cells) - set(spec.score_assets)
    have = {int(p.stem.removeprefix("score_layer")) for p in spec.score_dir().glob("score_layer*.pt")} \
        if spec.score_dir is not None else set()
    lacking = sorted(need - have)
    if not lacking:
        return []
    return [f"SGILO grid points need score models of layers {lacking} but prior {prior!r} has "
            f"{sorted(have) or 'none'}: train them (python -m bench.scores) or run without sgilo"]


def prior_problems(prior: str) -> list[str]:
    """Load the prior once (weights read and checked), so a bad file stops the sweep before any cell."""
    from bench.priors.catalog import load_prior

    try:
        load_prior(prior, "cpu")
    except Exception as err:  # noqa: BLE001 - any loading error is reported with its message
        return [f"prior {prior!r} cannot be loaded: {type(err).__name__}: {err}"]
    return []


def sweep_problems(cfg, tune: list[Cell], load: bool = True) -> list[str]:
    """Every problem found (empty: ready to run); ``load=False`` skips loading the prior's weights."""
    return (option_problems(cfg) + level_problems(cfg) + image_problems(cfg) + score_problems(cfg.prior, tune)
            + (prior_problems(cfg.prior) if load else []))
