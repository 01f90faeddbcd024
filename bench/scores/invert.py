"""The invert stage: ILO inversions of a world's training images, every pixel observed, keeping the
state after each round's layer. The inverter is ILO-unregularized by default (the installed embedded
priors' data) or ILO with its l1-ball projections (``method="ilo"``: the paper's wording, "we inverted
all images in FFHQ with ILO"; it keeps every state within a radius of the generator's own output).
Each cell inverts a batch of images and saves their states with its record (``Cell.keep_states``), so the stage runs on any executor
(local pool, SLURM arrays, ``slurm/grid.sh``) and resumes after any interruption."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

import methods
import tasks
from bench.core.io import atomic_torch_save, atomic_write_json
from bench.core.seeds import generator
from bench.harness.cli import ExecutionOptions
from bench.harness.execution import chunked
from bench.harness.runner import Cell
from bench.harness.store import ResultStore
from bench.priors.prior import Prior
from methods._core import Problem
from methods._rounds import RoundHook, run_rounds

DEFAULT_STEPS = (60, 60, 60)  # rounds starting at layers 0, 1, 2: optimised states after layers 0 and 1
# methods whose rounds keep the optimised states, with how the plan names them
INVERTERS = {"ilo_unreg": "ILO-unregularized", "ilo": "ILO (l1-ball projections)"}
HELDOUT_FRACTION = 10  # one tenth of the inverted images is held out for evaluation
STATES = "states"  # sub-folder of the store with each cell's saved images and states


@dataclass
class InvertConfig:
    prior: str
    out: Path  # the store: cells/, states/, layer<k>.pt, inversions.json
    n: int = 2000  # training images to invert
    batch: int = 16  # images per cell
    steps: tuple[int, ...] = DEFAULT_STEPS
    lr: float = 0.1
    seed: int = 0
    method: str = "ilo_unreg"  # or "ilo" (l1-ball projections of radius ``radius`` per element)
    radius: float | None = None  # ILO's radius_state; None: the method's default
    execution: ExecutionOptions = field(default_factory=ExecutionOptions)

    def params(self) -> dict[str, object]:
        p: dict[str, object] = {"steps": list(self.steps), "lr": [self.lr]}
        if self.method == "ilo" and self.radius is not None:
            p["radius_state"] = [self.radius]
        return p

    @property
    def name(self) -> str:
        return self.out.name


def train_subset(n_train: int, n: int, seed: int) -> list[int]:
    """A seeded random subset of ``n`` of the ``n_train`` training images (never test images)."""
    if n > n_train:
        raise ValueError(f"asked for {n} inversions but the training set has {n_train} images")
    return torch.randperm(n_train, generator=generator("score-train-subset", seed))[:n].tolist()


def plan_cells(cfg: InvertConfig, n_train: int) -> list[Cell]:
    if cfg.method not in INVERTERS:
        raise ValueError(f"inverter {cfg.method!r}: choose one of {list(INVERTERS)}")
    return [Cell(cfg.name, "invert", cfg.prior, "denoise", 0.0, cfg.method, cfg.params(), "train", tuple(chunk),
                 seed=cfg.seed, variant="invert", save_images=str(cfg.out / STATES), keep_states=True)
            for chunk in chunked(train_subset(n_train, cfg.n, cfg.seed), cfg.batch)]


def _radius(cfg: InvertConfig) -> list[float] | None:
    """The l1-ball radius per element the inverter used (ILO's default when not given); None without one."""
    if cfg.method != "ilo":
        return None
    radius = methods.get("ilo").Params().radius_state if cfg.radius is None else (cfg.radius,)
    return list(radius) if radius is not None else None


def merge_states(cfg: InvertConfig, cells: list[Cell]) -> dict[str, object]:
    """Concatenate the finished cells' states (in plan order) into ``layer<k>.pt`` (training data)
    and ``layer<k>_heldout.pt`` (the last tenth: for the evaluate stage, never trained on), and
    summarise the inversions' MSE in ``inversions.json``; failed cells are left out and counted."""
    store = ResultStore(cfg.out)
    per_layer: dict[int, list[torch.Tensor]] = {}
    mse: list[float] = []
    failed = 0
    for cell in cells:
        path = cfg.out / STATES / f"{cell.key}.pt"
        rec = store.record_path(cell)
        if not rec.exists() or json.loads(rec.read_text())["status"] != "ok" or not path.exists():
            failed += 1
            continue
        blob = torch.load(path, map_location="cpu", weights_only=True)
        for k, v in blob["states"].items():
            per_layer.setdefault(int(k), []).append(v)
        mse += [r["mse"] for r in json.loads(rec.read_text())["rows"]]
    files = {}
    for k, parts in sorted(per_layer.items()):
        states = torch.cat(parts)
        held = len(states) // HELDOUT_FRACTION
        files[k] = atomic_torch_save(states[: len(states) - held].contiguous(), cfg.out / f"layer{k}.pt")
        atomic_torch_save(states[len(states) - held:].contiguous(), cfg.out / f"layer{k}_heldout.pt")
    m = torch.tensor(mse) if mse else torch.empty(0)
    summary = {"prior": cfg.prior, "images": len(mse), "cells_failed": failed, "steps": list(cfg.steps),
               "inverter": cfg.method, "params": cfg.params(), "seed": cfg.seed, "radius_state": _radius(cfg),
               "mse_mean": float(m.mean()) if len(m) else None, "mse_median": float(m.median()) if len(m) else None,
               "files": {f"layer{k}": str(p) for k, p in files.items()}}
    atomic_write_json(cfg.out / "inversions.json", summary, indent=1)
    return summary


def invert_batch(prior: Prior, images: torch.Tensor, seeds: list[int], steps: tuple[int, ...] = DEFAULT_STEPS,
                 lr: float = 0.1) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """ILO-unregularized inversion of fully observed images in this process: ({layer: states}, per-image MSE)
    (the in-range-vs-real figure; the invert stage runs the same inversion as cells)."""
    op = tasks.get("denoise").build(0.0, prior.image_shape, seed=0, device=prior.device)
    problem = Problem(op(images.to(prior.device)), op, seeds, reference=images.to(prior.device))
    params = methods.get("ilo_unreg").Params(steps=steps, lr=(lr,))
    res = run_rounds(problem, prior, params, RoundHook(), keep_states=True)
    layers = sorted(res[0].states)
    states = {k: torch.stack([r.states[k] for r in res]) for k in layers}
    mse = torch.stack([(r.reconstruction - images[i].cpu()).pow(2).mean() for i, r in enumerate(res)])
    return states, mse
