"""Figures of the Theorem 3.1 experiment: ``escape.png`` (escape runs and the landscape
diagnostic) and ``teps.png`` (W2 to mu vs time, t_eps vs eps and vs k with CIs)."""
from __future__ import annotations

import math
from pathlib import Path

from bench.experiments.theory.config import Config
from bench.experiments.theory.experiments import escape_key


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- 1. escape + landscape
def plot_escape(esc: dict, land: dict, cfg: Config, path: Path) -> None:
    plt = _plt()
    rows = cfg.escape_settings
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 3.4 * len(rows) + 0.6), squeeze=False)
    colors = {"GD": "tab:red", "Langevin": "tab:blue"}
    for row, (k, c) in enumerate(rows):
        for col, init in enumerate(("randn", "neg_star")):
            ax = axes[row][col]
            runs = {n: esc["runs"].get(f"{escape_key(k, c)}/{init}/{n}") for n in ("GD", "Langevin")}
            if runs["GD"] is None:
                ax.axis("off")
                ax.text(0.5, 0.5, f"k={k}, c={c:g}: random inits not run (cost)", ha="center", transform=ax.transAxes)
                continue
            for name, r in runs.items():
                ax.plot(r["t"], r["star"], color=colors[name], label=f"{name}: in B(z*, r)")
                ax.plot(r["t"], r["neg"], color=colors[name], ls="--", label=f"{name}: in B(-rho z*, r)")
                ax.plot(r["t"], r["wrong"], color=colors[name], ls=":", label=f"{name}: <z, z*> < 0")
            title = "random init" if init == "randn" else "init -rho z* + jitter"
            ax.set(title=f"widths {runs['GD']['widths']} (c={c:g}): {title}", xlabel="iteration",
                   ylabel="fraction of runs", ylim=(-0.02, 1.02))
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(0, cfg.escape_steps)
            ax.grid(alpha=0.3)
    _landscape_panel(axes[0][2], land, cfg)
    for r in range(1, len(rows)):
        axes[r][2].axis("off")
    handles, labels = axes[0][1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8)
    fig.suptitle(f"Escaping -rho z*: GD vs Langevin (beta = {cfg.C:g} k, eta = {cfg.escape_eta:g}, r = {cfg.radius:g})")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _landscape_panel(ax, land: dict, cfg: Config) -> None:
    rows = land["rows"]
    nd = [r["n_d"] for r in rows]
    for key, label, mk in (("grad_ratio", "||grad f(-rho z*)|| / typical (0 in theory)", "o"),
                           ("rho", "rho (ray minimiser)", "s")):
        mid = [r[key][0] for r in rows]
        ax.errorbar(nd, mid, yerr=[[m - r[key][1] for m, r in zip(mid, rows)], [r[key][2] - m for m, r in zip(mid, rows)]],
                    marker=mk, capsize=3, label=f"{label}: median, 95% CI")
    ax.axhline(land["rho_d"], color="gray", ls="--", label="rho_d (expected landscape)")
    ax.axhline(cfg.premise_grad_ratio, color="k", ls=":", label="'critical' threshold")
    for r in rows:
        ax.annotate(f"c={r['expansion']:g}", (r["n_d"], r["grad_ratio"][0]), fontsize=7)
    ax.set(xscale="log", xlabel="last width n_d", ylim=(0, None), title=f"landscape at k={cfg.diag_k}, d={cfg.depth}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


# ----------------------------------------------------------------------------- 2. t_eps
def plot_teps(te: dict, path: Path) -> None:
    plt = _plt()
    n = len(te["eps"])
    fig, axes = plt.subplots(1, n + 2, figsize=(5 * (n + 2), 4.3), squeeze=False)
    for ax, s in zip(axes[0], te["eps"]):
        _w2_panel(ax, s)
    _teps_eps_panel(axes[0][n], te)
    _teps_k_panel(axes[0][n + 1], te["k"])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _w2_panel(ax, s: dict) -> None:
    """Median over instances of W2(chains, reference) vs continuous time, one line per eps (and GD dashed)."""
    for r in s["rows"]:
        med = [sorted(w)[(len(w) - 1) // 2] for w in r["w2"]]
        line, = ax.plot([t * r["eta"] for t in r["t"]], med, ls="-" if r["method"] == "Langevin" else "--",
                        label=f"{r['method']} eps={r['eps']:g}")
        if r["method"] == "Langevin":
            ax.axhline(r["eps"], color=line.get_color(), ls=":", lw=0.8)
    ax.axhline(s["ref"]["floor_ci"][0], color="gray", ls="-.", label="W2 floor (reference vs twin)")
    ax.set(yscale="log", xlabel="continuous time eta t", ylabel="exact W2 to mu (median over instances)",
           title=f"k={s['k']}, c={s['expansion']:g}: dotted = eps")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)


def _log_axes(ax) -> None:
    """Log-log axes where something was plotted; otherwise say that every point was censored."""
    if ax.has_data():
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "every median censored (not mixed)", ha="center", transform=ax.transAxes)


def _errorbars(ax, xs, meds, label, marker="o"):
    fin = [(x, m) for x, m in zip(xs, meds) if math.isfinite(m[0])]
    if not fin:
        return
    ax.errorbar([x for x, _ in fin], [m[0] for _, m in fin],
                yerr=[[m[0] - m[1] for _, m in fin], [(m[2] if math.isfinite(m[2]) else 3 * m[0]) - m[0] for _, m in fin]],
                marker=marker, capsize=3, label=label)


def _teps_eps_panel(ax, te: dict) -> None:
    for s in te["eps"]:
        lg = [r for r in s["rows"] if r["method"] == "Langevin"]
        fit = s["fit"]
        _errorbars(ax, [r["eps"] for r in lg], [r["median"] for r in lg],
                   f"k={s['k']}, c={s['expansion']:g}: a={fit['slope'] if fit['slope'] is None else round(fit['slope'], 2)}")
        fin = [r for r in lg if math.isfinite(r["median"][0])]
        if fin:
            r0 = fin[0]
            th = lambda e: math.log(1 / e) / e ** 2
            ax.plot([r["eps"] for r in lg], [r0["median"][0] * th(r["eps"]) / th(r0["eps"]) for r in lg], "k:", lw=0.8)
    _log_axes(ax)
    ax.plot([], [], "k:", label="log(1/eps)/eps^2 (scaled)")
    ax.set(xlabel="eps (eta = eps^2)", ylabel="t_eps (steps): median, 95% CI",
           title="t_eps vs eps (open top = censored CI)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def _teps_k_panel(ax, kr: dict) -> None:
    rows = kr["rows"]
    _errorbars(ax, [r["k"] for r in rows], [r["row"]["median"] for r in rows], "Langevin, median, 95% CI")
    _log_axes(ax)
    ax2 = ax.twinx()
    ax2.plot([r["k"] for r in rows], [1 - r["row"]["reached"] / len(r["row"]["t_eps"]) for r in rows], "x:",
             color="tab:red", label="instances not mixed (right)")
    ax2.set(ylim=(-0.02, 1.02), ylabel="fraction of instances censored")
    fit = kr["fit"]
    ax.set(xlabel="latent dimension k", ylabel="t_eps (steps)",
           title=f"t_eps vs k at eps={kr['eps']:g}; b={fit['slope'] if fit['slope'] is None else round(fit['slope'], 2)}")
    ax.grid(alpha=0.3, which="both")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7)
