"""Figures of the report: Figure-3-style quality vs difficulty, Figure-9-style MSE vs time/NFE.

Drawn from the summary tables of ``bench.report.tables`` (so the bands are the same bootstrap
CIs as the tables) with seaborn's theme and palette on matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; harmless if already selected
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.report.axes import TaskAxis, task_axis, task_sort_key  # noqa: E402
from bench.report.stats import COMPOSITE_LABEL  # noqa: E402

MAIN_LABELS = {"csgm": "CSGM", "sgilo": "SGILO"}
MAIN_ORDER = ("CSGM", COMPOSITE_LABEL, "SGILO")
MAX_SPEED_PANELS = 4  # with more (task, level) pairs, the speed plot shows each task's hardest level


# ============================================================================ series
def main_variants(df: pd.DataFrame) -> dict[str, str]:
    """For CSGM and SGILO: the eval variant that is "the method" (``tuned``, or the only one)."""
    out = {}
    for method in MAIN_LABELS:
        vs = sorted(df.loc[df["method"] == method, "variant"].unique())
        if "tuned" in vs:
            out[method] = "tuned"
        elif len(vs) == 1:
            out[method] = vs[0]
    return out


def series_labels(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(label, is_main) per row: CSGM, ILO (best of 3), SGILO are main; other variants are raw."""
    mains = main_variants(df)
    labels, is_main = [], []
    for m, v in zip(df["method"], df["variant"]):
        if m == COMPOSITE_LABEL:
            labels.append(COMPOSITE_LABEL), is_main.append(True)
        elif mains.get(m) == v:
            labels.append(MAIN_LABELS[m]), is_main.append(True)
        else:
            labels.append(variant_label(m, v)), is_main.append(False)
    return pd.Series(labels, index=df.index), pd.Series(is_main, index=df.index)


VARIANT_NAMES = {"tuned": "tuned", "ilo_paper": "paper schedule"}


def variant_label(method: str, variant: str) -> str:
    """A raw series' legend entry in display names, e.g. "ILO (paper schedule)", "ILO-unreg. (tuned)"."""
    from bench.report.recon_grid import display_name

    return f"{display_name(method)} ({VARIANT_NAMES.get(variant, variant)})"


def palette(labels: list[str]) -> dict[str, Any]:
    """Fixed colours: the three main methods always get the same ones; raw variants the rest."""
    raw = sorted(set(labels) - set(MAIN_ORDER))
    colors = sns.color_palette("colorblind", 10)
    raw_colors = colors[4:] + colors[3:4]  # skip vermillion (index 3) first: too close to ILO's orange
    out = {lab: colors[i] for i, lab in enumerate(MAIN_ORDER)}
    out |= {lab: raw_colors[i % len(raw_colors)] for i, lab in enumerate(raw)}
    return out


def pick_image_set(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The test set when present (Figure 3 is on the 30 test images), else all non-fairness sets."""
    sets = set(df["image_set"]) if "image_set" in df.columns else set()
    if "test" in sets:
        if len(sets) > 1:
            notes.append(f"figures use the 'test' image set; {sorted(sets - {'test'})} are in the tables only")
        return df[df["image_set"] == "test"]
    keep = df[df["image_set"] != "fairness"] if "image_set" in df.columns else df
    if len(keep) and sets:
        notes.append(f"no 'test' image set among eval rows; figures use {sorted(set(keep['image_set']))}")
    return keep if len(keep) else df


def figure_groups(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One figure per (prior, noise_sigma); a file-name suffix only when there is more than one."""
    keys = [k for k in ("prior", "noise_sigma") if k in df.columns]
    groups = list(df.groupby(keys, dropna=False, sort=True)) if keys else [((), df)]
    if len(groups) <= 1:
        return [("", df)]
    out = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        out.append(("_" + "_".join(f"{k}-{v}" for k, v in zip(keys, key)), g))
    return out


def _fig_width(n_panels: int) -> float:
    """Inches: 3.4 per panel, but never so narrow that the title and legend get clipped."""
    return max(3.4 * n_panels + 0.6, 7.5)


def _legend_cols(width: float, n_entries: int) -> int:
    """Legend columns that fit the figure width (about 2.3 inches per entry)."""
    return max(1, min(n_entries, int(width // 2.3)))


def _ordered_tasks(df: pd.DataFrame) -> list[str]:
    return sorted(df["task"].unique(), key=task_sort_key)


def _positions(axis: TaskAxis, levels: list[float]) -> dict[float, int]:
    """Evenly spaced x positions ordered from easy (left) to hard (right)."""
    return {lv: i for i, lv in enumerate(sorted(set(levels), key=axis.difficulty_key))}


# ============================================================================ Figure 3
def figure3(eval_summary: pd.DataFrame, out: Path, notes: list[str], show_raw: bool = True) -> dict[str, Path]:
    """MSE (log y) and LPIPS vs difficulty, one column per task, one line per method; PNG + PDF.

    Main methods are solid lines with 95% CI bands; raw ILO variants (and any other variant)
    dashed without bands. A task with one level is drawn as points with CI error bars.
    """
    sns.set_theme(style="whitegrid", context="paper")
    df = pick_image_set(eval_summary, notes).copy()
    df["label"], df["is_main"] = series_labels(df)
    if not show_raw:
        df = df[df["is_main"]]
    paths: dict[str, Path] = {}
    for suffix, g in figure_groups(df):
        fig = _figure3_one(g, suffix, notes)
        stem = out / f"figure3_quality{suffix}"
        for ext in ("png", "pdf"):
            fig.savefig(stem.with_suffix(f".{ext}"), dpi=150)
            fig.set_layout_engine("none")  # keep the layout of the first save: halves the drawing time
            paths[f"figure3{suffix}_{ext}"] = stem.with_suffix(f".{ext}")
        plt.close(fig)
    return paths


def _figure3_one(df: pd.DataFrame, suffix: str, notes: list[str]):
    """One Figure-3 figure for one (prior, noise_sigma) group."""
    tasks_ = _ordered_tasks(df)
    metrics = [("mse", "MSE (log scale; lower is better)")]
    lpips_ok = np.isfinite(df["lpips_mean"]).any()
    if lpips_ok:
        metrics.append(("lpips", "LPIPS (lower is better)"))
    else:
        notes.append(f"LPIPS unavailable for every eval row{suffix}: LPIPS panels omitted")
    colors = palette(list(df["label"].unique()))
    width = _fig_width(len(tasks_))
    fig, axes = plt.subplots(len(metrics), len(tasks_), figsize=(width, 2.9 * len(metrics) + 1.6), squeeze=False,
                             layout="constrained")
    for c, task in enumerate(tasks_):
        axis = task_axis(task)
        tdf = df[df["task"] == task]
        pos = _positions(axis, list(tdf["level"]))
        for r, (metric, ylabel) in enumerate(metrics):
            ax = axes[r][c]
            _draw_series(ax, tdf, metric, pos, colors)
            ax.set_xticks(list(pos.values()), [f"{lv:g}" for lv in pos])
            ax.set_xlim(-0.4, max(len(pos) - 1, 0) + 0.4)
            if metric == "mse":
                ax.set_yscale("log")
                ax.set_title(task, fontsize=11, fontweight="bold")
            if c == 0:
                ax.set_ylabel(ylabel)
            if r == len(metrics) - 1:
                ax.set_xlabel(axis.axis_label(), fontsize=7)
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = [lab for lab in MAIN_ORDER if lab in handles] + sorted(set(handles) - set(MAIN_ORDER))
    fig.legend([handles[k] for k in order], order, loc="outside lower center", ncol=_legend_cols(width, len(order)),
               fontsize=8)
    title = "Reconstruction quality vs task difficulty\n(mean over test images, 95% bootstrap CI)"
    if not lpips_ok:
        title += "\nLPIPS unavailable: LPIPS panels omitted"
    fig.suptitle(title + (f"  [{suffix.strip('_')}]" if suffix else ""), fontsize=10)
    return fig


def _draw_series(ax, tdf: pd.DataFrame, metric: str, pos: dict[float, int], colors: dict[str, Any]) -> None:
    """Lines + CI bands for main series, dashed lines for raw ones, points + error bars if one level."""
    labels = list(dict.fromkeys(tdf["label"]))
    for k, (label, s) in enumerate(tdf.groupby("label", sort=False)):
        s = s[np.isfinite(s[f"{metric}_mean"])]
        s = s.sort_values("n_ok", ascending=False).drop_duplicates("level")
        if s.empty:
            continue
        s = s.assign(x=s["level"].map(pos)).sort_values("x")
        x, y = s["x"].to_numpy(float), s[f"{metric}_mean"].to_numpy(float)
        lo, hi = s[f"{metric}_lo"].to_numpy(float), s[f"{metric}_hi"].to_numpy(float)
        main = bool(s["is_main"].iloc[0])
        color = colors[label]
        if len(s) == 1:  # one level: a point with its CI, no line to suggest a trend; dodged to stay visible
            x = x + 0.5 * (k - (len(labels) - 1) / 2) / max(len(labels), 1)
            ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o" if main else "s", color=color, capsize=3,
                        markersize=6 if main else 4, alpha=1.0 if main else 0.7, label=label)
            continue
        ax.plot(x, y, marker="o" if main else "s", linestyle="-" if main else "--", linewidth=2 if main else 1.5,
                markersize=4 if main else 3, color=color, alpha=1.0 if main else 0.9, label=label)
        if main:
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


# ============================================================================ Figure 9
def speed_panels(traces: pd.DataFrame) -> list[tuple[str, float]]:
    """(task, level) panels: all of them if few, else the hardest level of each task."""
    pairs = sorted({(t, float(lv)) for t, lv in zip(traces["task"], traces["level"])},
                   key=lambda p: (task_sort_key(p[0]), task_axis(p[0]).difficulty_key(p[1])))
    if len(pairs) <= MAX_SPEED_PANELS:
        return pairs
    out = []
    for task in sorted({p[0] for p in pairs}, key=task_sort_key):
        axis = task_axis(task)
        out.append((task, axis.hardest([lv for t, lv in pairs if t == task])))
    return out


def speed_series(traces: pd.DataFrame, ilo_choices: pd.DataFrame) -> pd.DataFrame:
    """Eval traces of the main series, labelled; the composite ILO uses the winning variant's traces."""
    mains = main_variants(traces)
    parts = [traces[(traces["method"] == m) & (traces["variant"] == v)].assign(label=MAIN_LABELS[m])
             for m, v in mains.items()]
    if not ilo_choices.empty:
        keys = [k for k in ("prior", "image_set", "task", "level", "noise_sigma") if k in ilo_choices.columns]
        win = ilo_choices.dropna(subset=["winner"])[keys + ["winner"]]
        cand = traces.assign(winner=traces["method"] + "/" + traces["variant"])
        parts.append(cand.merge(win, on=keys + ["winner"]).drop(columns="winner").assign(label=COMPOSITE_LABEL))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else traces.iloc[0:0].assign(label=[])


def speed_figure(traces: pd.DataFrame, ilo_choices: pd.DataFrame, out: Path, notes: list[str]) -> dict[str, Path]:
    """Reference MSE vs wall seconds (top) and vs generator evaluations (bottom), median + IQR."""
    sns.set_theme(style="whitegrid", context="paper")
    if traces.empty:
        notes.append("no traces recorded: speed figure skipped")
        return {}
    tr = traces[(traces["stage"] == "eval") & (traces["status"] == "ok") & np.isfinite(traces["ref_mse"])]
    tr = pick_image_set(tr, []) if len(tr) else tr
    if tr.empty:
        notes.append("no eval traces with reference MSE: speed figure skipped")
        return {}
    paths: dict[str, Path] = {}
    for suffix, g in figure_groups(tr):
        s = speed_series(g, ilo_choices)
        if s.empty:
            notes.append(f"no CSGM/ILO/SGILO eval traces{suffix}: speed figure skipped")
            continue
        fig = _speed_one(s, suffix)
        path = out / f"figure9_speed{suffix}.png"
        fig.savefig(path, dpi=150)
        plt.close(fig)
        paths[f"figure9{suffix}_png"] = path
    return paths


def _speed_one(s: pd.DataFrame, suffix: str):
    panels = speed_panels(s)
    colors = palette(list(s["label"].unique()))
    width = _fig_width(len(panels))
    fig, axes = plt.subplots(2, len(panels), figsize=(width, 6.4), squeeze=False, layout="constrained")
    for c, (task, level) in enumerate(panels):
        p = s[(s["task"] == task) & (s["level"] == level)]
        for r, (xcol, xlabel) in enumerate([("seconds_elapsed", "wall seconds per image"),
                                            ("nfe_elapsed", "generator evaluations (NFE)")]):
            ax = axes[r][c]
            for label in [lab for lab in MAIN_ORDER if lab in set(p["label"])]:
                q = _median_iqr(p[p["label"] == label], xcol)
                if q.empty:
                    continue
                ax.plot(q["x"], q["median"], color=colors[label], linewidth=1.6, label=label)
                ax.fill_between(q["x"], q["q25"], q["q75"], color=colors[label], alpha=0.2, linewidth=0)
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel("reference MSE of the iterate")
            if r == 0:
                axis = task_axis(task)
                ax.set_title(f"{task}, level {level:g}\n({'lower' if axis.harder_when == 'lower' else 'higher'}"
                             f" = harder)", fontsize=9)
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = [lab for lab in MAIN_ORDER if lab in handles]
    fig.legend([handles[k] for k in order], order, loc="outside lower center", ncol=_legend_cols(width, len(order)),
               fontsize=8)
    fig.suptitle("Speed: reference MSE during optimisation\n(median over test images; band: interquartile range)"
                 + (f"  [{suffix.strip('_')}]" if suffix else ""), fontsize=10)
    return fig


def _median_iqr(p: pd.DataFrame, xcol: str) -> pd.DataFrame:
    """Per step: median x over images, and median/quartiles of the reference MSE over images."""
    p = p[np.isfinite(p[xcol])]
    if p.empty:
        return pd.DataFrame(columns=["x", "median", "q25", "q75"])
    g = p.groupby("step")
    return pd.DataFrame({"x": g[xcol].median(), "median": g["ref_mse"].median(),
                         "q25": g["ref_mse"].quantile(0.25), "q75": g["ref_mse"].quantile(0.75)}).reset_index(drop=True)


__all__ = ["figure3", "main_variants", "series_labels", "speed_figure", "speed_panels"]


# ============================================================================ paired differences


def paired_figure(paired: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Mean per-image MSE difference to each reference (one row of panels per reference: ILO tuned, the
    tune-selected composite ILO, CSGM, SGILO T = 0), paired 95% CI, per task (panels) and level (x, easy
    to hard); below zero = better than the reference on the same test images."""
    from bench.report.recon_grid import display_name

    if paired.empty:
        return {}
    sns.set_theme(style="whitegrid", context="paper")
    tasks = _ordered_tasks(paired)
    refs = list(dict.fromkeys(paired["reference"]))
    width = _fig_width(len(tasks))
    fig, axes = plt.subplots(len(refs), len(tasks), figsize=(width, 2.9 * len(refs) + 0.4), squeeze=False)
    colors = sns.color_palette("colorblind", 10)
    methods = sorted(paired["method"].unique())
    for row, ref in zip(axes, refs):
        for ax, task in zip(row, tasks):
            sub = paired[(paired["task"] == task) & (paired["reference"] == ref)]
            axis = task_axis(task)
            pos = _positions(axis, sorted(paired.loc[paired["task"] == task, "level"].unique()))
            for k, m in enumerate(methods):
                s = sub[sub["method"] == m]
                if s.empty:
                    continue
                x = np.array([pos[lv] for lv in s["level"]]) + (k - (len(methods) - 1) / 2) * 0.1
                ax.errorbar(x, s["mean_diff"], yerr=[s["mean_diff"] - s["ci_low"], s["ci_high"] - s["mean_diff"]],
                            fmt="o-", color=colors[methods.index(m) % 10], label=display_name(m), capsize=3, ms=4)
            ax.axhline(0, color="black", lw=0.8)
            ax.set_xticks(list(pos.values()), [f"{lv:g}" for lv in pos])
            ax.set_title(f"{task} vs {display_name(ref)}", fontsize=9)
            ax.set_xlim(-0.5, len(pos) - 0.5)
            ax.set_xlabel(textwrap.fill(axis.short_meaning, 40), fontsize=8)
        row[0].set_ylabel(f"MSE(method) - MSE({display_name(ref)})\nper image (mean, paired 95% CI)", fontsize=8)
    handles: dict = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=_legend_cols(width, len(handles)),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.6 / (2.9 * len(refs) + 0.4), 1, 1))
    path = out / "paired_differences.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return {"paired_png": path}
