"""The paper profile (issue 16): grids, controls, seeds as replicates tuned on their own, its cost line."""
from __future__ import annotations

import json

import pytest

import methods
from bench.harness.store import ResultStore
from bench.harness.sweep.cli import main
from bench.harness.sweep.config import resolve
from bench.harness.sweep.plan import method_grid, plan_eval, plan_tune
from methods.sgilo import langevin_noise


def test_paper_profile_grids_controls_and_seeds():
    cfg = resolve(("inpaint",), "embedded", profile="paper")
    assert cfg.seeds == (0, 1, 2) and "sgilo_t0" in cfg.methods and cfg.ilo_paper_steps_scale == 1.0
    for m in cfg.methods:
        grid = method_grid(cfg, m)
        assert len({json.dumps(p, sort_keys=True) for p in grid}) >= 6, m  # at least 6 distinct points
        for p in grid:  # 300-step rounds, no more rounds than the world's cap
            steps = p["steps"]
            assert (steps == 900) if m == "csgm" else (list(steps) == [300] * cfg.n_layers), (m, steps)
    sg = method_grid(cfg, "sgilo")
    temps = sorted({p["temperature"][1] for p in sg})
    assert temps == [0.1, 0.3, 1.0] and all(p["temperature"][1] == p["temperature"][2] for p in sg)
    assert all(p["noise_temp"] == pytest.approx(langevin_noise(p["temperature"][1])) for p in sg)
    assert langevin_noise(0.1) == 0.025 and langevin_noise(1.0) == pytest.approx(0.025 * 10 ** 0.5)
    assert {p["init"] for p in sg} == {"ones", "randn"}  # both optimisation setups
    t0 = method_grid(cfg, "sgilo_t0")
    assert all(set(p["temperature"]) == {0.0} for p in t0)
    # the control differs from SGILO only in what it is a control for (and the latent noise it is tuned over)
    setups = lambda g: {(p["init"], tuple(p["lr"]), p["lr_schedule"], p["geocross"]) for p in g}  # noqa: E731
    assert setups(t0) == setups(sg)
    cells = plan_tune(cfg)
    assert {c.seed for c in cells} == {0, 1, 2} and len(cells) == 3 * len(cfg.levels["inpaint"]) * (sum(
        len(method_grid(cfg, m)) for m in cfg.methods) + 1)  # + the ILO paper schedule on the tuning images


def test_sgilo_t0_refuses_a_temperature():
    import tasks
    from bench.priors.catalog import load_prior
    from bench.priors.tiny import tiny_images
    from methods._core import Problem

    prior = load_prior("tiny")
    op = tasks.get("inpaint").build(0.3, prior.image_shape, seed=0)
    x, _ = tiny_images("test")
    m = methods.get("sgilo_t0")
    with pytest.raises(ValueError, match="temperature 0"):
        m.solve(Problem(op(x[:1]), op, [1]), prior, m.Params(temperature=(0.0, 0.1)))


def test_each_seed_is_tuned_on_its_own(tmp_path):
    """Two seeds: each seed's eval cells use the params that won on that seed's tuning rows."""
    out = tmp_path / "s"
    args = ["--prior", "tiny", "--tasks", "inpaint", "--levels", "inpaint=0.3", "--methods", "csgm,ilo_unreg",
            "--n-test", "2", "--wandb", "disabled", "--steps-scale", "0.1", "--executor", "debug", "--out", str(out),
            "--seeds", "0,1"]
    assert main(args) == 0
    rows = ResultStore(out).rows()
    assert {(r["stage"], r["seed"]) for r in rows} == {("tune", 0), ("tune", 1), ("eval", 0), ("eval", 1)}
    import pandas as pd

    tune = pd.DataFrame([r for r in rows if r["stage"] == "tune"])
    for seed in (0, 1):
        for m in ("csgm", "ilo_unreg"):
            t = tune[(tune.seed == seed) & (tune.method == m)].groupby("params")["mse"].mean()
            chosen = {r["params"] for r in rows if r["stage"] == "eval" and r["seed"] == seed and r["method"] == m}
            assert chosen == {t.idxmin()}, (seed, m)
    cfg = resolve(("inpaint",), "tiny", levels={"inpaint": (0.3,)}, methods=("csgm", "ilo_unreg"), out=out,
                  seeds=(0, 1), n_test=2, steps_scale=0.1)
    cells, missing = plan_eval(cfg, ResultStore(out))
    assert not missing and {c.seed for c in cells} == {0, 1}


def test_dry_run_states_the_cost(capsys):
    assert main(["--profile", "paper", "--tasks", "inpaint", "--dry-run", "--executor", "local"]) == 0
    out = capsys.readouterr().out
    assert "profile=paper" in out and "seeds=0,1,2" in out and "M image-steps to tune" in out
    assert main(["--seed", "1", "--seeds", "0,1", "--dry-run"]) == 2


def test_progress_clause_prices_what_is_left_at_the_finished_cells_median_rate(tmp_path):
    """Hours left from the finished cells' own rates (per method, median: an outlier that ran while the machine
    was paused does not move it), not from the world's single figure."""
    from bench.core.io import atomic_write_json
    from bench.harness.runner import Cell
    from bench.harness.sweep.plan import image_steps, progress_clause

    def cell(method: str, i: int) -> Cell:
        return Cell("s", "tune", "tiny", "inpaint", 0.3, method, {"steps": [100, 100]}, "tune", (2 * i, 2 * i + 1))

    store = ResultStore(tmp_path)
    ilo = [cell("ilo", i) for i in range(5)]
    sg = [cell("sgilo", i) for i in range(3)]
    assert image_steps(ilo[0]) == 400 and progress_clause(store, ilo + sg, 2) == ""
    for c, per_row in zip(ilo[:3], (0.2, 0.4, 50.0)):  # per cell 0.4, 0.8, 100 s: 1, 2, 250 ms per image-step
        atomic_write_json(store.record_path(c), {"cell": c.to_dict(), "status": "ok",
                                                 "rows": [{"seconds": per_row}, {"seconds": per_row}]})
    atomic_write_json(store.record_path(sg[0]), {"cell": sg[0].to_dict(), "status": "failed",
                                                 "rows": [{"seconds": 1e6}, {"seconds": 1e6}]})
    text = progress_clause(store, ilo + sg, 2)
    # left: 2 ilo + 2 sgilo cells of 400 image-steps; no finished sgilo cell, so it takes the median over all
    # (2 ms); ilo's median is 2 ms, not the mean (84 ms): 1600 image-steps x 2 ms = 3.2 s
    assert text.startswith("progress: 4/8 cells done; the other 4 (0.00M image-steps)") and "(ilo 2.00)" in text
    assert progress_clause(store, ilo, 1).endswith("~0.0 h with 1 worker(s) as they ran")
    atomic_write_json(store.record_path(sg[1]), {"cell": sg[1].to_dict(), "status": "ok",
                                                 "rows": [{"seconds": 3600.0}, {"seconds": 3600.0}]})
    text = progress_clause(store, ilo + sg, 2)  # sgilo now 18 s per image-step: 1 cell left = 2 worker-hours
    assert "sgilo 18000.00" in text and "take ~2.0 worker-hours" in text and "~1.0 h with 2 worker(s)" in text
