"""Train an SGILO score prior on one generator layer (denoising score matching, VP-SDE).

The official repository ships no training code (it has none); this follows score_sde's
continuous-time recipe with the SGILO ViT:

* data: layer-k activations h, normalised to y = (h - min) / (max - min + 1e-8) with
  dataset statistics (:func:`norm_stats`), stored with the weights;
* loss: t ~ U(eps, 1) (or the importance density below), y_t = exp(c) y + std z, the network
  predicts z: || eps_theta(y_t, t) - z ||^2 (= score_sde's loss with weight std^2);
* ``--weighting likelihood_is`` (default): the official configs say
  ``likelihood_weighting: true``, i.e. weight lambda(t) = beta(t) / std(t)^2 (the ELBO
  weighting). Multiplying the eps-loss by lambda has a 1/t spike near eps and very noisy
  gradients; sampling t from lambda(t)/Z instead (exact inverse CDF, VPSDE.sample_importance_time)
  and using the plain eps-loss is the same objective up to the constant Z, with low variance.
  It also puts ~15% of the samples at t < 0.01, where SGILO's hot sampler queries the model.
  ``likelihood`` (naive weighting, divided by Z to keep the scale) and ``none`` are available.
* Adam with warm-up and gradient clipping, EMA of the weights (the EMA weights are saved).

Sources: ``syn`` draws z ~ N(0, I), w = mapping(z) broadcast to W+, noises fresh (or the
stored ones), and takes the layer-k features (fresh samples every batch unless
``--syn-pool N``); ``ilo``/``file`` read a ``.pt`` tensor [N, C, H, W] (or {'features': ...})
of precomputed activations, e.g. ILO inversions of real images.

Outputs in ``--out``: ``score_prior.pt`` (weights + config + norm stats + metadata, see
ScorePrior.save), ``norm.json``, ``config.json``, ``log.jsonl``, and ``checkpoint.pt``,
written atomically every few minutes; re-running the same command resumes from it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from bench.core.io import atomic_torch_save
from bench.priors.score_prior import ScorePrior, normalize
from bench.priors.score_vit import ScoreViT, ScoreViTConfig, load_official_state_dict
from bench.priors.sde import VPSDE, batch_broadcast
from bench.priors.stylegan2 import Generator

WEIGHTINGS = ("none", "likelihood", "likelihood_is")
STATS = ("official", "global", "percentile", "per_channel", "per_channel_standard")


# ----------------------------------------------------------------------------- loss
def sample_times(sde: VPSDE, n: int, eps: float, weighting: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    if weighting == "likelihood_is":
        return sde.sample_importance_time(n, eps, generator)
    return eps + torch.rand(n, generator=generator) * (sde.T - eps)


def dsm_loss(model: torch.nn.Module, sde: VPSDE, y0: torch.Tensor, *, eps: float = 1e-3,
             weighting: str = "likelihood_is", generator: torch.Generator | None = None,
             t: torch.Tensor | None = None) -> torch.Tensor:
    """Mean denoising-score-matching loss in eps-prediction form (per-element mean; see the module doc)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}")
    b = y0.shape[0]
    if t is None:
        t = sample_times(sde, b, eps, weighting, generator)
    t = t.to(y0.device, y0.dtype)
    z = torch.randn(y0.shape, generator=generator).to(y0.device, y0.dtype)
    mean, std = sde.marginal_prob(y0, t)
    yt = mean + batch_broadcast(std, y0) * z
    per = (model(yt, t) - z).pow(2).flatten(1).mean(1)
    if weighting == "likelihood":
        per = per * sde.likelihood_weight(t) * (sde.T - eps) / sde.importance_norm(eps)
    return per.mean()


@torch.no_grad()
def eval_dsm(model: torch.nn.Module, sde: VPSDE, y0: torch.Tensor, *, eps: float = 1e-3, seed: int = 1234,
             batch: int = 256) -> float:
    """Unweighted eps-loss at uniform t with a fixed seed: comparable across runs and weightings."""
    g = torch.Generator().manual_seed(seed)
    total, n = 0.0, 0
    for i in range(0, len(y0), batch):
        yb = y0[i:i + batch]
        total += float(dsm_loss(model, sde, yb, eps=eps, weighting="none", generator=g)) * len(yb)
        n += len(yb)
    return total / max(n, 1)


# ----------------------------------------------------------------------------- data
@torch.no_grad()
def syn_batch(g: Generator, layer: int, n: int, *, noise_mode: str = "random",
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Layer-``layer`` features of n Gaussian latents (z ~ N(0, I) -> W+ -> g.split)."""
    dev = g.input.input.device
    z = torch.randn(n, g.style_dim, generator=generator).to(dev)
    w = g.get_latent(z).unsqueeze(1).expand(-1, g.n_latent, -1)
    if noise_mode == "random":
        noises = g.make_noise(n, generator)
    elif noise_mode == "fixed":
        noises = g.stored_noises(n)
    else:
        raise ValueError("noise_mode must be 'random' or 'fixed'")
    return g.split(w, noises, layer).features.float()


def build_syn_dataset(g: Generator, layer: int, n: int, *, batch: int = 256, noise_mode: str = "random",
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """A fixed pool of n syn samples [n, C, H, W] on the CPU."""
    parts = [syn_batch(g, layer, min(batch, n - i), noise_mode=noise_mode, generator=generator).cpu()
             for i in range(0, n, batch)]
    return torch.cat(parts)


def load_ilo_dataset(path: str | os.PathLike, expected_shape: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Precomputed layer activations (e.g. ILO inversions): a tensor [N, C, H, W] or {'features': tensor}."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict):
        if "features" not in obj:
            raise ValueError(f"{path}: dict without a 'features' entry (keys: {sorted(obj)})")
        obj = obj["features"]
    if not isinstance(obj, torch.Tensor) or obj.ndim != 4:
        raise ValueError(f"{path}: expected a tensor [N, C, H, W], got {getattr(obj, 'shape', type(obj))}")
    if expected_shape is not None and tuple(obj.shape[1:]) != tuple(expected_shape):
        raise ValueError(f"{path}: samples have shape {tuple(obj.shape[1:])}, the generator layer has {expected_shape}")
    return obj.float()


def norm_stats(data: torch.Tensor, method: str = "official", q: float = 0.001,
               generator: torch.Generator | None = None) -> tuple[float | list[float], float | list[float]]:
    """Scalar (min, max) for the official min/max normalisation.

    ``official``: the mean over samples of each sample's min and max (dataloaders.estimate_stats
    averages per-file extremes, one inversion per file), so a few samples stick out of [0, 1];
    ``global``: the dataset min/max (every sample in [0, 1], but one outlier squeezes the bulk);
    ``percentile``: the q / 1-q quantiles of all values (robust to outliers, on <= 2M values);
    ``per_channel``: the q / 1-q quantiles of each channel (lists of C floats). A single pair puts a
    narrow channel's whole spread inside the t = 0.01 noise when other channels are wide (the v1
    embedded layer-1 prior: data spread 0.043 in normalised units vs noise std 0.045); per channel,
    every channel fills [0, 1].
    ``per_channel_standard``: lo = mean, hi = mean + 2 std of each channel, so the network sees each channel
    centred with std 0.5 (the scale of score_sde's [-1, 1] images, for which the VP SDE's noise schedule is
    built). Under ``per_channel`` the embedded layer-1 states have a per-dimension std of about 0.1: the noise
    std passes it already at t ~ 0.02, so most of the schedule trains a near-Gaussian predictor (held-out eps
    MSE at t = 0.1: 0.060 against the best Gaussian predictor's 0.063).
    """
    flat = data.flatten(1)
    if method == "official":
        return float(flat.min(1).values.mean()), float(flat.max(1).values.mean())
    if method == "global":
        return float(flat.min()), float(flat.max())
    if method == "percentile":
        v = flat.reshape(-1)
        if v.numel() > 2_000_000:
            v = v[torch.randint(0, v.numel(), (2_000_000,), generator=generator)]
        return float(torch.quantile(v, q)), float(torch.quantile(v, 1 - q))
    if method == "per_channel":
        per = data.transpose(0, 1).flatten(1)  # [C, N*H*W]
        if per.shape[1] > 200_000:
            per = per[:, torch.randint(0, per.shape[1], (200_000,), generator=generator)]
        lo, hi = torch.quantile(per, q, dim=1), torch.quantile(per, 1 - q, dim=1)
        return lo.tolist(), hi.tolist()
    if method == "per_channel_standard":
        per = data.transpose(0, 1).flatten(1).double()
        mean, std = per.mean(1), per.std(1)
        return mean.float().tolist(), (mean + 2 * std).float().tolist()
    raise ValueError(f"stats must be one of {STATS}")


# ----------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of a model's floating-point state."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v, 1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.shadow = {k: v.clone() for k, v in sd.items()}


# ----------------------------------------------------------------------------- training
@dataclass
class ScoreTrainConfig:
    out: str = "runs/embedded/score"
    source: str = "syn"  # syn | ilo | file
    data: str = ""  # .pt tensor [N, C, H, W] for ilo/file
    generator: str = "runs/embedded/gan/checkpoint.pt"  # for syn (and shape checks)
    layer: int = 1  # generator layer whose output is modelled (our numbering: layer 0 = 4x4)
    syn_pool: int = 0  # 0: fresh syn samples every batch; N: a fixed pool of N
    generator_states: int = 0  # with fixed data: add a fixed pool of N generator states (a mixture prior)
    noise_mode: str = "random"
    stats: str = "official"
    stats_samples: int = 2048
    dim: int = 128
    depth: int = 4
    heads: int = 2
    dim_head: int = 64
    mlp_ratio: int = 4
    time_conditioning: str = "official"  # or "adaln" (bench/priors/score_vit.py)
    gaussian_skip: bool = False  # output = fitted Gaussian's noise prediction + network (bench/priors/score_vit.py)
    batch: int = 64
    lr: float = 2e-4
    warmup: int = 500
    grad_clip: float = 1.0
    ema: float = 0.999
    eps: float = 1e-3
    weighting: str = "likelihood_is"
    steps: int = 20000
    minutes: float = 120.0  # wall budget of this invocation
    ckpt_minutes: float = 3.0
    eval_samples: int = 512
    heldout: str = ""  # .pt states never trained on: the training curve's held-out DSM (else training samples)
    eval_every: int = 500  # steps between held-out DSM evaluations of the EMA weights (0: only at the end)
    seed: int = 0
    threads: int = 2
    device: str = "cpu"


GSTATE_SEED = 7  # offset of the mixture's generator-state pool seed from the run's seed (held-out: +1)


class _DataSource:
    """Uniform access to fixed tensors and to fresh syn batches, with seeded draws."""

    def __init__(self, cfg: ScoreTrainConfig, g: Generator | None, data: torch.Tensor | None,
                 gen: torch.Generator):
        self.cfg, self.g, self.gen = cfg, g, gen
        self.data = data
        if self.data is None and cfg.source == "syn" and cfg.syn_pool > 0:
            self.data = build_syn_dataset(g, cfg.layer, cfg.syn_pool, noise_mode=cfg.noise_mode,
                                          generator=torch.Generator().manual_seed(cfg.seed + 1))
        self.eval_data = None

    def sample_shape(self) -> tuple[int, int, int]:
        if self.data is not None:
            return tuple(self.data.shape[1:])
        return tuple(self.g.layer_shape(self.cfg.layer))

    def calibration(self, n: int, seed: int) -> torch.Tensor:
        """Fixed-seed samples for the norm stats and the final evaluation."""
        if self.data is not None:
            idx = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(seed))[:n]
            return self.data[idx]
        return build_syn_dataset(self.g, self.cfg.layer, n, noise_mode=self.cfg.noise_mode,
                                 generator=torch.Generator().manual_seed(seed))

    def batch(self, n: int) -> torch.Tensor:
        if self.data is not None:
            return self.data[torch.randint(0, len(self.data), (n,), generator=self.gen)]
        return syn_batch(self.g, self.cfg.layer, n, noise_mode=self.cfg.noise_mode, generator=self.gen).cpu()


def _load_data(cfg: ScoreTrainConfig, g: Generator | None) -> torch.Tensor | None:
    if cfg.source == "syn":
        return None
    if not cfg.data:
        raise ValueError(f"source {cfg.source!r} needs --data FILE.pt")
    shape = tuple(g.layer_shape(cfg.layer)) if g is not None else None
    return load_ilo_dataset(cfg.data, shape)


def train(cfg: ScoreTrainConfig, *, g: Generator | None = None, data: torch.Tensor | None = None,
          progress: bool = True) -> Path:
    """Train (or resume) and write ``score_prior.pt``; returns its path. ``g``/``data`` can be
    passed in directly (tests, notebooks) instead of being read from ``cfg.generator``/``cfg.data``."""
    if cfg.weighting not in WEIGHTINGS or cfg.stats not in STATS or cfg.source not in ("syn", "ilo", "file"):
        raise ValueError(f"bad choice in {cfg}")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, g, data, progress)
    finally:
        torch.set_num_threads(threads)


@dataclass
class _ScoreRun:
    """Everything the training loop reads and updates (and the checkpoint stores)."""

    cfg: ScoreTrainConfig
    out: Path
    device: torch.device
    src: _DataSource
    gen: torch.Generator
    vit_cfg: ScoreViTConfig
    sde: VPSDE
    model: ScoreViT
    ema: EMA
    opt: torch.optim.Optimizer
    step: int = 0
    seconds: float = 0.0
    recent: list[float] = field(default_factory=list)
    lo: float | list[float] = 0.0  # normalisation statistics (per channel: lists)
    hi: float | list[float] = 0.0
    eval_y: torch.Tensor | None = None  # normalised evaluation states, loaded on first use

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"


def _train(cfg: ScoreTrainConfig, g: Generator | None, data: torch.Tensor | None, progress: bool) -> Path:
    from bench.core.device import get_device

    device = get_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    g, data = _generator_and_data(cfg, g, data)
    run = _new_run(cfg, out, device, g, data)
    _resume_or_fit_norm(run)
    norm = {"min": run.lo, "max": run.hi, "method": cfg.stats}
    (out / "norm.json").write_text(json.dumps(norm, indent=1))
    (out / "config.json").write_text(json.dumps({**asdict(cfg), "vit_config": run.vit_cfg.to_dict()}, indent=1))
    _truncate_log(out / "log.jsonl", run.step)
    log = open(out / "log.jsonl", "a")
    _train_loop(run, log, progress)
    path, eval_loss, train_loss = _save_final_prior(run)
    log.write(json.dumps({"step": run.step, "final_eval_dsm": eval_loss, "final_train_loss": train_loss}) + "\n")
    log.close()
    print(f"step {run.step}: train loss {train_loss:.4f}, eval DSM (EMA, uniform t) {eval_loss:.4f} -> {path}")
    return path


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows of work lost since the checkpoint (a killed run logged past it) and earlier final rows, so a
    resumed run's log is the log of one uninterrupted run."""
    if not path.exists():
        return
    from bench.core.io import atomic_write_text

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    keep = [r for r in rows if r.get("step", 0) <= step and not any(k.startswith("final_") for k in r)]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def _generator_and_data(cfg: ScoreTrainConfig, g: Generator | None,
                        data: torch.Tensor | None) -> tuple[Generator | None, torch.Tensor | None]:
    """The frozen generator (loaded from ``cfg.generator`` unless given) and the fixed training data, if any."""
    if g is None and (cfg.source == "syn" or Path(cfg.generator).is_file()):
        from bench.priors.checkpoint import load_generator

        g, _ = load_generator(cfg.generator)
    if g is not None:
        g = g.eval().requires_grad_(False)
    if data is None:
        data = _load_data(cfg, g)
    if cfg.generator_states > 0:
        if data is None or g is None:
            raise ValueError("generator_states mixes generator states into fixed data: it needs both")
        data = torch.cat([data, build_syn_dataset(g, cfg.layer, cfg.generator_states, noise_mode=cfg.noise_mode,
                                                  generator=torch.Generator().manual_seed(cfg.seed + GSTATE_SEED))])
    return g, data


def _new_run(cfg: ScoreTrainConfig, out: Path, device: torch.device, g: Generator | None,
             data: torch.Tensor | None) -> _ScoreRun:
    """The data source, a seeded fresh ViT, its EMA and Adam."""
    gen = torch.Generator().manual_seed(cfg.seed)
    src = _DataSource(cfg, g, data, gen)
    c, h, w = src.sample_shape()
    vit_cfg = ScoreViTConfig(channels=c, height=h, width=w, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads,
                             dim_head=cfg.dim_head, mlp_ratio=cfg.mlp_ratio, time_conditioning=cfg.time_conditioning,
                             gaussian_skip=cfg.gaussian_skip)
    sde = VPSDE()
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        model = ScoreViT(vit_cfg).to(device)
    ema = EMA(model, cfg.ema)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    return _ScoreRun(cfg, out, device, src, gen, vit_cfg, sde, model, ema, opt)


def _resume_or_fit_norm(run: _ScoreRun) -> None:
    """Restore the training state from ``checkpoint.pt`` if there is one, else fit the norm stats."""
    cfg, ckpt_path = run.cfg, run.ckpt_path
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state["vit_config"] != run.vit_cfg.to_dict():
            raise ValueError(f"{ckpt_path} was written for {state['vit_config']}, not {run.vit_cfg.to_dict()}; "
                             f"use another --out")
        load_official_state_dict(run.model, state["model"])
        run.ema.load_state_dict({k: v.to(run.device) for k, v in state["ema"].items()})
        run.opt.load_state_dict(state["opt"])
        run.gen.set_state(state["rng"])
        run.step, run.seconds, run.recent = state["step"], state["seconds"], list(state["recent"])
        run.lo, run.hi = state["norm"]["min"], state["norm"]["max"]
        print(f"resumed from {ckpt_path} at step {run.step} ({run.seconds / 60:.1f} min)")
    else:
        src = run.src
        calib = src.data if src.data is not None else src.calibration(cfg.stats_samples, cfg.seed + 2)
        run.lo, run.hi = norm_stats(calib, cfg.stats, generator=torch.Generator().manual_seed(cfg.seed + 3))
        if cfg.gaussian_skip:  # the skip's Gaussian, fitted once to the same states in normalised space
            run.model.set_gaussian(normalize(calib, run.lo, run.hi).to(run.device))
            run.ema = EMA(run.model, cfg.ema)


def _save_checkpoint(run: _ScoreRun) -> None:
    atomic_torch_save({"model": run.model.state_dict(), "ema": run.ema.state_dict(), "opt": run.opt.state_dict(),
                       "rng": run.gen.get_state(), "step": run.step, "seconds": run.seconds, "recent": run.recent,
                       "norm": {"min": run.lo, "max": run.hi}, "vit_config": run.vit_cfg.to_dict()}, run.ckpt_path)


def _train_loop(run: _ScoreRun, log, progress: bool) -> None:
    """Train until ``cfg.steps`` or the wall budget; log every 50 steps, checkpoint every few minutes and at the end."""
    cfg = run.cfg
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=run.step, desc=f"score L{cfg.layer}", unit="it", mininterval=10)
    start, seconds0, last_ckpt = time.time(), run.seconds, time.time()
    run.model.train()
    while run.step < cfg.steps and time.time() - start < cfg.minutes * 60:
        loss = _train_step(run)
        run.step += 1
        run.seconds = seconds0 + time.time() - start
        run.recent = (run.recent + [loss.item()])[-100:]
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{sum(run.recent) / len(run.recent):.4f}")
        if run.step % 50 == 0:
            row = {"step": run.step, "seconds": round(run.seconds, 1), "loss": sum(run.recent) / len(run.recent)}
            log.write(json.dumps(row) + "\n")
            log.flush()
        if cfg.eval_every and run.step % cfg.eval_every == 0:
            log.write(json.dumps({"step": run.step, "eval_dsm": round(_eval_ema(run), 5)}) + "\n")
            log.flush()
            run.model.train()
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            _save_checkpoint(run)
            last_ckpt = time.time()
    _save_checkpoint(run)
    if bar:
        bar.close()


def _train_step(run: _ScoreRun) -> torch.Tensor:
    """One DSM step on a fresh batch (warm-up lr, clipping, Adam, EMA); returns the loss."""
    cfg, opt = run.cfg, run.opt
    y0 = normalize(run.src.batch(cfg.batch), run.lo, run.hi).to(run.device)
    for group in opt.param_groups:
        group["lr"] = cfg.lr * min(1.0, (run.step + 1) / max(cfg.warmup, 1))
    loss = dsm_loss(run.model, run.sde, y0, eps=cfg.eps, weighting=cfg.weighting, generator=run.gen)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    opt.step()
    run.ema.update(run.model)
    return loss


def _ema_model(run: _ScoreRun) -> ScoreViT:
    """A CPU copy of the EMA weights in eval mode."""
    model = ScoreViT(run.vit_cfg)
    load_official_state_dict(model, {k: v.cpu() for k, v in run.ema.state_dict().items()})
    return model.eval()


def _eval_states(run: _ScoreRun) -> torch.Tensor:
    """The evaluation states: up to ``eval_samples`` held-out states when ``cfg.heldout`` is set (the curve
    then measures generalisation, not memorisation), else fixed-seed training samples. A mixture prior's
    held-out set mixes in fresh generator states in the training pool's proportion."""
    cfg = run.cfg
    if not cfg.heldout:
        return run.src.calibration(cfg.eval_samples, cfg.seed + 4)
    real = load_ilo_dataset(cfg.heldout)
    if cfg.generator_states <= 0:
        return real[: cfg.eval_samples]
    n_r, n_g = heldout_split(len(run.src.data) - cfg.generator_states, cfg.generator_states, len(real),
                             cfg.eval_samples)
    fresh = build_syn_dataset(run.src.g, cfg.layer, n_g, noise_mode=cfg.noise_mode,
                              generator=torch.Generator().manual_seed(cfg.seed + GSTATE_SEED + 1))
    return torch.cat([real[:n_r], fresh])


def heldout_split(n_real: int, n_gen: int, n_real_heldout: int, cap: int) -> tuple[int, int]:
    """(real, generator) held-out counts in the training pool's proportion, using at most the real held-out
    states there are and at most ``cap`` in all."""
    frac = n_gen / (n_real + n_gen)
    if frac >= 1:
        return 0, cap
    n_r = min(n_real_heldout, round(cap * (1 - frac)))
    return n_r, round(n_r * frac / (1 - frac))


def _eval_ema(run: _ScoreRun) -> float:
    """Held-out DSM (uniform t, fixed noise seed) of the current EMA weights."""
    if run.eval_y is None:
        run.eval_y = normalize(_eval_states(run), run.lo, run.hi)
    return eval_dsm(_ema_model(run), run.sde, run.eval_y, eps=run.cfg.eps)


def _save_final_prior(run: _ScoreRun) -> tuple[Path, float, float]:
    """Evaluate the EMA weights and write ``score_prior.pt``; returns its path, the eval DSM and the train loss."""
    cfg, lo, hi, step = run.cfg, run.lo, run.hi, run.step
    final_model = _ema_model(run)
    eval_loss = _eval_ema(run)
    train_loss = sum(run.recent) / len(run.recent) if run.recent else float("nan")
    meta = {"source": cfg.source, "data": cfg.data, "generator": cfg.generator if cfg.source == "syn" else "",
            "noise_mode": cfg.noise_mode, "norm_method": cfg.stats, "steps": step, "seconds": round(run.seconds, 1),
            "weighting": cfg.weighting, "eps": cfg.eps, "ema": cfg.ema, "batch": cfg.batch, "lr": cfg.lr,
            "final_train_loss": train_loss, "final_eval_dsm": eval_loss, "finished": step >= cfg.steps,
            "eval_on": "held-out states" if cfg.heldout else "training samples",
            "time_conditioning": cfg.time_conditioning, "gaussian_skip": cfg.gaussian_skip}
    prior = ScorePrior(final_model, run.sde, lo, hi, cfg.layer, meta)
    path = prior.save(run.out / "score_prior.pt")
    return path, eval_loss, train_loss


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = ScoreTrainConfig()
    choices = {"source": ("syn", "ilo", "file"), "noise_mode": ("random", "fixed"), "stats": STATS,
               "weighting": WEIGHTINGS, "time_conditioning": ("official", "adaln")}
    for f in fields(ScoreTrainConfig):
        val = getattr(defaults, f.name)
        kind = (lambda v: v.lower() in ("1", "true", "yes")) if isinstance(val, bool) else type(val)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None, choices=choices.get(f.name))
    p.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")
    args = vars(p.parse_args(argv))
    dry = args.pop("dry_run")
    given = {k: v for k, v in args.items() if v is not None}
    if "data" in given and "source" not in given:
        given["source"] = "file"
    cfg = ScoreTrainConfig(**given)
    if dry:
        print(json.dumps(asdict(cfg), indent=1))
        return
    train(cfg)


if __name__ == "__main__":
    main()
