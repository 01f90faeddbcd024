"""Figures of the Theorem 3.1 experiment: ``escape.png``, ``mixing.png`` and ``scaling.png``."""
from __future__ import annotations

import math
from pathlib import Path

from bench.experiments.theory.config import Config
from bench.experiments.theory.experiments import escape_key
from bench.priors import relu_net as rn


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_axis(ax, steps: int) -> None:
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, steps)


# ----------------------------------------------------------------------------- 1. escape
def plot_escape(res: dict, cfg: Config, path: Path) -> None:
    plt = _plt()
    rows = cfg.escape_settings
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 3.5 * len(rows) + 0.6), squeeze=False)
    colors = {"GD": "tab:red", "Langevin": "tab:blue"}
    for row, (k, c) in enumerate(rows):
        for col, init in enumerate(("randn", "neg_star")):
            ax = axes[row][col]
            for name in ("GD", "Langevin"):
                r = res["runs"][f"{escape_key(k, c)}/{init}/{name}"]
                ax.plot(r["t"], r["star"], color=colors[name], label=f"{name}: in B(z*, r)")
                ax.plot(r["t"], r["neg"], color=colors[name], ls="--", label=f"{name}: in B(-rho z*, r)")
                ax.plot(r["t"], r["wrong"], color=colors[name], ls=":", label=f"{name}: <z, z*> < 0 (wrong side)")
            title = "random init, ||z0|| ~ 1" if init == "randn" else f"init -rho z* + jitter {cfg.saddle_jitter:g}"
            widths = res["runs"][f"{escape_key(k, c)}/{init}/GD"]["widths"]
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
    panels = [lambda ax: _landscape_panel(ax, res["landscape"], cfg)]
    if res["C_sweep"]:
        panels.append(lambda ax: _temperature_panel(ax, res["C_sweep"]))
    panels.append(lambda ax: _per_instance_panel(ax, res, cfg))
    for i, ax in enumerate(axes):
        if i < len(panels):
            panels[i](ax)
            ax.grid(alpha=0.3)
        else:
            ax.axis("off")


def _landscape_panel(ax, lines: list[dict], cfg: Config) -> None:
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


def _temperature_panel(ax, cs: list[dict]) -> None:
    ax.plot([r["C"] for r in cs], [r["star_mid"] for r in cs], marker="o", label=f"in B(z*, r) at t={cs[0]['t_mid']}")
    ax.plot([r["C"] for r in cs], [r["star_final"] for r in cs], marker="o", label="in B(z*, r) at the end")
    ax.plot([r["C"] for r in cs], [r["wrong_final"] for r in cs], marker="s", label="wrong side at the end")
    ax.set(xscale="log", xlabel="C (beta = C k)", ylim=(-0.02, 1.02),
           title=f"Langevin from -rho z* (k={cs[0]['k']}, c={cs[0]['expansion']:g}): temperature")
    ax.legend(fontsize=7)


def _per_instance_panel(ax, res: dict, cfg: Config) -> None:
    k, c = cfg.escape_C_setting if res["C_sweep"] else cfg.escape_settings[-1]
    for off, name in ((-0.2, "GD"), (0.2, "Langevin")):
        vals = res["runs"][f"{escape_key(k, c)}/neg_star/{name}"]["per_instance_star"]
        ax.bar([i + off for i in range(len(vals))], vals, width=0.4, label=name,
               color="tab:red" if name == "GD" else "tab:blue")
    ax.set(xlabel="instance", ylabel="fraction in B(z*, r) at the end", ylim=(0, 1.02),
           title=f"per instance, from -rho z* (k={k}, c={c:g})")
    ax.legend(fontsize=7)


# ----------------------------------------------------------------------------- 2. mixing
def plot_mixing(res: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    _mixing_sw_panels(axes[0], axes[1], res)
    _bias_sw_panel(axes[2], res)
    _bias_spread_panel(axes[3], res)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mixing_sw_panels(ax_t, ax_eta_t, res: dict) -> None:
    """SW to the reference vs iteration, and vs continuous time eta t (with the fraction outside B(z*, 2r))."""
    for r in res["runs"]:
        line, = ax_t.plot([max(t, 0.5) for t in r["t"]], r["sw"], label=f"eta={r['eta']:g}")
        eta_t = [t * r["eta"] for t in r["t"]]
        ax_eta_t.plot(eta_t, r["sw"], color=line.get_color(), label=f"eta={r['eta']:g}")
        ax_eta_t.plot(eta_t, [o if o > 0 else math.nan for o in r["outside"]], color=line.get_color(), ls=":", alpha=0.7)
    for ax in (ax_t, ax_eta_t):
        ax.axhline(res["floor_ensemble"], color="gray", ls="--", label="estimator floor (reference vs itself)")
        ax.axhline(res["sigma_mu"], color="gray", ls="-.", label="1/sqrt(2 beta)")
        ax.set(yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_t.set(xscale="log", xlabel="iteration t", ylabel="sliced W2 to the reference law",
             title=f"law of z_t vs a long reference chain (k={res['k']})")
    ax_eta_t.set(xlabel="continuous time eta * t", ylabel="SW (solid); fraction outside B(z*, 2r) (dotted)",
                 title="against eta * t: the curves collapse")


def _bias_sw_panel(ax, res: dict) -> None:
    """Stationary bias: sliced W2 of the pooled samples vs eta, all runs and runs in the basin of z*."""
    etas = [r["eta"] for r in res["runs"]]
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
    # label the etas measured, not the log axis' minor ticks (they overlapped: 2x10^-2 3x10^-2 ...)
    from matplotlib.ticker import FixedLocator, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator(etas))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([f"{e:g}" for e in etas])
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def _bias_spread_panel(ax, res: dict) -> None:
    """Stationary bias: E||z - z*||^2 relative to the reference's vs eta, with its fitted line 1 + b eta."""
    etas = [r["eta"] for r in res["runs"]]
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


# ----------------------------------------------------------------------------- 3. scaling
def plot_scaling(res: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    _hitting_vs_eps_panel(axes[0], res)
    _hitting_vs_k_panel(axes[1], res)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _hitting_vs_eps_panel(ax, res: dict) -> None:
    """Median (IQR) Langevin hitting time vs eps, next to the theorem's log(1/eps)/eps^2 and 1/eps^2."""
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


def _hitting_vs_k_panel(ax, res: dict) -> None:
    """Median hitting time vs k (Langevin and GD), with the fraction never reaching the ball on a right axis."""
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
