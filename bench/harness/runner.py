"""The cell runner: the one code path that executes a cell, for the sweep, SLURM and tests.

A cell is (stage, task, level, method, hyperparameters, image batch, seed). Everything random
in it is a pure function of its fields: the operator depends on (task, level, seed) only, so
every method sees the same operator; image i's measurement noise and the method's random
draws depend on (seed, image id) only, so a result never depends on batch-mates or order.
A cell never raises: an exception or a non-finite result becomes a failed row with the reason.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.core.device import get_device
from bench.core.io import atomic_torch_save
from bench.core.seeds import derive_seed, generator


@dataclass(frozen=True)
class Cell:
    sweep: str
    stage: str  # "tune" or "eval"
    prior: str
    task: str
    level: float
    method: str  # registered method name
    params: dict  # hyperparameters as a plain dict (method defaults fill the rest)
    image_set: str  # "tune", "test" or "fairness"
    image_indices: tuple[int, ...]  # positions in the image set
    seed: int = 0
    variant: str = "default"  # label of the hyperparameter setting (grid point, preset, "tuned")
    noise_sigma: float = 0.0  # extra measurement noise on top of the task's own
    num_samples: int = 1  # posterior samples per image (samplers only)
    # Folder where run_cell saves the reconstructions (+ posterior samples) as <folder>/<key>.pt
    # (the fairness table classifies them later); "" saves nothing. An output location, not an input.
    save_images: str = ""
    # Also save the state after each ILO round's layer (float32, ``states`` in the saved file): the
    # training data of layer score priors (bench/scores/). Needs ``save_images``.
    keep_states: bool = False

    @property
    def key(self) -> str:
        """Stable id of the cell: a hash of every field (file names, W&B run ids).

        ``save_images`` and ``keep_states`` are left out at their defaults so the keys of existing
        cells stay unchanged; when set, only the fact that images are saved enters the key, not the
        folder, so a store stays valid when it is moved.
        """
        d = self.to_dict()
        if d.pop("save_images"):
            d["save_images"] = True
        if not d["keep_states"]:
            del d["keep_states"]
        blob = json.dumps(d, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_indices"] = list(self.image_indices)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Cell":
        d = dict(d)
        d["image_indices"] = tuple(d["image_indices"])
        return cls(**d)


def score_layers(cells) -> set[int]:
    """Generator layers whose score model some of ``cells`` need (SGILO rounds at temperature > 0),
    so a missing score file is reported before a run, not in its failed cells."""
    import methods

    out: set[int] = set()
    for c in cells:
        m = methods.get(c.method)
        out |= m.score_layers(m.params_from_dict(c.params))
    return out


def image_seed(cell_seed: int, image_id: str) -> int:
    """Per-image seed from the cell seed and the image's stable id (not its batch position)."""
    return derive_seed(cell_seed, image_id)


def operator_seed(cell: Cell) -> int:
    """The operator's seed: (seed, task, level) only, so every method sees the same operator."""
    return derive_seed(cell.seed, cell.task, cell.level)


def versions() -> dict[str, str]:
    import bench

    return {"bench": bench.__version__, "torch": torch.__version__, "python": platform.python_version()}


@dataclass
class CellResult:
    cell: Cell
    rows: list[dict[str, Any]]
    traces: list[dict[str, Any]] = field(default_factory=list)
    images: dict[str, torch.Tensor] = field(default_factory=dict)  # for W&B panels: measurement/recon/reference
    status: str = "ok"
    reason: str = ""
    weights: dict[str, str] = field(default_factory=dict)  # catalog.data_identity when the prior was loaded

    def to_json(self) -> dict[str, Any]:
        return {"cell": self.cell.to_dict(), "key": self.cell.key, "status": self.status, "reason": self.reason,
                "rows": self.rows, "traces": self.traces, "weights": self.weights}


_LPIPS_CACHE: dict[str, Any] = {}


def _lpips(device: torch.device):
    from bench.core.metrics import LpipsMetric

    k = str(device)
    if k not in _LPIPS_CACHE:
        _LPIPS_CACHE[k] = LpipsMetric(device=device)
    return _LPIPS_CACHE[k]


def run_cell(cell: Cell, device: torch.device | str | None = None, keep_images: bool = False) -> CellResult:
    """Execute a cell; never raises (failures come back as failed rows)."""
    t0 = time.perf_counter()
    try:
        return _run(cell, get_device(device if device is None else str(device)), keep_images, t0)
    except Exception as err:  # noqa: BLE001 - a failed cell must not stop the sweep
        reason = f"{type(err).__name__}: {err}"
        tb = traceback.format_exc(limit=6)
        return failed_result(cell, reason, detail=tb, seconds=time.perf_counter() - t0)


def failed_result(cell: Cell, reason: str, detail: str = "", seconds: float = 0.0) -> CellResult:
    empty = {"mse": math.nan, "psnr": math.nan, "lpips": math.nan, "lpips_status": "", "measurement_loss": math.nan,
             "nfe_generator": 0, "nfe_score": 0}
    rows = [_base_row(cell, i, None) | empty | {"status": "failed", "reason": reason, "seconds": seconds}
            for i in cell.image_indices]
    res = CellResult(cell, rows, status="failed", reason=reason)
    if detail:
        for r in res.rows:
            r["detail"] = detail[-2000:]
    return res


def _base_row(cell: Cell, index: int, image_id: str | None) -> dict[str, Any]:
    return {
        "cell": cell.key, "sweep": cell.sweep, "stage": cell.stage, "prior": cell.prior, "task": cell.task,
        "level": cell.level, "method": cell.method, "variant": cell.variant,
        "params": json.dumps(cell.params, sort_keys=True), "image_set": cell.image_set, "image_index": index,
        "image_id": image_id, "seed": cell.seed, "noise_sigma": cell.noise_sigma, **{f"v_{k}": v for k, v in versions().items()},
    }


def _run(cell: Cell, device: torch.device, keep_images: bool, t0: float) -> CellResult:
    import methods
    import tasks
    from bench.core.metrics import mse, psnr
    from bench.priors.catalog import data_identity, load_images_at, load_prior
    from methods._core import Problem

    method = methods.get(cell.method)
    task = tasks.get(cell.task)
    params = method.params_from_dict(cell.params)
    prior = load_prior(cell.prior, device)
    # the files this cell's results come from, recorded with them: a score model re-installed while a sweep
    # runs is then visible per cell (bench/harness/sweep/rescore.py re-runs exactly the cells that used the old one)
    weights = data_identity(cell.prior)
    idx = list(cell.image_indices)
    x, ids = load_images_at(cell.prior, cell.image_set, idx)
    x = x.to(device)
    op = task.build(cell.level, prior.image_shape, seed=operator_seed(cell), device=device, noise_sigma=cell.noise_sigma)
    seeds = [image_seed(cell.seed, i) for i in ids]
    noise_gens = [generator("measurement-noise", s) for s in seeds]
    y = op.measure(x, noise_gens)
    problem = Problem(y, op, seeds, reference=x, keep_states=cell.keep_states)
    results = method.solve(problem, prior, params, num_samples=cell.num_samples)

    recon = torch.stack([r.reconstruction for r in results]).to(device)
    if cell.save_images:
        _save_images(cell, ids, results)
    m_mse, m_psnr = mse(recon, x).cpu().tolist(), psnr(recon, x).cpu().tolist()
    lp = _lpips(device)
    lp_vals = lp(recon, x) if lp.available else None
    rows, traces = [], []
    for j, (i, r) in enumerate(zip(idx, results)):
        finite = math.isfinite(r.measurement_loss) and bool(torch.isfinite(r.reconstruction).all())
        row = _base_row(cell, i, ids[j]) | {
            "mse": m_mse[j] if finite else math.nan, "psnr": m_psnr[j] if finite else math.nan,
            "lpips": (float(lp_vals[j]) if lp_vals is not None and finite else math.nan),
            "lpips_status": "ok" if lp_vals is not None else lp.reason.splitlines()[0][:300],
            "measurement_loss": r.measurement_loss, "nfe_generator": r.nfe_generator, "nfe_score": r.nfe_score,
            "seconds": r.seconds, "objective_note": r.objective_note, "status": "ok" if finite else "failed",
            "reason": "" if finite else "non-finite result (diverged: NaN/inf loss or image)",
        }
        rows.append(row)
        traces.append({"image_id": ids[j], "steps": [t[0] for t in r.trace], "loss": [t[1] for t in r.trace],
                       "ref_mse": [t[2] for t in r.trace]})
    status = "ok" if all(r["status"] == "ok" for r in rows) else "failed"
    out = CellResult(cell, rows, traces, status=status,
                     reason="" if status == "ok" else "non-finite result in at least one image", weights=weights)
    if keep_images:
        prev = op.preview(y)
        out.images = {"reference": x.cpu(), "reconstruction": recon.cpu()}
        if prev is not None:
            out.images["measurement"] = prev.cpu()
    return out


def image_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (clamped) -> uint8 as a saved PNG would hold it (decode: ``u8.float() / 127.5 - 1``); 4x
    smaller than float32, which matters for FFHQ: 128 images x (1 + S) samples at 1024^2."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _save_images(cell: Cell, ids: list[str], results: list) -> Path:
    """Write ``{"image_ids", "image_indices", "recon" uint8 [B,C,H,W], "samples" uint8
    [B,S,C,H,W] or None, "states" {layer: float32 [B,C,H,W]} (only with ``keep_states``)}``
    atomically before the cell's record is stored, so a stored record implies its images exist."""
    folder = Path(cell.save_images)
    folder.mkdir(parents=True, exist_ok=True)
    samples = [r.samples for r in results]
    blob = {"image_ids": list(ids), "image_indices": list(cell.image_indices), "format": "uint8: x = u8 / 127.5 - 1",
            "recon": image_to_uint8(torch.stack([r.reconstruction for r in results])),
            "samples": None if any(s is None for s in samples) else image_to_uint8(torch.stack(samples))}
    if cell.keep_states:
        blob["states"] = {k: torch.stack([r.states[k] for r in results]).float() for k in sorted(results[0].states)}
    return atomic_torch_save(blob, folder / f"{cell.key}.pt")
