"""A world is one record: a toy world defined here, in the test, runs a sweep end to end with no
edit anywhere else (the architecture's promise, docs/ARCHITECTURE.md)."""
from __future__ import annotations

import json

import torch

from bench.harness.cli import ExecutionOptions
from bench.harness.store import ResultStore
from bench.harness.sweep.config import resolve
from bench.harness.sweep.run import run_sweep
from bench.priors import catalog
from bench.priors.tiny import tiny_images
from bench.priors.world import PriorSpec, World


def _toy_images(image_set: str):
    x, ids = tiny_images(image_set)
    return x[:4], [f"toy-{i}" for i in ids[:4]]  # 4 images per set: a world's sizes are its own


def _toy_prior(device: torch.device):
    return catalog.load_prior("tiny", device)


TOY_WORLD = World("toy", "four tiny samples per set (test only)", _toy_images, (1, 16, 16), tune_count=2, test_count=3,
                  quick_levels={"inpaint": (0.4,)}, grids={"csgm": ({"steps": 3, "lr": 0.1},)},
                  ilo_paper_steps_scale=0.01)
TOY_PRIOR = PriorSpec("toy", "the tiny generator in the toy world (test only)", _toy_prior, TOY_WORLD, n_layers=3,
                      for_results=False)


def test_a_world_defined_in_a_test_runs_a_one_cell_sweep(tmp_path):
    catalog.register_prior(TOY_PRIOR)
    assert catalog.get_world("toy") is TOY_WORLD and "toy" in catalog.world_names()
    cfg = resolve(("inpaint",), "toy", methods=("csgm",), out=tmp_path / "toy-sweep",
                  execution=ExecutionOptions(executor="debug", wandb="disabled"))
    assert cfg.levels == {"inpaint": (0.4,)} and cfg.tune_count == 2 and cfg.n_test == 3
    assert run_sweep(cfg) == 0
    rows = ResultStore(cfg.out).rows()
    tune = [r for r in rows if r["stage"] == "tune"]
    evals = [r for r in rows if r["stage"] == "eval"]
    assert len({r["cell"] for r in tune}) == 1 and len(tune) == 2  # one grid point x the world's 2 tuning images
    assert sorted(r["image_id"] for r in evals) == ["toy-tiny-test-0", "toy-tiny-test-1", "toy-tiny-test-2"]
    assert all(r["status"] == "ok" and r["prior"] == "toy" for r in rows)
    assert json.loads(tune[0]["params"])["steps"] == 3  # the world's grid replaced the method's built-in one
    assert (cfg.out / "report" / "report.md").exists()
