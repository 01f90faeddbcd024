"""The method plugin contract and what all methods share.

A method solves a batch of B problems (same operator, per-image measurements and seeds) as
one optimisation. Every per-image random draw comes from that image's own generator, every
per-image loss is summed (never averaged) over the batch, and Adam and the projections act
element- or row-wise, so image i's result equals solving it alone with the same seed (up to
float reassociation in batched convolutions).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch

from bench.core.seeds import generator
from bench.priors.prior import Prior
from tasks._base import Operator


@dataclass
class Problem:
    """A batch of inverse problems sharing one operator."""

    y: torch.Tensor  # [B, *measurement_shape]
    operator: Operator
    seeds: Sequence[int]  # one per image: drives every random draw of the method for that image
    reference: torch.Tensor | None = None  # [B, C, H, W] ground truth, for traces only
    keep_states: bool = False  # ILO-family methods return the state after each round's layer (score-prior data)

    @property
    def batch(self) -> int:
        return self.y.shape[0]


@dataclass
class ImageResult:
    reconstruction: torch.Tensor  # [C, H, W], on the CPU
    measurement_loss: float  # of the returned reconstruction
    nfe_generator: int  # generator forward passes for this image
    nfe_score: int  # score-network evaluations for this image
    seconds: float  # wall time of the batch divided by its size
    trace: list[tuple[int, float, float | None]]  # (step, measurement loss, reference MSE)
    samples: torch.Tensor | None = None  # [S, C, H, W] posterior samples (samplers only)
    states: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> state features (keep_states)
    objective_note: str = ""  # e.g. "LPIPS-VGG fill term, weight 1" or why an asked-for term was absent


class PerImageRNG:
    """One torch.Generator per image on the compute device; draws are stacked over the batch.

    Image (or chain) seed ``s`` draws from ``derive_seed("method", s, salt)`` (bench/core/seeds.py);
    ``salt`` separates independent runs on the same image (CSGM restarts, Langevin chains)."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str, salt: int = 0):
        self.device = torch.device(device)
        self.gens = [generator("method", int(s), salt, device=self.device) for s in seeds]

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g, device=self.device) for g in self.gens])

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image noise shaped like a batch ``x`` (lets samplers take this as their generator)."""
        if x.shape[0] != len(self.gens):
            raise ValueError(f"batch of {x.shape[0]} but {len(self.gens)} per-image generators")
        return self.randn(*x.shape[1:]).to(x.dtype)


class StepTrace:
    """Per-step losses kept on the device (no host sync inside the loop), written into one growing buffer.

    One small tensor per step instead (as before) let a long run's RSS grow by ~0.4 MB per step on the CPU:
    the long-lived small blocks pinned glibc's heap between the step's large temporary buffers (measured: ILO,
    16 images, 3 x 140 steps: +150 MB with the trace, +10 MB without; a paper-profile fairness cell reached
    2.9 GB)."""

    def __init__(self):
        self.steps: list[int] = []
        self._buf: torch.Tensor | None = None  # [capacity, 2, B]: loss and reference MSE of each step
        self._has_ref = False

    def add(self, step: int, loss: torch.Tensor, ref_mse: torch.Tensor | None) -> None:
        n = len(self.steps)
        if self._buf is None:
            self._has_ref = ref_mse is not None
            self._buf = loss.new_empty((1024, 2, loss.shape[0]))
        elif n == self._buf.shape[0]:
            self._buf = torch.cat([self._buf, torch.empty_like(self._buf)])
        self._buf[n, 0].copy_(loss.detach())
        if ref_mse is not None:
            self._buf[n, 1].copy_(ref_mse.detach())
        self.steps.append(step)

    def per_image(self, batch: int) -> list[list[tuple[int, float, float | None]]]:
        if not self.steps:
            return [[] for _ in range(batch)]
        rows = self._buf[: len(self.steps)].cpu().tolist()
        return [[(s, rows[t][0][i], rows[t][1][i] if self._has_ref else None) for t, s in enumerate(self.steps)]
                for i in range(batch)]


class BestTracker:
    """Per image, the image with the lowest measurement loss seen so far."""

    def __init__(self):
        self.loss: torch.Tensor | None = None
        self.image: torch.Tensor | None = None

    def reset(self) -> None:
        self.loss, self.image = None, None

    @torch.no_grad()
    def update(self, loss: torch.Tensor, image: torch.Tensor) -> None:
        loss = torch.nan_to_num(loss.detach(), nan=float("inf"))
        if self.loss is None:
            self.loss, self.image = loss.clone(), image.detach().clone()
            return
        better = loss < self.loss
        self.loss = torch.where(better, loss, self.loss)
        self.image = torch.where(better[:, None, None, None], image.detach(), self.image)


def reference_mse(image: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor | None:
    if reference is None:
        return None
    return (image.detach() - reference).pow(2).flatten(1).mean(1)


@dataclass
class Hyper:
    """Base of every method's hyperparameter dataclass."""

    def replace(self, **changes: Any) -> "Hyper":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Method:
    """A method plugin: declares its hyperparameters and solves a batch of problems."""

    name: ClassVar[str]
    Params: ClassVar[type[Hyper]]
    samples_posterior: ClassVar[bool] = False
    # registry-wide tests run every method on this prior with smoke_params() (tests/test_methods.py)
    smoke_prior: ClassVar[str] = "tiny"

    def default_params(self) -> Hyper:
        return self.Params()

    def smoke_params(self) -> Hyper:
        """A few steps that still use every random draw of the method (registry-wide tests)."""
        return self.default_params()

    # The official code's objective and returned iterate (docs/DEVIATIONS.md), applied by :meth:`official`;
    # empty for a method the official repositories do not have.
    official_settings: ClassVar[dict[str, Any]] = {}

    def official(self, params: Hyper) -> Hyper:
        """``params`` in the official mode: the official objective, noise maps, iterate and skip mode."""
        return params.replace(**self.official_settings) if self.official_settings else params

    def presets(self) -> dict[str, Hyper]:
        """Named hyperparameter settings (e.g. the ILO paper's schedule)."""
        return {}

    def grid(self, grid_key: str = "embedded") -> list[Hyper]:
        """The tuning grid named by a world's ``grid_key`` ("embedded": small and quick, "ffhq": paper-sized)."""
        return [self.default_params()]

    def score_layers(self, params: Hyper) -> set[int]:
        """Generator layers whose score model (``Prior.scores[k]``) a run with ``params`` needs."""
        return set()

    def params_from_dict(self, d: dict[str, Any]) -> Hyper:
        fields = {f.name: f for f in dataclasses.fields(self.Params)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown {self.name} hyperparameters {unknown}; valid: {sorted(fields)}")
        per_round = [k for k, v in d.items()
                     if isinstance(fields[k].default, tuple) and not isinstance(v, (list, tuple))]
        if per_round:
            k = per_round[0]
            raise ValueError(f"{self.name} hyperparameter {k!r} takes one value per round, a list (e.g. [{d[k]}]); "
                             f"got {d[k]!r}")
        clean = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return self.Params(**clean)

    def solve(self, problem: Problem, prior: Prior, params: Hyper, num_samples: int = 1) -> list[ImageResult]:
        raise NotImplementedError


def finish(problem: Problem, best: BestTracker, trace: StepTrace, nfe_g: int, nfe_s: int, t0: float,
           samples: torch.Tensor | None = None) -> list[ImageResult]:
    """Package per-image results (one host sync, at the end)."""
    b = problem.batch
    seconds = (time.perf_counter() - t0) / b
    traces = trace.per_image(b)
    images = best.image.detach().cpu()
    losses = best.loss.cpu().tolist()
    return [
        ImageResult(images[i], losses[i], nfe_g, nfe_s, seconds, traces[i],
                    None if samples is None else samples[i].detach().cpu())
        for i in range(b)
    ]
