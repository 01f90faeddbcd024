"""The three experiments of the Theorem 3.1 check (escape, mixing, scaling; described in
cli.py's docstring), each returning a JSON-ready dict."""
from __future__ import annotations

import math
from typing import Callable

import torch

from bench.core.seeds import derive_seed
from bench.experiments.theory.config import Config
from bench.experiments.theory.dynamics import (
    Instances,
    distances,
    initial,
    make_instances,
    random_directions,
    simulate,
    sliced_w2,
)
from bench.experiments.theory.stats import (
    basin_sw,
    decay_rate,
    hitting_summary,
    loglog_slope,
    slope_through_one,
    spread_near_star,
)
from bench.priors import relu_net as rn

Log = Callable[[str], None]


# ----------------------------------------------------------------------------- 1. escape
def escape_key(k: int, c: float) -> str:
    """Prefix of the escape runs' keys ``"<key>/<init>/<method>"`` for latent k and expansion c."""
    return f"k{k}-c{c:g}"


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


def temperature_sweep(inst: Instances, k: int, c: float, cfg: Config) -> list[dict]:
    """Langevin from -rho z* for each C of ``cfg.escape_Cs``: in B(z*, r) at a quarter of the run and at the end."""
    rows = []
    for C in cfg.escape_Cs:
        r = escape_run(inst, "neg_star", cfg.beta(k, C), cfg, derive_seed("escape", k, c, "neg_star"))
        mid = len(r["t"]) // 4
        rows.append({"k": k, "expansion": c, "C": C, "t_mid": r["t"][mid], "star_mid": r["star"][mid],
                     "star_final": r["star"][-1], "wrong_mid": r["wrong"][mid],
                     "wrong_final": r["wrong"][-1], "neg_final": r["neg"][-1]})
    return rows


def experiment_escape(cfg: Config, log: Log) -> dict:
    res: dict = {"runs": {}, "C_sweep": [], "landscape": []}
    for k, c in cfg.escape_settings:
        inst = make_instances(cfg.setting(k, c), cfg.escape_instances, tag="escape")
        log(f"  escape {inst.setting.label()}: rho = {inst.rho.median():.3f} (median; expected "
            f"{rn.expected_saddle_rho(cfg.depth):.3f})")
        for init in ("randn", "neg_star"):
            for name, beta in (("GD", None), ("Langevin", cfg.beta(k))):
                r = escape_run(inst, init, beta, cfg, derive_seed("escape", k, c, init))
                res["runs"][f"{escape_key(k, c)}/{init}/{name}"] = r | {
                    "k": k, "expansion": c, "widths": list(inst.setting.widths), "init": init, "method": name,
                    "rho": inst.rho.squeeze(1).tolist()}
                log(f"    {init:8s} {name:8s}: final near z* {r['star'][-1]:.2f}, near -rho z* {r['neg'][-1]:.2f}, "
                    f"wrong hemisphere {r['wrong'][-1]:.2f}")
        if (k, c) == tuple(cfg.escape_C_setting):
            res["C_sweep"].extend(temperature_sweep(inst, k, c, cfg))
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


def reference_summary(inst: Instances, ref: torch.Tensor, dirs: torch.Tensor, beta: float, cfg: Config,
                      gen: torch.Generator) -> dict:
    """The mixing result's header: the reference law's spread and the SW estimator's floors (reference vs itself)."""
    k = inst.setting.k
    sigma = math.sqrt(1.0 / (2.0 * beta))  # per-coordinate std of mu near z* if Hess f(z*) = 2 I (Laplace)
    perm = torch.randperm(ref.shape[1], generator=gen)
    n_pool = math.ceil(cfg.mix_pool * 60) * cfg.mix_chains  # pooled sample size (about 60 observations per run)
    floor_ens = sliced_w2(ref[:, perm[:cfg.mix_chains]], ref[:, perm[cfg.mix_chains:]], dirs).mean().item()
    half = min(ref.shape[1] // 2, n_pool)
    floor_pool = sliced_w2(ref[:, perm[:half]], ref[:, perm[half:]], dirs).mean().item()
    halves = ref.shape[1] // 2
    return {"k": k, "beta": beta, "sigma_mu": sigma, "reference_samples": ref.shape[1],
            "spread_noise": abs(spread_near_star(ref[:, :halves], inst) / spread_near_star(ref[:, halves:], inst) - 1.0),
            "ref_spread": (ref - inst.z_star).norm(dim=-1).pow(2).mean().sqrt().item(),
            "floor_ensemble": floor_ens, "floor_pooled": floor_pool, "basin_radius": 2 * cfg.radius, "runs": []}


def mixing_run(inst: Instances, ref: torch.Tensor, dirs: torch.Tensor, eta: float, beta: float, floor_ens: float,
               cfg: Config, gen: torch.Generator) -> dict:
    """One eta: SW to the reference vs t from random inits, and the bias of the last ``cfg.mix_pool`` pooled."""
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
    spread = spread_near_star(pooled, inst) / spread_near_star(ref, inst)
    bias_basin = basin_sw(pooled, inst, ref, dirs, 2 * cfg.radius)
    rate = decay_rate([t * eta for t in ts], sw, 3 * floor_ens, 0.3)
    return {"eta": eta, "t": ts, "sw": sw, "outside": outside, "stationary_sw": bias,
            "stationary_sw_basin": bias_basin, "pooled_samples": pooled.shape[1], "decay_rate": rate,
            "spread_ratio": spread}


def experiment_mixing(cfg: Config, log: Log) -> dict:
    """SW(law of z_t, reference) vs t for several eta; bias after burn-in, all runs and within B(z*, 2r)."""
    k = cfg.mix_k
    inst = make_instances(cfg.setting(k), cfg.mix_instances, tag="mixing")
    beta = cfg.beta(k)
    gen = torch.Generator().manual_seed(derive_seed("mixing"))
    ref = reference_samples(inst, beta, cfg, gen)
    dirs = random_directions(k, cfg.projections, gen)
    res = reference_summary(inst, ref, dirs, beta, cfg, gen)
    floor_ens, floor_pool = res["floor_ensemble"], res["floor_pooled"]
    log(f"  mixing {inst.setting.label()}: beta = {beta:g}, reference {ref.shape[1]} samples/instance, "
        f"rms ||z - z*|| = {res['ref_spread']:.3f} (Laplace approximation {res['sigma_mu'] * math.sqrt(k):.3f})")
    for eta in cfg.mix_etas:
        r = mixing_run(inst, ref, dirs, eta, beta, floor_ens, cfg, gen)
        res["runs"].append(r)
        rate = r["decay_rate"]
        log(f"    eta {eta:g}: SW at end {r['sw'][-1]:.4f}, pooled last {cfg.mix_pool:.2f}: {r['stationary_sw']:.4f} "
            f"(within B(z*, {2 * cfg.radius:g}): {r['stationary_sw_basin']:.4f}), outside {r['outside'][-1]:.3f}, "
            f"decay rate {'n/a' if rate is None else f'{rate:.2f}'} (floors {floor_ens:.4f} / {floor_pool:.4f}), "
            f"E||z - z*||^2 / reference's {r['spread_ratio']:.4f}")
    res["spread_slope"] = slope_through_one([r["eta"] for r in res["runs"]], [r["spread_ratio"] for r in res["runs"]])
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


def _instances_for(cfg: Config, k: int) -> int:
    return max(1, cfg.scale_instances // 2) if k >= cfg.big_k else cfg.scale_instances


def scaling_vs_eps(cfg: Config, k: int, log: Log) -> dict:
    """Langevin hitting times of B(z*, r) at eta = eps^2 for each eps, and their log-log slope."""
    inst = make_instances(cfg.setting(k), _instances_for(cfg, k), tag="scaling")
    rows = []
    for eps in cfg.eps_values:
        h = hitting_times(inst, eps ** 2, cfg.beta(k), cfg.scale_chains, cfg, derive_seed("eps", k, eps))
        rows.append({"eps": eps, "eta": eps ** 2, **hitting_summary(h), "cap": math.ceil(cfg.scale_time_cap / eps ** 2)})
    slope = loglog_slope([r["eps"] for r in rows], [r["median"] for r in rows])
    log(f"  scaling vs eps, {inst.setting.label()}: medians {[round(r['median']) if math.isfinite(r['median']) else None for r in rows]}"
        f", log-log slope {slope if slope is None else round(slope, 2)}")
    return {"k": k, "widths": list(inst.setting.widths), "rows": rows, "slope": slope}


def scaling_vs_k(cfg: Config, name: str, log: Log) -> dict:
    """Hitting times of B(z*, r) at eta = k_eps^2 for each k, for Langevin (beta = C k) or GD."""
    eta = cfg.k_eps ** 2
    rows = []
    for k in cfg.k_values:
        inst = make_instances(cfg.setting(k), _instances_for(cfg, k), tag="scaling")
        beta = cfg.beta(k) if name == "Langevin" else None
        h = hitting_times(inst, eta, beta, cfg.scale_chains, cfg, derive_seed("k", k, name))
        rows.append({"k": k, "widths": list(inst.setting.widths), **hitting_summary(h)})
    slope = loglog_slope([r["k"] for r in rows], [r["median"] for r in rows])
    log(f"  scaling vs k ({name}, eta {eta:g}): medians {[r['median'] for r in rows]}, hit fractions "
        f"{[round(r['hit_fraction'], 2) for r in rows]}")
    return {"method": name, "eps": cfg.k_eps, "eta": eta, "rows": rows, "slope": slope,
            "cap": math.ceil(cfg.scale_time_cap / eta)}


def experiment_scaling(cfg: Config, log: Log) -> dict:
    res: dict = {"eps": [], "k": []}
    for k in cfg.eps_ks:
        res["eps"].append(scaling_vs_eps(cfg, k, log))
    for name in ("Langevin", "GD"):
        res["k"].append(scaling_vs_k(cfg, name, log))
    return res
