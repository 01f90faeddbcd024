"""The experiments of the Theorem 3.1 check (described in cli.py's docstring), each returning a
JSON-ready dict: escape from -rho z* (with the finite-width landscape diagnostic) and t_eps, the
steps until the chains' law is within eps of the posterior in exact W2."""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from bench.core.seeds import derive_seed
from bench.experiments.theory.config import Config, Setting
from bench.experiments.theory.dynamics import (
    Instances,
    LossGrad,
    distances,
    exact_w2_batch,
    initial,
    make_instances,
    mala,
    simulate,
    w2_trajectory,
)
from bench.experiments.theory.stats import (
    hitting_median,
    loglog_slope,
    mean_ci,
    median_ci,
    slope_ci,
    theorem_exponent,
)
from bench.priors import relu_net as rn

Log = Callable[[str], None]


# ----------------------------------------------------------------------------- 1. escape
def escape_key(k: int, c: float) -> str:
    """Prefix of the escape runs' keys ``"<key>/<init>/<method>"`` for latent k and expansion c."""
    return f"k{k}-c{c:g}"


def escape_run(inst: Instances, init: str, beta: float | None, cfg: Config, seed: int,
               every: int = 10) -> dict:
    """Fractions (over instances x chains) near z*, near -rho z*, in the wrong hemisphere, vs t;
    the same fractions per instance at the end (the unit of the bootstrap)."""
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
    out["per_instance_neg"] = (d["neg"] < cfg.radius).float().mean(1).tolist()
    out["per_instance_wrong"] = stuck.float().mean(1).tolist()
    out["stuck_angle_deg"] = torch.rad2deg(torch.acos(d["cos"][stuck].clamp(-1, 1))).median().item() if stuck.any() else None
    out["stuck_norm_over_rho"] = ((z.norm(dim=-1) / inst.rho)[stuck]).median().item() if stuck.any() else None
    f, _ = inst.loss_grad(z)
    out["stuck_min_f"] = f[stuck].min().item() if stuck.any() else None  # mu's density there: e^(-beta f) vs z*
    return out


def escape_gain(gd: list[float], lg: list[float]) -> dict:
    """Per-instance (Langevin - GD) fraction in B(z*, r): mean and bootstrap CI over instances."""
    diff = [b - a for a, b in zip(gd, lg)]
    m, lo, hi = mean_ci(diff, seed=1)
    return {"mean": m, "lo": lo, "hi": hi, "instances": len(diff)}


def experiment_escape(cfg: Config, log: Log) -> dict:
    """GD vs Langevin from -rho z* (and, where cheap, from random inits) on each escape setting."""
    res: dict = {"runs": {}, "gain": {}}
    for k, c in cfg.escape_settings:
        inst = make_instances(cfg.setting(k, c), cfg.escape_instances, tag="escape")
        inits = ("randn", "neg_star") if inst.setting.widths[-1] <= cfg.escape_randn_max_nd else ("neg_star",)
        log(f"  escape {inst.setting.label()}: rho = {inst.rho.median():.3f} (median; expected "
            f"{rn.expected_saddle_rho(cfg.depth):.3f})")
        for init in inits:
            for name, beta in (("GD", None), ("Langevin", cfg.beta(k))):
                t0 = time.perf_counter()
                r = escape_run(inst, init, beta, cfg, derive_seed("escape", k, c, init))
                res["runs"][f"{escape_key(k, c)}/{init}/{name}"] = r | {
                    "k": k, "expansion": c, "widths": list(inst.setting.widths), "init": init, "method": name,
                    "rho": inst.rho.squeeze(1).tolist(), "seconds": time.perf_counter() - t0}
                log(f"    {init:8s} {name:8s}: final near z* {r['star'][-1]:.2f}, near -rho z* {r['neg'][-1]:.2f}, "
                    f"wrong hemisphere {r['wrong'][-1]:.2f} ({time.perf_counter() - t0:.0f} s)")
        key = escape_key(k, c)
        res["gain"][key] = escape_gain(res["runs"][f"{key}/neg_star/GD"]["per_instance_star"],
                                       res["runs"][f"{key}/neg_star/Langevin"]["per_instance_star"])
    return res


# ----------------------------------------------------------------------------- 2. landscape
def landscape_instance(setting: Setting, index: int) -> tuple[float, float]:
    """(||grad f(-rho z*)|| / median ||grad f(z0)|| over 8 random z0 of norm 1, rho) for one instance."""
    inst = make_instances(setting, 1, tag="diag", first=index)
    _, g_neg = inst.loss_grad(-inst.rho.unsqueeze(-1) * inst.z_star)
    z0 = initial(inst, "randn", 8, 1.0, torch.Generator().manual_seed(index))
    _, g0 = inst.loss_grad(z0)
    return (g_neg.norm() / g0.norm(dim=-1).median()).item(), inst.rho.item()


def gd_stall_instance(setting: Setting, index: int, cfg: Config) -> tuple[float, float]:
    """GD from -rho z* + jitter on one instance (the escape runs' step, eta and length): the fractions of
    its ``cfg.diag_gd_chains`` runs still in B(-rho z*, r) and on the wrong side at the end."""
    inst = make_instances(setting, 1, tag="diag", first=index)
    gen = torch.Generator().manual_seed(derive_seed("gd-stall", index))
    z0 = initial(inst, "neg_star", cfg.diag_gd_chains, cfg.saddle_jitter, gen)
    z = simulate(inst, z0, cfg.escape_steps, cfg.escape_eta, None, gen, lambda t, z: None, every=cfg.escape_steps)
    d = distances(inst, z)
    return float((d["neg"] < cfg.radius).float().mean()), float((d["cos"] < 0).float().mean())


def landscape_diagnostic(cfg: Config, log: Log) -> list[dict]:
    """How far -rho z* is from a critical point, and rho from rho_d, as the expansion constant c grows.

    In the expected landscape (WDC constant -> 0) grad f(-rho_d z*) = 0. Instances are built one
    at a time (at c = 16, A alone is ~200 MB). rho = 0 (<A G(-z*), y> <= 0) is left out of the ratio.
    """
    rows = []
    for c in cfg.diag_expansions:
        setting = cfg.setting(cfg.diag_k, c)
        t0 = time.perf_counter()
        pairs = [landscape_instance(setting, i) for i in range(cfg.diag_instances)]
        ratios = [r for r, rho in pairs if rho > 0]
        rhos = [rho for _, rho in pairs]
        g = median_ci(ratios, seed=2)
        rh = median_ci(rhos, seed=3)
        n_d, m = setting.widths[-1], setting.m
        row = {"expansion": c, "widths": list(setting.widths), "n_d": n_d, "m": m,
               "rho_zero": sum(1 for rho in rhos if rho == 0), "ratios": ratios, "rhos": rhos,
               "grad_ratio": g, "rho": rh, "seconds": time.perf_counter() - t0, "A_megabytes": 4 * m * n_d / 1e6}
        if c in cfg.diag_gd_expansions:
            t1 = time.perf_counter()
            stall = [gd_stall_instance(setting, i, cfg) for i in range(cfg.diag_gd_instances)]
            row["gd_stay"] = [a for a, _ in stall]
            row["gd_wrong"] = [b for _, b in stall]
            row["gd_seconds"] = time.perf_counter() - t1
            log(f"  landscape c = {c:g}: GD from -rho z* still there after {cfg.escape_steps} steps: "
                f"{row['gd_stay']} ({row['gd_seconds']:.0f} s)")
        rows.append(row)
        log(f"  landscape c = {c:g} {list(setting.widths)}: grad ratio {g[0]:.3f} [{g[1]:.3f}, {g[2]:.3f}], "
            f"rho {rh[0]:.3f} [{rh[1]:.3f}, {rh[2]:.3f}] ({rows[-1]['seconds']:.0f} s)")
    return rows


def experiment_landscape(cfg: Config, log: Log) -> dict:
    rows = landscape_diagnostic(cfg, log)
    trend = slope_ci([r["n_d"] for r in rows], [r["ratios"] for r in rows], paired=False, seed=4)
    return {"rows": rows, "trend": trend, "rho_d": rn.expected_saddle_rho(cfg.depth)}


# ----------------------------------------------------------------------------- 3. t_eps in exact W2
def reference(loss_grad: LossGrad, star: torch.Tensor, k: int, beta: float, n: int, cfg: Config,
              seed: int) -> dict:
    """Three independent MALA samples of mu ~ exp(-beta f), n chains each, one draw per chain.

    "ref" (the reference) and "twin" start at z* + N(0, sigma^2 I), sigma = 1/sqrt(2 beta) (the
    Laplace width); "far" starts at distance ~``cfg.ref_far`` from z*. Each runs
    ``cfg.ref_time / cfg.ref_eta`` MALA steps. W2(ref, twin) is the estimator's floor at this n;
    W2(ref, far) at the floor says the burn-in forgot the start (within the basin of z*).
    """
    gen = torch.Generator().manual_seed(seed)
    count = star.shape[0]
    steps = math.ceil(cfg.ref_time / cfg.ref_eta)
    sigma = 1.0 / math.sqrt(2.0 * beta)
    out: dict = {}
    acc = []
    for name, scale in (("ref", sigma), ("twin", sigma), ("far", cfg.ref_far / math.sqrt(k))):
        z0 = star + scale * torch.randn(count, n, k, generator=gen)
        z, a = mala(loss_grad, z0, steps, cfg.ref_eta, beta, gen)
        out[name] = z
        acc.append(a)
    return {**out, "acceptance": acc, "steps": steps,
            "floor": exact_w2_batch(out["ref"], out["twin"]), "far_check": exact_w2_batch(out["ref"], out["far"]),
            "rms_spread": (out["ref"] - star).norm(dim=-1).pow(2).mean().sqrt().item()}


def teps_setting(cfg: Config, k: int, c: float, eps_list: tuple[float, ...], gd_eps: tuple[float, ...],
                 log: Log) -> dict:
    """Reference + t_eps runs (Langevin at eta = eps^2, and GD as a control) on one (k, c)."""
    setting = cfg.setting(k, c)
    inst = make_instances(setting, cfg.teps_instances, tag="teps")
    beta = cfg.beta(k)
    t0 = time.perf_counter()
    ref = reference(inst.loss_grad, inst.z_star, k, beta, cfg.teps_chains, cfg, derive_seed("ref", k, c))
    ref_seconds = time.perf_counter() - t0
    fl, far = median_ci(ref["floor"], seed=5), median_ci(ref["far_check"], seed=6)
    log(f"  t_eps {setting.label()}: MALA reference {ref['steps']} steps, acceptance "
        f"{min(ref['acceptance']):.2f}-{max(ref['acceptance']):.2f}, rms ||z - z*|| {ref['rms_spread']:.3f}, "
        f"floor W2(ref, twin) {fl[0]:.3f}, W2(ref, far start) {far[0]:.3f} ({ref_seconds:.0f} s)")
    point_mass = exact_w2_batch(inst.z_star.expand(-1, cfg.teps_chains, -1), ref["ref"])
    rows = []
    for eps in eps_list:
        for method in ("Langevin", "GD") if eps in gd_eps else ("Langevin",):
            eta = eps ** 2
            b = beta if method == "Langevin" else None
            cap = math.ceil((cfg.teps_time_cap if b else cfg.teps_gd_time_cap) / eta)
            gen = torch.Generator().manual_seed(derive_seed("teps", k, c, eps, method))
            z0 = initial(inst, "randn", cfg.teps_chains, 1.0, gen)
            t1 = time.perf_counter()
            tr = w2_trajectory(inst.loss_grad, z0, ref["ref"], eta, b, cap, eps, gen, inst.z_star, cfg.radius)
            final = tr["final"]
            d = distances(inst, final)["star"]
            f, _ = inst.loss_grad(final)
            outside = d >= 2 * cfg.radius
            wrong = distances(inst, final)["cos"] < 0
            reached = sum(1 for x in tr["t_eps"] if math.isfinite(x))
            med = median_ci(tr["t_eps"], seed=7)
            rows.append({
                "eps": eps, "eta": eta, "method": method, "cap": cap, "t_eps": tr["t_eps"], "median": med,
                "reached": reached, "t": tr["t"], "w2": tr["w2"], "steps_run": tr["t"][-1],
                "final_w2": tr["w2"][-1], "outside_final": float(outside.float().mean()),
                "outside_min_beta_f": (beta * f[outside]).min().item() if outside.any() else None,
                "wrong_final": float(wrong.float().mean()),
                "wrong_min_beta_f": (beta * f[wrong]).min().item() if wrong.any() else None,
                "ball_hit_median": hitting_median(tr["hit"].flatten().tolist()),
                "seconds": time.perf_counter() - t1})
            log(f"    {method:8s} eps {eps:g} (eta {eta:g}, cap {cap}): t_eps median {med[0]:g} "
                f"[{med[1]:g}, {med[2]:g}], {reached}/{inst.count} instances reached; final W2 median "
                f"{sorted(tr['w2'][-1])[len(tr['w2'][-1]) // 2]:.3f}, {100 * rows[-1]['outside_final']:.1f}% of chains "
                f"outside B(z*, {2 * cfg.radius:g}) ({rows[-1]['seconds']:.0f} s)")
    return {"k": k, "expansion": c, "widths": list(setting.widths), "m": setting.m, "beta": beta,
            "instances": inst.count, "chains": cfg.teps_chains, "ref_seconds": ref_seconds,
            "ref": {"acceptance": ref["acceptance"], "steps": ref["steps"], "floor": ref["floor"],
                    "far_check": ref["far_check"], "floor_ci": fl, "far_ci": far, "rms_spread": ref["rms_spread"],
                    "point_mass": point_mass, "point_mass_ci": median_ci(point_mass, seed=8)},
            "rows": rows}


def experiment_teps(cfg: Config, log: Log) -> dict:
    """t_eps vs eps on ``cfg.teps_eps_settings`` and vs k at eps = ``cfg.teps_k_eps``, with fitted exponents."""
    cache: dict[tuple[int, float], dict] = {}
    res: dict = {"eps": [], "k": None}
    for k, c, eps_list in cfg.teps_eps_settings:
        s = teps_setting(cfg, k, c, eps_list, tuple(sorted(eps_list)[:cfg.teps_gd_count]), log)
        cache[(k, c)] = s
        lg = [r for r in s["rows"] if r["method"] == "Langevin"]
        # censored instances count as inf; the median tolerates them while its CI stays finite (the mixing
        # verdict reports every censored instance)
        done = [r for r in lg if math.isfinite(r["median"][2])]
        s["fit_eps"] = [r["eps"] for r in done]
        s["theorem_exponent"] = theorem_exponent(s["fit_eps"] if len(done) >= 2 else eps_list)
        s["fit"] = slope_ci([1 / r["eps"] for r in done], [r["t_eps"] for r in done], paired=True, seed=9)
        ball = [r for r in lg if math.isfinite(r["ball_hit_median"])]  # early stops censor some chains
        s["ball_eps"] = [r["eps"] for r in ball]
        s["ball_slope"] = loglog_slope([1 / r["eps"] for r in ball], [r["ball_hit_median"] for r in ball])
        res["eps"].append(s)
    k_rows = []
    for k in cfg.teps_ks:
        key = (k, cfg.expansion)
        if key not in cache or all(r["eps"] != cfg.teps_k_eps for r in cache[key]["rows"]):
            cache[key] = teps_setting(cfg, k, cfg.expansion, (cfg.teps_k_eps,), (), log)
        s = cache[key]
        row = next(r for r in s["rows"] if r["eps"] == cfg.teps_k_eps and r["method"] == "Langevin")
        k_rows.append({"k": k, "widths": s["widths"], "ref": s["ref"], "row": row})
    done = [r for r in k_rows if math.isfinite(r["row"]["median"][2])]
    fit = slope_ci([r["k"] for r in done], [r["row"]["t_eps"] for r in done], paired=False, seed=10)
    res["k"] = {"eps": cfg.teps_k_eps, "eta": cfg.teps_k_eps ** 2, "expansion": cfg.expansion, "rows": k_rows,
                "fit": fit, "fit_k": [r["k"] for r in done]}
    return res
