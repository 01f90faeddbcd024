"""A trained score model packaged as a prior on one generator layer: network + SDE + normalisation.

Two spaces (the official SGILO code):

* original space ``h``: the generator's layer-k activations, what SGILO optimises;
* normalised space ``y = (h - min) / (max - min + 1e-8)``: what the network was trained on
  and where the diffusion (and every sampler in :mod:`bench.priors.samplers`) runs.

``score_normalized(y, t)`` is the network's score of the VP-diffused normalised data.
``score(h, t)`` is the same density expressed in original space; y is an affine map of h with
slope 1/s (s = max - min + 1e-8), so by the chain rule grad_h log p = (1/s) grad_y log p.
Note what "time t" means there: noise of std(t) added in *normalised* units (s std(t) in
original units) and the VP shrinkage pulls toward y = 0, i.e. h = min.

Anything with ``sde``, ``normalize``, ``denormalize`` and ``score_normalized`` can stand in for
a prior (see :class:`GaussianScorePrior`, the analytic reference used by the tests).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Protocol, Sequence, Union

import torch
from torch import nn

from bench.priors.samplers import hot_pc_step, hot_pc_step_reuse
from bench.priors.score_vit import ScoreViT, ScoreViTConfig, bfloat16_copy, load_official_state_dict
from bench.priors.sde import VPSDE, TimeLike, batch_broadcast

FORMAT = "bench.score_prior/1"
# Official checkpoints are named by ILO round; ``layer`` here is our generator layer whose
# output they model (official layer1 = [512, 4, 4] = the state after our layer 0).
OFFICIAL_LAYER_INDEX: dict[str, int | None] = {"latent": None, "layer1": 0, "layer2": 1, "layer3": 2, "syn_layer3": 2}
NORM_EPS = 1e-8  # the official ``normalize`` adds this to (max - min)


Norm = Union[float, Sequence[float]]  # one (min, max) for the whole state, or one per channel


def _as_norm(v: Norm, like: torch.Tensor) -> float | torch.Tensor:
    """A scalar stays a float (the official form); a per-channel list becomes [C, 1, 1] on ``like``'s device."""
    if isinstance(v, (int, float)):
        return float(v)
    return torch.as_tensor(v, dtype=like.dtype, device=like.device).reshape(-1, 1, 1)


def normalize(x: torch.Tensor, lo: Norm, hi: Norm) -> torch.Tensor:
    """Official ``normalize``: [lo, hi] -> [0, 1] (per channel when lo/hi are lists)."""
    lo, hi = _as_norm(lo, x), _as_norm(hi, x)
    return (x - lo) / (hi - lo + NORM_EPS)


def denormalize(y: torch.Tensor, lo: Norm, hi: Norm) -> torch.Tensor:
    lo, hi = _as_norm(lo, y), _as_norm(hi, y)
    return y * (hi - lo + NORM_EPS) + lo


def _plain_norm(v: Norm | torch.Tensor) -> Norm:
    """A float, or a plain list of per-channel floats (JSON-able, saved with the weights)."""
    if isinstance(v, torch.Tensor):
        return float(v) if v.numel() == 1 else [float(a) for a in v.flatten()]
    return float(v) if isinstance(v, (int, float)) else [float(a) for a in v]


def _time_vector(t: TimeLike, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t


class PriorLike(Protocol):
    """What the samplers and SGILO need from a prior."""

    sde: VPSDE

    def normalize(self, h: torch.Tensor) -> torch.Tensor: ...

    def denormalize(self, y: torch.Tensor) -> torch.Tensor: ...

    def score_normalized(self, y: torch.Tensor, t: TimeLike) -> torch.Tensor: ...

    def score(self, h: torch.Tensor, t: TimeLike) -> torch.Tensor: ...


class _NormalizedSpace:
    """Min/max normalisation shared by every prior: y = (h - min) / (max - min + 1e-8), with one
    (min, max) pair (the official form) or one per channel (lists, bench.scores.train ``per_channel``)."""

    norm_min: Norm
    norm_max: Norm

    @property
    def scale(self) -> float:
        """dh = scale * dy, for the scalar (official) normalisation; per-channel priors: :meth:`scale_like`."""
        if not isinstance(self.norm_min, float) or not isinstance(self.norm_max, float):
            raise ValueError("per-channel normalisation has one scale per channel: use scale_like(x)")
        return self.norm_max - self.norm_min + NORM_EPS

    def scale_like(self, x: torch.Tensor) -> float | torch.Tensor:
        """dh = scale * dy (a float, or [C, 1, 1] per channel)."""
        return _as_norm(self.norm_max, x) - _as_norm(self.norm_min, x) + NORM_EPS

    def normalize(self, h: torch.Tensor) -> torch.Tensor:
        return normalize(h, self.norm_min, self.norm_max)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        return denormalize(y, self.norm_min, self.norm_max)


def _compile_for_inference(net: nn.Module, device: torch.device):
    """The ``score-graphs`` compilation. On a GPU: mode "reduce-overhead" (CUDA graphs: the small ViT's kernels
    are launch-bound at small batches). On a CPU there are no graphs to capture; inductor's freezing instead
    treats the frozen weights as constants (folded into the graph) and the elementwise work between the matmuls
    is fused; the C++ wrapper cuts the per-call Python overhead (2-core AVX512-BF16 CPU, layer-1 network forward
    alone, frozen: float32 B = 1 1.19 -> 0.90 ms, bfloat16 B = 2 1.30 -> 0.90 ms; compile's default options
    gained nothing there)."""
    # one graph per (network, batch size, dtype): a sweep over batch sizes and the two layers' networks
    # exceeds dynamo's default of 8 variants per code object, after which it silently runs uncompiled
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    if torch.device(device).type == "cuda":
        return torch.compile(net, mode="reduce-overhead", dynamic=False)
    return torch.compile(net, dynamic=False, options={"freezing": True, "cpp_wrapper": True})


class ScorePrior(_NormalizedSpace, nn.Module):
    """Score network + VP-SDE + normalisation constants + the generator layer it models."""

    def __init__(self, model: ScoreViT, sde: VPSDE | None = None, norm_min: float = 0.0, norm_max: float = 1.0,
                 layer: int | None = None, metadata: dict | None = None):
        super().__init__()
        self.model = model
        self.sde = sde or VPSDE()
        self.norm_min, self.norm_max = _plain_norm(norm_min), _plain_norm(norm_max)
        self.layer = layer
        self.metadata = dict(metadata or {})
        self.bf16 = False  # the ``score-bf16`` speed setting (bench/priors/acceleration.py); off: plain float32
        self._low: list[ScoreViT] = []  # its bf16 copy, built on first use (a list: not a registered submodule,
        # so it never enters state_dict() or save())
        self.graphs = False  # the ``score-graphs`` speed setting: the network compiled, mode "reduce-overhead"
        self._compiled: dict[tuple, object] = {}
        self.reuse = False  # the ``score-reuse`` speed setting: one score forward per hot step

    # ---------------------------------------------------------------- scores
    def _net(self, y: torch.Tensor, tv: torch.Tensor) -> torch.Tensor:
        if not self.graphs:
            return self._eps_uncompiled(y, tv)
        net = self._bf16_model(y.device) if self.bf16 else self.model
        (eps,) = self._compiled_call(("net", str(y.device), self.bf16), lambda: net,
                                     y.to(torch.bfloat16) if self.bf16 else y, tv)
        return eps.float()

    def _compiled_call(self, key: tuple, build, *args) -> tuple[torch.Tensor, ...]:
        """``build()`` compiled once per ``key`` and called on ``args``; inference only (no gradient flows through
        it: SGILO never differentiates the score). A CUDA-graph replay reuses its output buffers, so there the
        step is marked and the outputs copied out; a CPU graph returns fresh tensors."""
        if key not in self._compiled:
            self._compiled[key] = _compile_for_inference(build(), args[0].device)
        torch.compiler.cudagraph_mark_step_begin()
        with torch.no_grad():
            out = self._compiled[key](*args)
        out = out if isinstance(out, tuple) else (out,)
        return tuple(o.clone() for o in out) if args[0].device.type == "cuda" else out

    def _eps_uncompiled(self, y: torch.Tensor, tv: torch.Tensor) -> torch.Tensor:
        net = self._bf16_model(y.device) if self.bf16 else self.model
        return net(y.to(torch.bfloat16) if self.bf16 else y, tv).float()  # .float(): a no-op in float32

    def _score_normalized_uncompiled(self, y: torch.Tensor, tv: torch.Tensor) -> torch.Tensor:
        return -self._eps_uncompiled(y, tv) / batch_broadcast(self.sde.marginal_std(tv), y)

    def hot_step(self, y: torch.Tensor, tv: torch.Tensor, snr: float, z_corr: torch.Tensor,
                 z_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of SGILO's hot sampler (samplers.hot_pc_step) in normalised space. Under ``score-graphs`` the
        whole step (both score forwards and the update arithmetic between them) is one compiled graph: one guard
        check and fused elementwise work per step, where compiling the network alone left them per call."""
        step = hot_pc_step_reuse if self.reuse else hot_pc_step
        if not self.graphs:
            return step(self.score_normalized, self.sde, y, tv, snr, z_corr, z_pred)
        if self.bf16:  # the copy exists (and is on this device) before a graph captures it
            self._bf16_model(y.device)
        x, x_mean = self._compiled_call(
            ("hot_step", str(y.device), self.bf16, self.reuse),
            lambda: functools.partial(step, self._score_normalized_uncompiled, self.sde),
            y, tv, snr, z_corr, z_pred)
        return x, x_mean

    def _bf16_model(self, device: torch.device) -> ScoreViT:
        """The stored bf16 copy of the network on ``device`` (rebuilt after the float32 network moved)."""
        if not self._low or self._low[0].pos_embedding.device != device:
            self._low[:] = [bfloat16_copy(self.model).to(device)]
            self._compiled.clear()
        return self._low[0]

    def eps(self, y: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Raw network output: the predicted noise in normalised space."""
        return self._net(y, _time_vector(t, y))

    def score_normalized(self, y: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """grad_y log p_t(y) = -eps(y, t) / std(t) (official ``get_score_fn``)."""
        tv = _time_vector(t, y)
        return -self._net(y, tv) / batch_broadcast(self.sde.marginal_std(tv), y)

    def score(self, h: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """grad_h log p_t(h) in original space (chain rule: score_normalized / scale)."""
        return self.score_normalized(self.normalize(h), t) / self.scale_like(h)

    # ---------------------------------------------------------------- persistence
    @property
    def config(self) -> ScoreViTConfig:
        return self.model.cfg

    def save(self, path: str | os.PathLike) -> Path:
        """One file: weights, network config, SDE, normalisation, layer, metadata (written atomically)."""
        json.dumps(self.metadata)  # metadata must stay plain JSON so weights_only loading works
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {
            "format": FORMAT,
            "vit_config": self.config.to_dict(),
            "sde": asdict(self.sde),
            "norm": {"min": self.norm_min, "max": self.norm_max},
            "layer": self.layer,
            "metadata": self.metadata,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
        }
        from bench.core.io import atomic_torch_save

        return atomic_torch_save(blob, path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "ScorePrior":
        from bench.core.io import load_tensors

        blob = load_tensors(path, "a score prior", map_location=map_location)
        if blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not a score prior file (format {blob.get('format')!r}, expected {FORMAT!r})")
        model = ScoreViT(ScoreViTConfig(**blob["vit_config"]))
        load_official_state_dict(model, blob["state_dict"])
        return cls(model.eval().requires_grad_(False), VPSDE(**blob["sde"]), blob["norm"]["min"],
                   blob["norm"]["max"], blob["layer"], blob["metadata"])

    @classmethod
    def from_official(cls, name: str, state_dict: dict, norm_min: float, norm_max: float) -> "ScorePrior":
        """Wrap an official SGILO checkpoint, e.g. ('layer1', sd, -1.4007, 2.3453) with the
        solve_inverse gen_min/gen_max, or ('latent', sd, -3.0592, 3.0290) (z-space latents;
        see :func:`latent_to_image`)."""
        from bench.priors.score_vit import build_official

        model = build_official(name)
        load_official_state_dict(model, state_dict)
        return cls(model.eval().requires_grad_(False), VPSDE(), norm_min, norm_max, OFFICIAL_LAYER_INDEX[name],
                   {"official": name})

    @classmethod
    def from_official_file(cls, path: str | os.PathLike, name: str, norm_min: float, norm_max: float) -> "ScorePrior":
        """Read an official ``*.pth`` (a plain state dict, so ``weights_only=True`` suffices) and wrap it."""
        from bench.core.io import load_tensors

        return cls.from_official(name, load_tensors(path, f"the official SGILO score network {name!r}"), norm_min,
                                 norm_max)


def latent_to_image(z: torch.Tensor) -> torch.Tensor:
    """[B, n_latent, D] W+/z rows -> [B, D, n_latent, 1], the official latent model's input layout."""
    return z.permute(0, 2, 1).unsqueeze(-1)


def image_to_latent(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`latent_to_image`."""
    return x.squeeze(-1).permute(0, 2, 1)


class GaussianScorePrior(_NormalizedSpace):
    """Exact prior for data N(mu, diag(sigma^2)) in normalised space: the diffused density at time t
    is N(m mu, m^2 sigma^2 + std^2) with m = exp(c(t)). The reference the tests compare against."""

    def __init__(self, mu: torch.Tensor, sigma: torch.Tensor, sde: VPSDE | None = None,
                 norm_min: float = 0.0, norm_max: float = 1.0):
        self.mu, self.sigma = mu, sigma
        self.sde = sde or VPSDE()
        self.norm_min, self.norm_max = _plain_norm(norm_min), _plain_norm(norm_max)

    def moments(self, t: TimeLike, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, variance) of the diffused Gaussian at time t, broadcast to ``like``."""
        tv = _time_vector(t, like)
        m = batch_broadcast(self.sde.mean_coeff(tv), like)
        s = batch_broadcast(self.sde.marginal_std(tv), like)
        return m * self.mu, m**2 * self.sigma**2 + s**2

    def score_normalized(self, y: torch.Tensor, t: TimeLike) -> torch.Tensor:
        mean, var = self.moments(t, y)
        return -(y - mean) / var

    def score(self, h: torch.Tensor, t: TimeLike) -> torch.Tensor:
        return self.score_normalized(self.normalize(h), t) / self.scale_like(h)
