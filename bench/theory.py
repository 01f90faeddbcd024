"""Numerical check of SGILO's Theorem 3.1: Langevin vs gradient descent on random ReLU generators.

``python -m bench.theory [--quick] [--out results/theory] [--threads 1]`` runs three
experiments on instances (W_1..W_d, A, z*) with W_i ~ N(0, 2/n_i), A ~ N(0, 1/m), ||z*|| = 1,
y = A G(z*) and f(z) = ||A G(z) - y||^2, all chains of all instances advanced together (one
batched matmul per layer), with the very step the ``langevin`` method uses
(:func:`bench.priors.relu_net.langevin_step`, beta = C k as in the theorem, k = latent dim):

1. escape: fraction of runs in the ball B(z*, r), in B(-rho z*, r) and in the wrong hemisphere
   (<z, z*> < 0) vs iteration, for GD and Langevin, from random and from saddle inits; plus
   a C sweep and a finite-width diagnostic (how far -rho z* is from being critical).
2. mixing: sliced Wasserstein distance between the chains' law at step t and a long
   reference chain, for several eta, and the stationary bias vs eta.
3. scaling: iterations to first reach B(z*, r) vs eps (eta = eps^2) and vs k, next to the
   theorem's t = log(1/eps)/eps^2.

Writes PNGs, ``theory.json`` (raw numbers) and ``report.md`` under the output folder.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from bench.priors import relu_net as rn

DEFAULT_OUT = Path("results/theory")


# ----------------------------------------------------------------------------- instances
@dataclass(frozen=True)
class Setting:
    """One architecture: latent k, depth d, expansion constant c, measurements m = level * n_d."""

    k: int
    depth: int = 2
    expansion: float = rn.DEFAULT_EXPANSION
    level: float = 0.5

    @property
    def widths(self) -> tuple[int, ...]:
        return rn.layer_widths(self.k, self.depth, self.expansion)

    @property
    def m(self) -> int:
        return max(1, round(self.level * self.widths[-1]))

    def label(self) -> str:
        return f"k={self.k}, d={self.depth}, widths={list(self.widths)}, m={self.m}"


@dataclass
class Instances:
    """I random problems of one setting, stacked on a leading axis."""

    setting: Setting
    weights: list[torch.Tensor]  # [I, n_i, n_{i-1}]
    A: torch.Tensor  # [I, m, n_d]
    z_star: torch.Tensor  # [I, 1, k], unit norm
    y: torch.Tensor  # [I, 1, m]
    rho: torch.Tensor  # [I, 1]: -rho z* minimises f on the ray -z*

    @property
    def count(self) -> int:
        return self.A.shape[0]


def _seed(*parts: object) -> int:
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def make_instances(setting: Setting, count: int, tag: str = "", first: int = 0) -> Instances:
    """Instances first .. first+count-1 of (setting, tag), each seeded by its index alone.

    A is the ``cs`` task's dense Gaussian matrix (same code, same law).
    """
    from tasks.cs import dense_gaussian

    widths, s = setting.widths, math.isqrt(setting.widths[-1])
    nets, mats, stars = [], [], []
    for i in range(first, first + count):
        nets.append(rn.sample_weights(widths, _seed("net", tag, setting, i)))
        mats.append(dense_gaussian(setting.level, (1, s, s), _seed("A", tag, setting, i)))
        stars.append(rn.unit_latents(1, setting.k, _seed("z", tag, setting, i)))
    weights, A, z_star = rn.stack_weights(nets), torch.stack(mats), torch.stack(stars)
    y = rn.generate(weights, z_star) @ A.transpose(-1, -2)
    return Instances(setting, weights, A, z_star, y, rn.saddle_on_ray(weights, A, y, z_star))


def initial(inst: Instances, kind: str, chains: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """[I, B, k] starts: "randn" (||z0|| ~ scale) or "neg_star" (-rho z* + jitter), via the method's init."""
    noise = torch.randn(inst.count, chains, inst.setting.k, generator=gen)
    z_star = inst.z_star.expand(-1, chains, -1)
    return rn.init_latents(kind, noise, scale, z_star, inst.rho.expand(-1, chains))


def simulate(inst: Instances, z: torch.Tensor, steps: int, eta: float, beta: float | None, gen: torch.Generator,
             observe: Callable[[int, torch.Tensor], bool | None], every: int = 1) -> torch.Tensor:
    """Run the chains; ``observe(t, z)`` at t = 0, every ``every`` steps and at the end (True stops)."""
    if observe(0, z):
        return z
    for t in range(1, steps + 1):
        _, grad = rn.loss_and_grad(inst.weights, inst.A, inst.y, z)
        noise = None if beta is None else torch.randn(z.shape, generator=gen)
        z = rn.langevin_step(z, grad, eta, beta, noise)
        if (t % every == 0 or t == steps) and observe(t, z):
            break
    return z


def distances(inst: Instances, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per run: distance to z*, to -rho z*, and cosine with z*."""
    return {
        "star": (z - inst.z_star).norm(dim=-1),
        "neg": (z + inst.rho.unsqueeze(-1) * inst.z_star).norm(dim=-1),
        "cos": (z * inst.z_star).sum(-1) / z.norm(dim=-1).clamp_min(1e-12),
    }


# ----------------------------------------------------------------------------- sliced Wasserstein
def random_directions(k: int, count: int, gen: torch.Generator) -> torch.Tensor:
    d = torch.randn(k, count, generator=gen)
    return d / d.norm(dim=0, keepdim=True)


def sliced_w2(x: torch.Tensor, ref: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Sliced 2-Wasserstein distance between samples x [..., N, k] and ref [..., M, k].

    Each 1-D projection's W2 compares x's sorted projections with ref's quantiles at the
    levels (i + 1/2) / N (exact for N = M; a quantile estimate of the reference otherwise);
    SW = sqrt(mean over directions of W2^2).
    """
    px = (x @ directions).sort(dim=-2).values
    pr = (ref @ directions).sort(dim=-2).values
    n, m = px.shape[-2], pr.shape[-2]
    idx = ((torch.arange(n, dtype=torch.float64) + 0.5) * m / n).floor().long().clamp_max(m - 1)
    return (px - pr.index_select(-2, idx)).pow(2).mean(dim=(-2, -1)).sqrt()


# ----------------------------------------------------------------------------- configuration
@dataclass
class Config:
    radius: float = 0.25  # the balls B(z*, r) and B(-rho z*, r) (||z*|| = 1)
    C: float = 50.0  # beta = C k
    depth: int = 2
    expansion: float = rn.DEFAULT_EXPANSION
    level: float = 0.5
    # 1. escape
    escape_settings: tuple[tuple[int, float], ...] = ((5, 2.0), (5, 4.0), (10, 2.0))  # (k, expansion c)
    escape_instances: int = 16
    escape_chains: int = 32
    escape_steps: int = 2000
    escape_eta: float = 0.05
    saddle_jitter: float = 0.02
    escape_Cs: tuple[float, ...] = (25.0, 50.0, 100.0, 200.0)
    escape_C_setting: tuple[int, float] = (5, 4.0)  # where the temperature sweep runs
    diag_k: int = 5
    diag_expansions: tuple[float, ...] = (1.5, 2.0, 4.0, 8.0)
    diag_instances: int = 32
    # 2. mixing
    mix_k: int = 10
    mix_instances: int = 4
    mix_chains: int = 512
    mix_etas: tuple[float, ...] = (0.2, 0.1, 0.05, 0.02)
    mix_time: float = 40.0  # continuous time eta * t of each test run
    mix_pool: float = 1 / 3  # the last third of each run is pooled as 'after burn-in'
    ref_eta: float = 0.01
    ref_chains: int = 256
    ref_burn: int = 1500
    ref_collect: int = 3000
    ref_thin: int = 50
    projections: int = 64
    # 3. scaling
    eps_ks: tuple[int, ...] = (5, 10, 20)
    eps_values: tuple[float, ...] = (0.4, 0.28, 0.2, 0.14, 0.1)  # eta = eps^2
    k_values: tuple[int, ...] = (5, 10, 15, 20, 30)
    k_eps: float = 0.2
    scale_instances: int = 8
    scale_chains: int = 16
    scale_time_cap: float = 30.0  # stop a run at eta * t = this
    big_k: int = 20  # from this k on, half the instances (cost grows ~ k^2 log^2 k)

    @classmethod
    def quick(cls) -> "Config":
        return cls(escape_settings=((5, 2.0),), escape_instances=4, escape_chains=8, escape_steps=300,
                   escape_Cs=(50.0,), escape_C_setting=(5, 2.0),
                   diag_expansions=(2.0, 4.0), diag_instances=4, mix_instances=1, mix_chains=64,
                   mix_etas=(0.1, 0.05), mix_time=4.0, ref_chains=32, ref_burn=300, ref_collect=300, ref_thin=10,
                   projections=16, eps_ks=(5,), eps_values=(0.3, 0.2), k_values=(5, 8), scale_instances=2,
                   scale_chains=8, scale_time_cap=10.0)

    def setting(self, k: int, expansion: float | None = None) -> Setting:
        return Setting(k, self.depth, self.expansion if expansion is None else expansion, self.level)

    def beta(self, k: int, C: float | None = None) -> float:
        return (self.C if C is None else C) * k


# ----------------------------------------------------------------------------- 1. escape
def escape_run(inst: Instances, init: str, beta: float | None, cfg: Config, seed: int,
               every: int = 10) -> dict[str, list[float]]:
    """Fractions (over instances x chains) near z*, near -rho z*, in the wrong hemisphere, vs t."""
    gen = torch.Generator().manual_seed(seed)
    scale = 1.0 if init == "randn" else cfg.saddle_jitter
    z0 = initial(inst, init, cfg.escape_chains, scale, gen)
    out: dict[str, list] = {"t": [], "star": [], "neg": [], "wrong": []}

    def observe(t: int, z: torch.Tensor) -> None:
        d = distances(inst, z)
        out["t"].append(t)
        out["star"].append(float((d["star"] < cfg.radius).float().mean()))
        out["neg"].append(float((d["neg"] < cfg.radius).float().mean()))
        out["wrong"].append(float((d["cos"] < 0).float().mean()))

    z = simulate(inst, z0, cfg.escape_steps, cfg.escape_eta, beta, gen, observe, every)
    d = distances(inst, z)
    stuck = d["cos"] < 0
    out["per_instance_star"] = (d["star"] < cfg.radius).float().mean(1).tolist()
    out["stuck_angle_deg"] = torch.rad2deg(torch.acos(d["cos"][stuck].clamp(-1, 1))).median().item() if stuck.any() else None
    out["stuck_norm_over_rho"] = ((z.norm(dim=-1) / inst.rho)[stuck]).median().item() if stuck.any() else None
    return out


def landscape_diagnostic(cfg: Config) -> list[dict]:
    """How far -rho z* is from a critical point as the expansion constant c grows.

    In the expected landscape (WDC with constant -> 0) grad f(-rho z*) = 0; we report
    ||grad f(-rho z*)|| / ||grad f(z0)|| (z0 a random point of norm 1) and rho vs rho_d.
    """
    rows = []
    for c in cfg.diag_expansions:
        inst = make_instances(cfg.setting(cfg.diag_k, c), cfg.diag_instances, tag="diag")
        _, g_neg = rn.loss_and_grad(inst.weights, inst.A, inst.y, -inst.rho.unsqueeze(-1) * inst.z_star)
        z0 = initial(inst, "randn", 8, 1.0, torch.Generator().manual_seed(1))
        _, g0 = rn.loss_and_grad(inst.weights, inst.A, inst.y, z0)
        ratio = (g_neg.norm(dim=-1).squeeze(1) / g0.norm(dim=-1).median(1).values)[inst.rho.squeeze(1) > 0]
        # rho = 0 (<A G(-z*), y> <= 0: the 'saddle' is the origin) is left out of the gradient ratio
        rows.append({"expansion": c, "widths": list(inst.setting.widths), "rho_zero": int((inst.rho == 0).sum()),
                     "grad_ratio_median": ratio.median().item(),
                     "grad_ratio_q25": ratio.quantile(0.25).item(), "grad_ratio_q75": ratio.quantile(0.75).item(),
                     "rho_median": inst.rho.median().item(), "rho_q25": inst.rho.quantile(0.25).item(),
                     "rho_q75": inst.rho.quantile(0.75).item()})
    return rows


def _escape_key(k: int, c: float) -> str:
    return f"k{k}-c{c:g}"


def experiment_escape(cfg: Config, log: Callable[[str], None]) -> dict:
    res: dict = {"runs": {}, "C_sweep": [], "landscape": []}
    for k, c in cfg.escape_settings:
        inst = make_instances(cfg.setting(k, c), cfg.escape_instances, tag="escape")
        log(f"  escape {inst.setting.label()}: rho = {inst.rho.median():.3f} (median; expected "
            f"{rn.expected_saddle_rho(cfg.depth):.3f})")
        for init in ("randn", "neg_star"):
            for name, beta in (("GD", None), ("Langevin", cfg.beta(k))):
                r = escape_run(inst, init, beta, cfg, _seed("escape", k, c, init))
                res["runs"][f"{_escape_key(k, c)}/{init}/{name}"] = r | {
                    "k": k, "expansion": c, "widths": list(inst.setting.widths), "init": init, "method": name,
                    "rho": inst.rho.squeeze(1).tolist()}
                log(f"    {init:8s} {name:8s}: final near z* {r['star'][-1]:.2f}, near -rho z* {r['neg'][-1]:.2f}, "
                    f"wrong hemisphere {r['wrong'][-1]:.2f}")
        if (k, c) == tuple(cfg.escape_C_setting):
            for C in cfg.escape_Cs:
                r = escape_run(inst, "neg_star", cfg.beta(k, C), cfg, _seed("escape", k, c, "neg_star"))
                mid = len(r["t"]) // 4
                res["C_sweep"].append({"k": k, "expansion": c, "C": C, "t_mid": r["t"][mid], "star_mid": r["star"][mid],
                                       "star_final": r["star"][-1], "wrong_mid": r["wrong"][mid],
                                       "wrong_final": r["wrong"][-1], "neg_final": r["neg"][-1]})
    res["landscape"] = landscape_diagnostic(cfg)
    return res


# ----------------------------------------------------------------------------- 2. mixing
def reference_samples(inst: Instances, beta: float, cfg: Config, gen: torch.Generator) -> torch.Tensor:
    """[I, M, k]: a small-eta chain started at z*, after burn-in, thinned and pooled over time."""
    z0 = inst.z_star.expand(-1, cfg.ref_chains, -1).clone()
    z = simulate(inst, z0, cfg.ref_burn, cfg.ref_eta, beta, gen, lambda t, z: None, every=cfg.ref_burn)
    pool: list[torch.Tensor] = []

    def keep(t: int, z: torch.Tensor) -> None:
        if t > 0:
            pool.append(z)

    simulate(inst, z, cfg.ref_collect, cfg.ref_eta, beta, gen, keep, every=cfg.ref_thin)
    return torch.cat(pool, dim=1)


def _basin_sw(z: torch.Tensor, inst: Instances, ref: torch.Tensor, dirs: torch.Tensor, radius: float) -> float:
    """Mean over instances of SW between the runs within ``radius`` of z* and the reference (nan if none)."""
    inside = distances(inst, z)["star"] < radius
    vals = [sliced_w2(z[i, inside[i]], ref[i], dirs).item() for i in range(inst.count) if inside[i].sum() >= 16]
    return sum(vals) / len(vals) if vals else math.nan


def _decay_rate(times: Sequence[float], sw: Sequence[float], lo: float, hi: float) -> float | None:
    """-d log SW / d(eta t), fitted where lo < SW < hi (the exponential phase)."""
    pts = [(t, math.log(v)) for t, v in zip(times, sw) if lo < v < hi]
    if len(pts) < 3:
        return None
    mt, mv = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    stt = sum((p[0] - mt) ** 2 for p in pts)
    return -sum((p[0] - mt) * (p[1] - mv) for p in pts) / stt if stt > 0 else None


def _through_one(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """b of the least-squares line y = 1 + b x (the spread ratio is 1 at eta = 0)."""
    sxx = sum(x * x for x in xs)
    return sum(x * (y - 1) for x, y in zip(xs, ys)) / sxx if sxx > 0 else None


def _spread(samples: torch.Tensor, inst: Instances) -> float:
    """E||z - z*||^2 over runs within B(z*, 0.5), averaged over instances (a low-noise summary of the law's width)."""
    d2 = (samples - inst.z_star).pow(2).sum(-1)
    return sum(d2[i][d2[i] < 0.25].mean().item() for i in range(inst.count)) / inst.count


def experiment_mixing(cfg: Config, log: Callable[[str], None]) -> dict:
    """SW(law of z_t, reference) vs t for several eta; bias after burn-in, all runs and within B(z*, 2r)."""
    k = cfg.mix_k
    inst = make_instances(cfg.setting(k), cfg.mix_instances, tag="mixing")
    beta = cfg.beta(k)
    gen = torch.Generator().manual_seed(_seed("mixing"))
    ref = reference_samples(inst, beta, cfg, gen)
    dirs = random_directions(k, cfg.projections, gen)
    sigma = math.sqrt(1.0 / (2.0 * beta))  # per-coordinate std of mu near z* if Hess f(z*) = 2 I (Laplace)
    perm = torch.randperm(ref.shape[1], generator=gen)
    n_pool = math.ceil(cfg.mix_pool * 60) * cfg.mix_chains  # pooled sample size (about 60 observations per run)
    floor_ens = sliced_w2(ref[:, perm[:cfg.mix_chains]], ref[:, perm[cfg.mix_chains:]], dirs).mean().item()
    half = min(ref.shape[1] // 2, n_pool)
    floor_pool = sliced_w2(ref[:, perm[:half]], ref[:, perm[half:]], dirs).mean().item()
    halves = ref.shape[1] // 2
    res = {"k": k, "beta": beta, "sigma_mu": sigma, "reference_samples": ref.shape[1],
           "spread_noise": abs(_spread(ref[:, :halves], inst) / _spread(ref[:, halves:], inst) - 1.0),
           "ref_spread": (ref - inst.z_star).norm(dim=-1).pow(2).mean().sqrt().item(),
           "floor_ensemble": floor_ens, "floor_pooled": floor_pool, "basin_radius": 2 * cfg.radius, "runs": []}
    log(f"  mixing {inst.setting.label()}: beta = {beta:g}, reference {ref.shape[1]} samples/instance, "
        f"rms ||z - z*|| = {res['ref_spread']:.3f} (Laplace approximation {sigma * math.sqrt(k):.3f})")
    for eta in cfg.mix_etas:
        steps = math.ceil(cfg.mix_time / eta)
        every = max(1, steps // 60)
        start_pool = steps - int(cfg.mix_pool * steps)
        z0 = initial(inst, "randn", cfg.mix_chains, 1.0, gen)
        ts, sw, outside, pool = [], [], [], []

        def observe(t: int, z: torch.Tensor) -> None:
            ts.append(t)
            sw.append(sliced_w2(z, ref, dirs).mean().item())
            outside.append(float((distances(inst, z)["star"] >= 2 * cfg.radius).float().mean()))
            if t >= start_pool:
                pool.append(z)

        simulate(inst, z0, steps, eta, beta, gen, observe, every)
        pooled = torch.cat(pool, dim=1)
        bias = sliced_w2(pooled, ref, dirs).mean().item()
        spread = _spread(pooled, inst) / _spread(ref, inst)
        bias_basin = _basin_sw(pooled, inst, ref, dirs, 2 * cfg.radius)
        rate = _decay_rate([t * eta for t in ts], sw, 3 * floor_ens, 0.3)
        res["runs"].append({"eta": eta, "t": ts, "sw": sw, "outside": outside, "stationary_sw": bias,
                            "stationary_sw_basin": bias_basin, "pooled_samples": pooled.shape[1], "decay_rate": rate,
                            "spread_ratio": spread})
        log(f"    eta {eta:g}: SW at end {sw[-1]:.4f}, pooled last {cfg.mix_pool:.2f}: {bias:.4f} (within B(z*, "
            f"{2 * cfg.radius:g}): {bias_basin:.4f}), outside {outside[-1]:.3f}, decay rate "
            f"{'n/a' if rate is None else f'{rate:.2f}'} (floors {floor_ens:.4f} / {floor_pool:.4f}), "
            f"E||z - z*||^2 / reference's {spread:.4f}")
    res["spread_slope"] = _through_one([r["eta"] for r in res["runs"]], [r["spread_ratio"] for r in res["runs"]])
    return res


# ----------------------------------------------------------------------------- 3. scaling
def hitting_times(inst: Instances, eta: float, beta: float | None, chains: int, cfg: Config,
                  seed: int) -> torch.Tensor:
    """First t with ||z_t - z*|| < r per run [I * B], inf if never within the time cap."""
    gen = torch.Generator().manual_seed(seed)
    z0 = initial(inst, "randn", chains, 1.0, gen)
    hit = torch.full(z0.shape[:2], math.inf)

    def observe(t: int, z: torch.Tensor) -> bool:
        inside = distances(inst, z)["star"] < cfg.radius
        hit[inside & torch.isinf(hit)] = float(t)
        return bool(torch.isfinite(hit).all())

    simulate(inst, z0, math.ceil(cfg.scale_time_cap / eta), eta, beta, gen, observe)
    return hit.flatten()


def _summary(hits: torch.Tensor) -> dict[str, float]:
    """Median and quartiles of hitting times with censored (inf) runs ranked last, and the hit fraction."""
    v = hits.sort().values
    q = lambda p: float(v[int(p * (len(v) - 1))])  # noqa: E731
    return {"median": q(0.5), "q25": q(0.25), "q75": q(0.75), "hit_fraction": float(torch.isfinite(hits).float().mean())}


def _fit_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if math.isfinite(y) and y > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx > 0 else None


def _instances_for(cfg: Config, k: int) -> int:
    return max(1, cfg.scale_instances // 2) if k >= cfg.big_k else cfg.scale_instances


def experiment_scaling(cfg: Config, log: Callable[[str], None]) -> dict:
    res: dict = {"eps": [], "k": []}
    for k in cfg.eps_ks:
        inst = make_instances(cfg.setting(k), _instances_for(cfg, k), tag="scaling")
        rows = []
        for eps in cfg.eps_values:
            h = hitting_times(inst, eps ** 2, cfg.beta(k), cfg.scale_chains, cfg, _seed("eps", k, eps))
            rows.append({"eps": eps, "eta": eps ** 2, **_summary(h), "cap": math.ceil(cfg.scale_time_cap / eps ** 2)})
        slope = _fit_slope([r["eps"] for r in rows], [r["median"] for r in rows])
        res["eps"].append({"k": k, "widths": list(inst.setting.widths), "rows": rows, "slope": slope})
        log(f"  scaling vs eps, {inst.setting.label()}: medians {[round(r['median']) if math.isfinite(r['median']) else None for r in rows]}"
            f", log-log slope {slope if slope is None else round(slope, 2)}")
    eta = cfg.k_eps ** 2
    for name in ("Langevin", "GD"):
        rows = []
        for k in cfg.k_values:
            inst = make_instances(cfg.setting(k), _instances_for(cfg, k), tag="scaling")
            beta = cfg.beta(k) if name == "Langevin" else None
            h = hitting_times(inst, eta, beta, cfg.scale_chains, cfg, _seed("k", k, name))
            rows.append({"k": k, "widths": list(inst.setting.widths), **_summary(h)})
        slope = _fit_slope([r["k"] for r in rows], [r["median"] for r in rows])
        res["k"].append({"method": name, "eps": cfg.k_eps, "eta": eta, "rows": rows, "slope": slope,
                         "cap": math.ceil(cfg.scale_time_cap / eta)})
        log(f"  scaling vs k ({name}, eta {eta:g}): medians {[r['median'] for r in rows]}, hit fractions "
            f"{[round(r['hit_fraction'], 2) for r in rows]}")
    return res


# ----------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_axis(ax, steps: int) -> None:
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, steps)


def plot_escape(res: dict, cfg: Config, path: Path) -> None:
    plt = _plt()
    rows = cfg.escape_settings
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 3.5 * len(rows) + 0.6), squeeze=False)
    colors = {"GD": "tab:red", "Langevin": "tab:blue"}
    for row, (k, c) in enumerate(rows):
        for col, init in enumerate(("randn", "neg_star")):
            ax = axes[row][col]
            for name in ("GD", "Langevin"):
                r = res["runs"][f"{_escape_key(k, c)}/{init}/{name}"]
                ax.plot(r["t"], r["star"], color=colors[name], label=f"{name}: in B(z*, r)")
                ax.plot(r["t"], r["neg"], color=colors[name], ls="--", label=f"{name}: in B(-rho z*, r)")
                ax.plot(r["t"], r["wrong"], color=colors[name], ls=":", label=f"{name}: <z, z*> < 0 (wrong side)")
            title = "random init, ||z0|| ~ 1" if init == "randn" else f"init -rho z* + jitter {cfg.saddle_jitter:g}"
            widths = res["runs"][f"{_escape_key(k, c)}/{init}/GD"]["widths"]
            ax.set(title=f"widths {widths} (c={c:g}): {title}", xlabel="iteration", ylabel="fraction of runs",
                   ylim=(-0.02, 1.02))
            _time_axis(ax, cfg.escape_steps)
            ax.grid(alpha=0.3)
    _escape_side_panels(res, cfg, [axes[r][2] for r in range(len(rows))])
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8)
    fig.suptitle(f"Escaping -rho z*: GD vs Langevin (beta = {cfg.C:g} k, eta = {cfg.escape_eta:g}, r = {cfg.radius:g}; "
                 f"{cfg.escape_instances} instances x {cfg.escape_chains} runs)", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _escape_side_panels(res: dict, cfg: Config, axes: list) -> None:
    """Finite-width diagnostic, temperature sweep, per-instance outcomes (as many as there are rows)."""
    panels = []
    lines = res["landscape"]

    def landscape(ax) -> None:
        cs = [r["expansion"] for r in lines]
        ax.errorbar(cs, [r["grad_ratio_median"] for r in lines],
                    yerr=[[r["grad_ratio_median"] - r["grad_ratio_q25"] for r in lines],
                          [r["grad_ratio_q75"] - r["grad_ratio_median"] for r in lines]], marker="o", capsize=3,
                    label="||grad f(-rho z*)|| / ||grad f(z0)|| (0 in theory)")
        ax.errorbar(cs, [r["rho_median"] for r in lines],
                    yerr=[[r["rho_median"] - r["rho_q25"] for r in lines],
                          [r["rho_q75"] - r["rho_median"] for r in lines]], marker="s", capsize=3,
                    label="rho (ray minimiser), median and IQR")
        ax.axhline(rn.expected_saddle_rho(cfg.depth), color="gray", ls="--", label="rho_d (expected landscape)")
        ax.set(xscale="log", xlabel="expansion constant c", ylim=(0, None),
               title=f"finite width (k={cfg.diag_k}): is -rho z* critical?")
        ax.legend(fontsize=7)

    def temperature(ax) -> None:
        cs = res["C_sweep"]
        ax.plot([r["C"] for r in cs], [r["star_mid"] for r in cs], marker="o", label=f"in B(z*, r) at t={cs[0]['t_mid']}")
        ax.plot([r["C"] for r in cs], [r["star_final"] for r in cs], marker="o", label="in B(z*, r) at the end")
        ax.plot([r["C"] for r in cs], [r["wrong_final"] for r in cs], marker="s", label="wrong side at the end")
        ax.set(xscale="log", xlabel="C (beta = C k)", ylim=(-0.02, 1.02),
               title=f"Langevin from -rho z* (k={cs[0]['k']}, c={cs[0]['expansion']:g}): temperature")
        ax.legend(fontsize=7)

    def per_instance(ax) -> None:
        k, c = cfg.escape_C_setting if res["C_sweep"] else cfg.escape_settings[-1]
        for off, name in ((-0.2, "GD"), (0.2, "Langevin")):
            vals = res["runs"][f"{_escape_key(k, c)}/neg_star/{name}"]["per_instance_star"]
            ax.bar([i + off for i in range(len(vals))], vals, width=0.4, label=name,
                   color="tab:red" if name == "GD" else "tab:blue")
        ax.set(xlabel="instance", ylabel="fraction in B(z*, r) at the end", ylim=(0, 1.02),
               title=f"per instance, from -rho z* (k={k}, c={c:g})")
        ax.legend(fontsize=7)

    panels.append(landscape)
    if res["C_sweep"]:
        panels.append(temperature)
    panels.append(per_instance)
    for i, ax in enumerate(axes):
        if i < len(panels):
            panels[i](ax)
            ax.grid(alpha=0.3)
        else:
            ax.axis("off")


def plot_mixing(res: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    for r in res["runs"]:
        line, = axes[0].plot([max(t, 0.5) for t in r["t"]], r["sw"], label=f"eta={r['eta']:g}")
        eta_t = [t * r["eta"] for t in r["t"]]
        axes[1].plot(eta_t, r["sw"], color=line.get_color(), label=f"eta={r['eta']:g}")
        axes[1].plot(eta_t, [o if o > 0 else math.nan for o in r["outside"]], color=line.get_color(), ls=":", alpha=0.7)
    for ax in axes[:2]:
        ax.axhline(res["floor_ensemble"], color="gray", ls="--", label="estimator floor (reference vs itself)")
        ax.axhline(res["sigma_mu"], color="gray", ls="-.", label="1/sqrt(2 beta)")
        ax.set(yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set(xscale="log", xlabel="iteration t", ylabel="sliced W2 to the reference law",
                title=f"law of z_t vs a long reference chain (k={res['k']})")
    axes[1].set(xlabel="continuous time eta * t", ylabel="SW (solid); fraction outside B(z*, 2r) (dotted)",
                title="against eta * t: the curves collapse")
    etas = [r["eta"] for r in res["runs"]]
    ax = axes[2]
    ax.loglog(etas, [r["stationary_sw"] for r in res["runs"]], marker="o", label="all runs")
    basin = [(e, r["stationary_sw_basin"]) for e, r in zip(etas, res["runs"]) if math.isfinite(r["stationary_sw_basin"])]
    if basin:
        ax.loglog([b[0] for b in basin], [b[1] for b in basin], marker="s", ls="--",
                  label=f"runs within B(z*, {res['basin_radius']:g}) only")
        e0, b0 = max(basin)
        ax.loglog(etas, [b0 * math.sqrt(e / e0) for e in etas], color="k", ls=":", label="~ sqrt(eta) (= eps for eta = eps^2)")
        ax.loglog(etas, [b0 * e / e0 for e in etas], color="k", ls="-.", label="~ eta")
    ax.axhline(res["floor_pooled"], color="gray", ls="--", label="estimator floor (independent samples)")
    ax.set(xlabel="eta", ylabel="sliced W2, pooled after burn-in", title="stationary bias: sliced W2")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax = axes[3]
    ratios = [r["spread_ratio"] for r in res["runs"]]
    ax.plot(etas, ratios, marker="o", label="E||z - z*||^2, chain / reference")
    slope = res.get("spread_slope")
    if slope is not None:
        xs = [0.0, max(etas)]
        ax.plot(xs, [1 + slope * x for x in xs], "k:", label=f"1 + {slope:.2f} eta (fit)")
    ax.axhline(1.0, color="gray", ls="--")
    ax.set(xlabel="eta", ylabel="spread ratio", xlim=(0, None), title="stationary bias: width of the law")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scaling(res: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    for line in res["eps"]:
        rows = [r for r in line["rows"] if math.isfinite(r["median"])]
        if not rows:
            continue
        eps = [r["eps"] for r in rows]
        ax.errorbar(eps, [r["median"] for r in rows],
                    yerr=[[r["median"] - r["q25"] for r in rows],
                          [max(0.0, min(r["q75"], 10 * r["median"]) - r["median"]) for r in rows]],
                    marker="o", capsize=3, label=f"k={line['k']} (slope {line['slope']:.2f})")
    first = next((line for line in res["eps"] if any(math.isfinite(r["median"]) for r in line["rows"])), None)
    if first is not None:
        eps = [r["eps"] for r in first["rows"]]
        r0 = next(r for r in first["rows"] if math.isfinite(r["median"]))
        th = [math.log(1 / e) / e ** 2 for e in eps]
        c = r0["median"] / (math.log(1 / r0["eps"]) / r0["eps"] ** 2)
        ax.plot(eps, [c * t for t in th], "k--", label="theorem: log(1/eps)/eps^2 (scaled)")
        ax.plot(eps, [r0["median"] * (r0["eps"] / e) ** 2 for e in eps], "k:", label="1/eps^2 (scaled)")
    ax.set(xscale="log", yscale="log", xlabel="eps (eta = eps^2)", ylabel="iterations to reach B(z*, r)",
           title="Langevin hitting time vs eps (median, IQR)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax = axes[1]
    for line in res["k"]:
        rows = [r for r in line["rows"] if math.isfinite(r["median"])]
        if rows:
            slope = "n/a" if line["slope"] is None else f"{line['slope']:.2f}"
            ax.plot([r["k"] for r in rows], [r["median"] for r in rows], marker="o",
                    label=f"{line['method']} (slope {slope})")
    ax2 = ax.twinx()
    for line in res["k"]:
        ax2.plot([r["k"] for r in line["rows"]], [1 - r["hit_fraction"] for r in line["rows"]], ls=":", marker="x",
                 label=f"{line['method']}: never reached (right axis)")
    ax2.set(ylabel="fraction never reaching B(z*, r)", ylim=(-0.02, 1.02))
    ax.set(xscale="log", yscale="log", xlabel="latent dimension k",
           ylabel="median iterations to reach B(z*, r)",
           title=f"vs k at eta = {res['k'][0]['eta']:g} (beta = C k); theorem: no k dependence")
    ax.grid(alpha=0.3, which="both")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- report
def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def write_report(out: dict, cfg: Config, path: Path) -> None:
    esc, mix, sca = out["escape"], out["mixing"], out["scaling"]
    L: list[str] = []
    w = L.append
    w("# Theorem 3.1 numerically: Langevin vs gradient descent on random ReLU generators\n")
    w(f"Generated by `python -m bench.theory{' --quick' if out['quick'] else ''}` in {out['seconds']:.0f} s "
      f"({out['threads']} thread(s) on {out['cpus']} CPUs, 1-min load average {_fmt(out['load_average_start'], '.1f')} "
      f"at the start and {_fmt(out['load_average_end'], '.1f')} at the end; "
      + ", ".join(f"{k} {v:.0f} s" for k, v in out["timings"].items())
      + "). Raw numbers: `theory.json`." + (" QUICK MODE: sizes too small for conclusions." if out["quick"] else "") + "\n")
    w("## Setting\n")
    w(f"- G(z) = relu(W_d ... relu(W_1 z)), d = {cfg.depth}, W_i ~ N(0, 2/n_i) (the appendix's norm-preserving "
      f"scaling), widths n_i = ceil(c n_(i-1) ln n_(i-1)) (Hand & Voroninski's expansivity; c = {cfg.expansion:g} unless "
      f"stated; last width rounded up to a square); A ~ N(0, 1/m), m = {cfg.level:g} n_d (the `cs` task's matrix); "
      f"||z*|| = 1; f(z) = ||A G(z) - A G(z*)||^2 (a sum, as in the theorem).")
    w(f"- Langevin: z <- z - eta grad f + sqrt(2 eta / beta) u with beta = C k (the theorem's beta = C n, n = latent "
      f"dimension), C = {cfg.C:g} unless stated; GD: the same step without noise. Balls: radius r = {cfg.radius:g}. "
      f"rho: the exact minimiser of f on the ray -z*, per instance (G is positively homogeneous, so f is a parabola "
      f"on the ray); the expected landscape's value is rho_d = cos(g^(d)(pi)) = {rn.expected_saddle_rho(cfg.depth):.3f} "
      f"(Lemma B.4; g(t) = arccos(((pi - t) cos t + sin t)/pi)).\n")

    w("## 1. Escaping the spurious critical point (`escape.png`)\n")
    w("| widths (c) | init | method | in B(z*, r) | in B(-rho z*, r) | <z, z*> < 0 | runs on the wrong side: angle to z*, norm / rho |")
    w("|---|---|---|---|---|---|---|")
    for r in esc["runs"].values():
        stuck = "-" if r["stuck_angle_deg"] is None else f"{r['stuck_angle_deg']:.0f} deg, {r['stuck_norm_over_rho']:.2f}"
        w(f"| {r['widths']} ({r['expansion']:g}) | {r['init']} | {r['method']} | {_pct(r['star'][-1])} | "
          f"{_pct(r['neg'][-1])} | {_pct(r['wrong'][-1])} | {stuck} |")
    w(f"\nAfter {cfg.escape_steps} steps of eta = {cfg.escape_eta:g}; {cfg.escape_instances} instances x "
      f"{cfg.escape_chains} runs per row; saddle init = -rho z* + jitter of norm ~{cfg.saddle_jitter:g}; "
      f"random init: ||z0|| ~ 1, uniform direction.\n")
    if esc["C_sweep"]:
        cs = esc["C_sweep"]
        w(f"Temperature sweep, Langevin from -rho z* (k = {cs[0]['k']}, c = {cs[0]['expansion']:g}): " + "; ".join(
            f"C = {r['C']:g}: {_pct(r['star_mid'])} in B(z*, r) at t = {r['t_mid']}, {_pct(r['star_final'])} at the end, "
            f"{_pct(r['wrong_final'])} on the wrong side" for r in cs) + ".\n")
    w(f"Finite-width diagnostic (k = {cfg.diag_k}, {cfg.diag_instances} instances): ||grad f(-rho z*)|| relative to "
      "the median gradient norm at random points of norm 1 (zero in the expected landscape), and rho, vs the expansion "
      "constant c: " + "; ".join(
          f"c = {r['expansion']:g} (widths {r['widths']}): ratio {r['grad_ratio_median']:.2f} "
          f"[{r['grad_ratio_q25']:.2f}, {r['grad_ratio_q75']:.2f}], rho {r['rho_median']:.2f} "
          f"[{r['rho_q25']:.2f}, {r['rho_q75']:.2f}]" for r in esc["landscape"]) + " (median [IQR]).\n")

    w("## 2. Convergence in law (`mixing.png`)\n")
    w(f"k = {mix['k']}, beta = {mix['beta']:g}, {cfg.mix_instances} instances x {cfg.mix_chains} chains from random "
      f"inits, run for continuous time eta t = {cfg.mix_time:g}. Reference law: {cfg.ref_chains} chains at eta = "
      f"{cfg.ref_eta:g} started at z*, {cfg.ref_burn} burn-in steps, then every {cfg.ref_thin}th of {cfg.ref_collect} "
      f"steps pooled: {mix['reference_samples']} samples per instance. Sliced W2 over {cfg.projections} random "
      f"directions, averaged over instances. Reference spread rms ||z - z*|| = {mix['ref_spread']:.3f} (Laplace "
      f"approximation with Hess f(z*) = 2 I: {mix['sigma_mu'] * math.sqrt(mix['k']):.3f}). Estimator floors "
      f"(reference vs itself): {mix['floor_ensemble']:.4f} at {cfg.mix_chains} samples, {mix['floor_pooled']:.4f} at "
      f"pooled sizes (pooled samples are autocorrelated, so their real floor is higher).\n")
    w(f"| eta | steps | SW at last step | outside B(z*, {mix['basin_radius']:g}) at last step | SW pooled over last "
      f"{cfg.mix_pool:.2f} | same, runs within B(z*, {mix['basin_radius']:g}) | E\\|z - z*\\|^2 / reference's | "
      "decay rate of SW per unit eta t |")
    w("|---|---|---|---|---|---|---|---|")
    for r in mix["runs"]:
        w(f"| {r['eta']:g} | {r['t'][-1]} | {r['sw'][-1]:.4f} | {_pct(r['outside'][-1])} | {r['stationary_sw']:.4f} | "
          f"{_fmt(r['stationary_sw_basin'], '.4f')} | {r['spread_ratio']:.3f} | {_fmt(r['decay_rate'])} |")
    w("")

    w("## 3. Iterations to reach B(z*, r) (`scaling.png`)\n")
    w(f"Langevin (beta = {cfg.C:g} k) from random inits, {cfg.scale_instances} instances ({max(1, cfg.scale_instances // 2)} "
      f"for k >= {cfg.big_k}) x {cfg.scale_chains} runs; a run stops counting at eta t = {cfg.scale_time_cap:g} (never "
      "reached = censored, ranked last in the median).\n")
    for line in sca["eps"]:
        meds = ", ".join(f"eps {r['eps']:g}: {_fmt(r['median'], '.0f')} ({_pct(r['hit_fraction'])} reached)"
                         for r in line["rows"])
        w(f"- vs eps (eta = eps^2), widths {line['widths']}: median {meds}; log-log slope {_fmt(line['slope'])}.")
    for line in sca["k"]:
        meds = ", ".join(f"k {r['k']}: {_fmt(r['median'], '.0f')} ({_pct(r['hit_fraction'])} reached)" for r in line["rows"])
        w(f"- vs k, {line['method']} at eta = {line['eta']:g}: median {meds}; log-log slope {_fmt(line['slope'])}.")
    w("\nTheorem: t = Omega(log(1/eps)/eps^2) steps suffice for W(Z_t, mu) <= eps + e^(-Omega(n)) with eta = "
      "Theta(eps^2), constants depending on d only; log(1/eps)/eps^2 has local log-log slope -2 - 1/ln(1/eps) "
      "(-3.1 to -2.4 over eps = 0.4 .. 0.1).\n")
    w("## What agrees with the theorem and what does not\n")
    L.extend(verdict(out, cfg))
    path.write_text("\n".join(L) + "\n")


def verdict(out: dict, cfg: Config) -> list[str]:
    """Plain statements computed from the numbers (so a rerun cannot silently contradict them)."""
    esc, mix, sca = out["escape"], out["mixing"], out["scaling"]
    lines = []
    runs = esc["runs"]
    for k, c in cfg.escape_settings:
        key = _escape_key(k, c)
        gd, lg = runs[f"{key}/neg_star/GD"], runs[f"{key}/neg_star/Langevin"]
        gdr, lgr = runs[f"{key}/randn/GD"], runs[f"{key}/randn/Langevin"]
        better = lg["star"][-1] > gd["star"][-1] and lg["wrong"][-1] <= gd["wrong"][-1]
        lines.append(
            f"- {'AGREES' if better else 'DOES NOT AGREE'} (escape; widths {gd['widths']}): from -rho z*, GD ends in "
            f"B(z*, r) in {_pct(gd['star'][-1])} of runs, stays in B(-rho z*, r) in {_pct(gd['neg'][-1])} and on the "
            f"wrong side in {_pct(gd['wrong'][-1])}; Langevin: {_pct(lg['star'][-1])}, {_pct(lg['neg'][-1])}, "
            f"{_pct(lg['wrong'][-1])}. From random inits: GD {_pct(gdr['star'][-1])} in B(z*, r) "
            f"({_pct(gdr['wrong'][-1])} wrong side), Langevin {_pct(lgr['star'][-1])} ({_pct(lgr['wrong'][-1])}).")
    diag = esc["landscape"]
    ratios = [r["grad_ratio_median"] for r in diag]
    shrinking = ratios[-1] == min(ratios) and ratios[-1] < 0.5 * max(ratios)
    lines.append(
        "- ONLY PARTLY (where GD stalls): the theory's stall point is -rho z* itself. In these finite networks "
        "-rho z* is not a critical point: ||grad f(-rho z*)|| is " + ", ".join(f"{x:.2f}" for x in ratios)
        + " times a typical gradient for c = " + ", ".join(f"{r['expansion']:g}" for r in diag)
        + (" (smallest for the most expansive layers, i.e. moving towards the theorem's regime, though not "
           "monotonically)" if shrinking and ratios != sorted(ratios, reverse=True) else
           " (shrinking as the layers get more expansive, i.e. towards the theorem's regime)" if shrinking else
           " (not clearly shrinking with c)")
        + ", and per-instance rho scatters widely around rho_d. GD from -rho z* therefore either leaves the ray or "
        "stops at nearby *spurious local minima* of the finite network (angles/norms of the wrong-side runs in the "
        "table). GD runs still inside B(-rho z*, r) at the end: " + ", ".join(
            f"{_pct(runs[_escape_key(k, c) + '/neg_star/GD']['neg'][-1])} (widths "
            f"{runs[_escape_key(k, c) + '/neg_star/GD']['widths']})" for k, c in cfg.escape_settings)
        + ". The WDC/RRIC constants the theorem needs (poly(eps), i.e. far larger widths) are not met here.")
    if esc["C_sweep"]:
        cs = esc["C_sweep"]
        lines.append(
            "- TEMPERATURE (no prediction in the theorem beyond 'C large enough'): from -rho z*, in B(z*, r) at "
            f"t = {cs[0]['t_mid']} / at the end: " + ", ".join(
                f"{_pct(r['star_mid'])} / {_pct(r['star_final'])} (C = {r['C']:g})" for r in cs)
            + ". Small C widens the stationary law, so fewer runs sit inside the fixed ball. Escaping a spurious minimum "
            "costs ~exp(beta x barrier) (Arrhenius), so large C must eventually slow the escape; "
            + ("that is visible here." if cs[-1]["star_mid"] < max(r["star_mid"] for r in cs) - 0.05 else
               f"up to C = {cs[-1]['C']:g} it is not visible yet on this setting."))
    runs2 = mix["runs"]
    rates = [r["decay_rate"] for r in runs2 if r["decay_rate"] is not None]
    if len(rates) >= 2:
        similar = max(rates) / min(rates) < 2
        lines.append(
            f"- {'AGREES' if similar else 'DOES NOT AGREE'} (convergence in law): SW(law of z_t, mu) decays "
            "exponentially in continuous time eta t at rates " + ", ".join(
                f"{r['decay_rate']:.2f} (eta {r['eta']:g})" for r in runs2 if r["decay_rate"] is not None)
            + (", nearly independent of eta" if similar else ", which differ by more than x2 across eta")
            + ". So reaching accuracy eps takes eta t ~ log(1/eps), i.e. ~log(1/eps)/eta = log(1/eps)/eps^2 iterations "
            "for eta = eps^2: the theorem's rate.")
    last = ", ".join(f"{r['sw'][-1]:.4f} (eta {r['eta']:g}, {_pct(r['outside'][-1])} of runs outside B(z*, "
                     f"{mix['basin_radius']:g}))" for r in runs2)
    done = all(r["sw"][-1] < 2 * mix["floor_ensemble"] for r in runs2)
    lines.append(
        f"- {'AGREES' if done else 'PARTLY'} (mixed by eta t = {cfg.mix_time:g}?): last-step SW {last}; estimator floor "
        f"{mix['floor_ensemble']:.4f}. " + ("All runs reach the floor." if done else
                                            "The slowest part of the decay is a few runs leaving spurious minima; "
                                            "the theorem's e^(-Omega(n)) and constants hide such finite-size effects."))
    basin = [(r["eta"], r["stationary_sw_basin"]) for r in runs2 if math.isfinite(r["stationary_sw_basin"])]
    if len(basin) >= 2:
        slope = _fit_slope([b[0] for b in basin], [b[1] for b in basin])
        lines.append(
            "- DISCRETISATION BIAS (runs in the basin of z*, pooled after burn-in): SW to the reference "
            + ", ".join(f"{b:.4f} (eta {e:g})" for e, b in basin)
            + f", log-log slope {_fmt(slope)} vs eta, against an estimator floor of {mix['floor_pooled']:.4f} (higher "
            f"in truth: pooled samples are autocorrelated) and a per-coordinate spread of mu of "
            f"~{mix['ref_spread'] / math.sqrt(mix['k']):.3f}: "
            + ("the SW bias is small and barely resolved. " if max(b for _, b in basin) < 3 * mix["floor_pooled"]
               else "the SW bias is resolved. ")
            + "The law's width shows it more clearly: E||z - z*||^2 relative to the reference is " + ", ".join(
                f"{r['spread_ratio']:.3f} (eta {r['eta']:g})" for r in runs2)
            + f" (two halves of the reference differ by {100 * mix['spread_noise']:.1f}%, a rough noise level), i.e. "
            f"~1 + {_fmt(mix.get('spread_slope'))} eta: a first-order (O(eta)) inflation, as for the Euler scheme on a "
            "strongly convex basin, so the bias is ~eta ~ eps^2 here, well within the theorem's eps for eta = eps^2.")
    for line in sca["eps"]:
        sl = line["slope"]
        if sl is None:
            lines.append(f"- n/a: hitting times vs eps for widths {line['widths']}: too few runs reached the ball.")
            continue
        lines.append(
            f"- {'CONSISTENT' if -2.6 <= sl <= -1.6 else 'NOT CONSISTENT'} (iterations vs eps, widths {line['widths']}): "
            f"iterations to reach B(z*, r) grow like eps^{sl:.2f}, within the theorem's sufficient count "
            "log(1/eps)/eps^2 (local slope -2.4 to -3.1). Reaching a *fixed* ball takes a fixed continuous time, hence "
            "~1/eta = eps^-2; the extra log(1/eps) of the theorem is the time to reach accuracy eps in law (section 2).")
    for line in sca["k"]:
        rows = line["rows"]
        fin = [r for r in rows if math.isfinite(r["median"])]
        if len(fin) < 2:
            continue
        ratio = fin[-1]["median"] / fin[0]["median"]
        later = [r for r in fin if r["k"] >= 10]
        tail = (f"; from k = {later[0]['k']} to {later[-1]['k']}: x{later[-1]['median'] / later[0]['median']:.2f}"
                if len(later) >= 2 else "")
        never = ", ".join(f"{_pct(1 - r['hit_fraction'])} at k = {r['k']}" for r in rows)
        why = (" Small k is slower: with the c n log n rule small k means narrow, rough networks (more spurious "
               "minima), and at large k random inits are nearly orthogonal to z*, far from the bad half-space."
               if fin[0]["median"] > fin[-1]["median"] else "")
        if line["method"] == "GD":
            lines.append(f"- FOR COMPARISON (GD vs k): median iterations x{ratio:.2f} from k = {fin[0]['k']} to "
                         f"k = {fin[-1]['k']}{tail}; runs never reaching the ball: {never}.")
            continue
        verdict_k = ("AGREES" if 2 / 3 <= ratio <= 1.5 else
                     "PARTLY (no growth with k, but not constant)" if ratio < 2 / 3 else "DOES NOT AGREE")
        lines.append(
            f"- {verdict_k} (Langevin vs k, beta = C k; theorem: no k dependence, constants depend on d only): median "
            f"iterations x{ratio:.2f} from k = {fin[0]['k']} to k = {fin[-1]['k']}{tail}; runs never reaching the "
            f"ball: {never}.{why}")
    lines.append(
        "- NOT TESTABLE HERE: the theorem's constants (C_1..C_4, how large C must be, the e^(-Omega(n)) term) are "
        "unspecified, so only rates and trends are compared; depth is fixed at d = 2; widths are far below the WDC "
        "regime the proof assumes.")
    return lines


# ----------------------------------------------------------------------------- CLI
def run(cfg: Config, out_dir: Path, quick: bool = False, threads: int = 1,
        log: Callable[[str], None] = print) -> dict:
    torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out: dict = {"quick": quick, "threads": threads, "config": asdict(cfg), "timings": {},
                 "load_average_start": _load(), "cpus": os.cpu_count()}
    for name, fn in (("escape", experiment_escape), ("mixing", experiment_mixing), ("scaling", experiment_scaling)):
        t = time.perf_counter()
        log(f"[{name}]")
        out[name] = fn(cfg, log)
        out["timings"][name] = time.perf_counter() - t
        log(f"  ({out['timings'][name]:.0f} s)")
    plot_escape(out["escape"], cfg, out_dir / "escape.png")
    plot_mixing(out["mixing"], out_dir / "mixing.png")
    plot_scaling(out["scaling"], out_dir / "scaling.png")
    out["seconds"] = time.perf_counter() - t0
    out["load_average_end"] = _load()
    (out_dir / "theory.json").write_text(json.dumps(_finite(out), indent=1))
    write_report(out, cfg, out_dir / "report.md")
    log(f"wrote {out_dir}/{{escape,mixing,scaling}}.png, theory.json, report.md in {out['seconds']:.0f} s")
    return out


def _load() -> float | None:
    """1-minute load average (other jobs on the machine slow the run down; the report says so)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _finite(x: object) -> object:
    """JSON-safe copy: non-finite floats (censored hitting times) become the strings "inf"/"nan"."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.theory", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds): a smoke test, not results")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared machines)")
    a = ap.parse_args(argv)
    cfg = Config.quick() if a.quick else Config()
    run(cfg, a.out, quick=a.quick, threads=a.threads, log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
