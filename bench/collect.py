"""Collect a sweep's ResultStore into tables, Figure-3/Figure-9-style plots and a markdown report.

    python -m bench.collect SWEEP_DIR [--out OUT_DIR]      # default OUT_DIR = SWEEP_DIR/report

or ``collect(sweep_dir)`` at the end of a sweep. Everything is recomputed from the cell records,
so the report can be regenerated at any time (also mid-sweep: missing eval cells are reported
as pending, failed images are counted and never averaged).

The statistics are pure functions of data frames (``bootstrap_ci``, ``summarize``,
``select_best``, ``ilo_composite``) so that they can be unit-tested and imported by the sweep,
which uses ``select_best`` to plan the eval stage from the tuning rows.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

COMPOSITE_LABEL = "ILO (best of 3)"
# (method, variant) candidates of the composite ILO series, as in the paper: ILO tuned, ILO with the
# ILO paper's default schedule, ILO without regularisation (tuned).
ILO_CANDIDATES: tuple[tuple[str, str], ...] = (("ilo", "tuned"), ("ilo", "ilo_paper"), ("ilo_unreg", "tuned"))
MAIN_LABELS = {"csgm": "CSGM", "sgilo": "SGILO"}
METRICS = ("mse", "psnr", "lpips")
# Columns that identify one experimental setting; a summary is one line per combination.
SUMMARY_KEYS = ("stage", "prior", "image_set", "task", "level", "noise_sigma", "method", "variant", "params")
# What a tuning choice is made per (the sweep plans one eval cell per combination).
SELECT_KEYS = ("prior", "task", "level", "noise_sigma", "method")
TASK_ORDER = ("denoise", "cs", "inpaint", "inpaint_box", "superres", "colorize")
ROW_DEFAULTS: dict[str, Any] = {
    "cell": "", "stage": "eval", "prior": "", "image_set": "", "noise_sigma": 0.0, "variant": "default",
    "params": "{}", "image_id": None, "mse": math.nan, "psnr": math.nan, "lpips": math.nan, "lpips_status": "",
    "measurement_loss": math.nan, "nfe_generator": math.nan, "nfe_score": math.nan, "seconds": math.nan,
    "status": "ok", "reason": "",
}


class EmptyStoreError(RuntimeError):
    """The folder holds no finished cell (wrong path, or the sweep has not produced anything yet)."""


# ============================================================================ statistics (pure)
def bootstrap_ci(values: Iterable[float], n: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (NaNs ignored).

    Fixed seed so that a regenerated report gives identical numbers. The interval is clipped to
    [min, max] of the data (the mean can never lie outside it), which also makes a constant
    sample give exactly (c, c) despite floating-point rounding of the resampled means.
    Returns (nan, nan) for no data and (v, v) for a single value.
    """
    x = np.asarray(list(values), dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    lo_x, hi_x = float(x.min()), float(x.max())
    if x.size == 1 or lo_x == hi_x:
        return (lo_x, hi_x)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(np.clip(lo, lo_x, hi_x)), float(np.clip(hi, lo_x, hi_x)))


def mean_ci(values: Iterable[float], n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi) of the finite values; the one place a metric's mean and CI are computed."""
    x = np.asarray(list(values), dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    lo, hi = bootstrap_ci(x, n=n, seed=seed)
    return (float(x.mean()), lo, hi)


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that count in averages: status ok (failed images are counted, never averaged)."""
    return df[df["status"] == "ok"]


def _present(keys: Sequence[str], df: pd.DataFrame) -> list[str]:
    """The grouping keys that exist in ``df`` (hand-made frames may lack prior, noise_sigma...)."""
    return [k for k in keys if k in df.columns]


def summarize(rows: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS, n_boot: int = 2000) -> pd.DataFrame:
    """One line per setting: n ok/failed, mean and 95% bootstrap CI of MSE, PSNR, LPIPS.

    Failed rows only add to ``n_failed``. ``lpips_note`` says "unavailable" (with the reason the
    runner recorded) when no ok row has an LPIPS value, so a NaN is never mistaken for a result.
    """
    keys = _present(keys, rows)
    out = []
    for key, g in rows.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        ok = ok_rows(g)
        rec: dict[str, Any] = dict(zip(keys, key))
        rec["n_ok"], rec["n_failed"] = int(len(ok)), int(len(g) - len(ok))
        for m in METRICS:
            vals = ok[m] if m in ok.columns else pd.Series(dtype=float)
            rec[f"{m}_mean"], rec[f"{m}_lo"], rec[f"{m}_hi"] = mean_ci(vals, n=n_boot)
        for extra in ("seconds", "nfe_generator", "nfe_score"):
            rec[f"{extra}_mean"] = float(ok[extra].mean()) if extra in ok.columns and len(ok) else math.nan
        rec["lpips_note"] = "" if np.isfinite(rec["lpips_mean"]) else _lpips_unavailable_reason(g)
        out.append(rec)
    cols = keys + ["n_ok", "n_failed"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "lo", "hi")] + [
        "seconds_mean", "nfe_generator_mean", "nfe_score_mean", "lpips_note"]
    return pd.DataFrame(out, columns=cols)


def _lpips_unavailable_reason(g: pd.DataFrame) -> str:
    """"unavailable" plus the runner's reason (e.g. no backbone weights), for the table's LPIPS cell."""
    st = g.get("lpips_status")
    reasons = sorted({str(s) for s in st.dropna() if str(s) and str(s) != "ok"}) if st is not None else []
    return "unavailable" + (f" ({reasons[0][:120]})" if reasons else "")


def candidate_stats(rows: pd.DataFrame, group_keys: Sequence[str]) -> pd.DataFrame:
    """Per (group, variant, params): n_ok, n_failed, mean MSE and LPIPS over ok images."""
    keys = list(group_keys) + ["variant", "params"]
    recs = []
    for key, g in rows.groupby(keys, dropna=False, sort=False):
        ok = ok_rows(g)
        rec = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        rec.update(n_ok=int(len(ok)), n_failed=int(len(g) - len(ok)),
                   mse_mean=float(ok["mse"].mean()) if len(ok) else math.nan,
                   lpips_mean=float(ok["lpips"].mean()) if len(ok) and ok["lpips"].notna().any() else math.nan)
        recs.append(rec)
    return pd.DataFrame(recs, columns=keys + ["n_ok", "n_failed", "mse_mean", "lpips_mean"])


def rank_candidates(cands: pd.DataFrame) -> pd.DataFrame:
    """Candidates of one group, best first.

    Order: settings that succeeded on every image before those with failed images (a setting
    that diverges on one tuning image must not win on the mean of the rest), then lowest mean
    MSE, then lowest mean LPIPS (exact MSE ties; NaN last), then variant name (determinism).
    Candidates with no successful image are dropped.
    """
    c = cands[cands["n_ok"] > 0].copy()
    c["_incomplete"] = c["n_failed"] > 0
    c["_lpips"] = c["lpips_mean"].fillna(np.inf)
    c = c.sort_values(["_incomplete", "mse_mean", "_lpips", "variant", "params"], kind="mergesort")
    return c.drop(columns=["_incomplete", "_lpips"])


def _selection_note(ranked: pd.DataFrame, n_all: int) -> str:
    """Why the winner won, in words, so the report shows close calls and exclusions."""
    if ranked.empty:
        return "no candidate succeeded on any image"
    best = ranked.iloc[0]
    notes = []
    if len(ranked) > 1:
        second = ranked.iloc[1]
        if second["mse_mean"] == best["mse_mean"] and (second["n_failed"] > 0) == (best["n_failed"] > 0):
            same_lpips = second["lpips_mean"] == best["lpips_mean"] or (
                math.isnan(second["lpips_mean"]) and math.isnan(best["lpips_mean"]))
            notes.append("exact MSE and LPIPS tie, broken by variant name" if same_lpips else "MSE tie broken by LPIPS")
    n_incomplete = int((ranked["n_failed"] > 0).sum())
    if best["n_failed"] == 0 and n_incomplete:
        notes.append(f"{n_incomplete} candidate(s) with failed images ranked last")
    if best["n_failed"] > 0:
        notes.append("every candidate had failed images")
    if n_all > len(ranked):
        notes.append(f"{n_all - len(ranked)} candidate(s) failed on all images")
    return "; ".join(notes) or "lowest mean MSE"


def select_best(tune_rows_df: pd.DataFrame, include_unsuccessful: bool = False) -> pd.DataFrame:
    """The tuning choice per (prior, task, level, noise_sigma, method): the best (variant, params).

    Best = lowest mean MSE over the tuning images, exact ties broken by mean LPIPS where
    available; settings with failed images rank after complete ones (see ``rank_candidates``).
    Only rows with stage == "tune" are used when a ``stage`` column is present. ``params`` is
    the rows' JSON string (``json.loads`` gives the dict to plan with). A group where no
    candidate succeeded on any image has no choice: it is left out (the sweep's planner reports
    it as untuned), or, with ``include_unsuccessful`` (the report's view), kept with
    variant/params None and the reason in ``note``.
    """
    df = _with_defaults(tune_rows_df)
    if "stage" in tune_rows_df.columns:
        df = df[df["stage"] == "tune"]
    keys = _present(SELECT_KEYS, df)
    cols = keys + ["variant", "params", "n_ok", "n_failed", "mse_mean", "lpips_mean", "n_candidates", "note"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    stats = candidate_stats(df, keys)
    out = []
    for key, cands in stats.groupby(keys, dropna=False, sort=False):
        ranked = rank_candidates(cands)
        base = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        if ranked.empty:
            if not include_unsuccessful:
                continue
            rec = base | {"variant": None, "params": None, "n_ok": 0, "n_failed": int(cands["n_failed"].sum()),
                          "mse_mean": math.nan, "lpips_mean": math.nan}
        else:
            best = ranked.iloc[0]
            rec = base | {k: best[k] for k in ("variant", "params", "n_ok", "n_failed", "mse_mean", "lpips_mean")}
        rec |= {"n_candidates": int(len(cands)), "note": _selection_note(ranked, len(cands))}
        out.append(rec)
    return _sort_by_difficulty(pd.DataFrame(out, columns=cols))


def ilo_composite(eval_rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's "ILO" series: per (image set, task, level) the best of the three ILO variants.

    Returns (choices, rows): ``choices`` has one line per (prior, image_set, task, level,
    noise_sigma) with the winning "method/variant" and every candidate's mean MSE; ``rows`` are
    the winner's rows relabelled method=COMPOSITE_LABEL, variant=winner, so that they summarise
    and plot like any other method. Ranking as ``rank_candidates`` (lowest mean MSE on the set).
    """
    df = _with_defaults(eval_rows)
    is_cand = pd.Series(False, index=df.index)
    for method, variant in ILO_CANDIDATES:
        is_cand |= (df["method"] == method) & (df["variant"] == variant)
    df = df[is_cand & (df["stage"] == "eval")].copy()
    keys = _present(("prior", "image_set", "task", "level", "noise_sigma"), df)
    cand_cols = [f"mse_{m}/{v}" for m, v in ILO_CANDIDATES]
    if df.empty:
        return pd.DataFrame(columns=keys + ["winner", "n_ok", "n_failed", "mse_mean", *cand_cols, "note"]), df.iloc[0:0]
    df["_cand"] = df["method"] + "/" + df["variant"]
    choices, rows = [], []
    for key, g in df.groupby(keys, dropna=False, sort=False):
        base = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        stats = candidate_stats(g.assign(variant=g["_cand"]), [])
        ranked = rank_candidates(stats)
        rec = base | {f"mse_{c}": math.nan for c in (f"{m}/{v}" for m, v in ILO_CANDIDATES)}
        for _, s in stats.iterrows():
            rec[f"mse_{s['variant']}"] = s["mse_mean"]
        if ranked.empty:
            choices.append(rec | {"winner": None, "n_ok": 0, "n_failed": int(stats["n_failed"].sum()),
                                  "mse_mean": math.nan, "note": "no candidate succeeded"})
            continue
        best = ranked.iloc[0]
        note = _selection_note(ranked, len(stats))
        if len(stats) < len(ILO_CANDIDATES):
            note += f"; only {len(stats)} of {len(ILO_CANDIDATES)} variants present"
        choices.append(rec | {"winner": best["variant"], "n_ok": best["n_ok"], "n_failed": best["n_failed"],
                              "mse_mean": best["mse_mean"], "note": note})
        win = g[(g["_cand"] == best["variant"]) & (g["params"] == best["params"])]
        rows.append(win.assign(method=COMPOSITE_LABEL, variant=best["variant"]))
    choice_df = pd.DataFrame(choices)
    choice_df = choice_df[keys + ["winner", "n_ok", "n_failed", "mse_mean", *cand_cols, "note"]]
    comp = pd.concat(rows, ignore_index=True).drop(columns="_cand") if rows else df.iloc[0:0].drop(columns="_cand")
    return _sort_by_difficulty(choice_df), comp


def failure_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Failed images grouped by reason (first line, numbers kept): how many cells/rows, where."""
    bad = rows[rows["status"] != "ok"]
    cols = ["reason", "n_cells", "n_rows", "stages", "tasks", "methods"]
    if bad.empty:
        return pd.DataFrame(columns=cols)
    reason = bad["reason"].fillna("").astype(str).map(lambda r: (r.strip().splitlines() or ["(no reason)"])[0][:200])
    out = []
    for r, g in bad.assign(_reason=reason).groupby("_reason", sort=False):
        out.append({"reason": r, "n_cells": int(g["cell"].nunique()), "n_rows": int(len(g)),
                    "stages": ", ".join(sorted(map(str, g["stage"].unique()))),
                    "tasks": ", ".join(sorted(map(str, g["task"].unique()))),
                    "methods": ", ".join(sorted(map(str, (g["method"] + "/" + g["variant"]).unique())))})
    return pd.DataFrame(out, columns=cols).sort_values(["n_cells", "n_rows"], ascending=False, kind="mergesort")


# ============================================================================ tasks (axis meaning)
@dataclass(frozen=True)
class TaskAxis:
    """What a task's level means and which direction is harder (for labels and x-axis order)."""

    name: str
    level_meaning: str
    harder_when: str  # "lower" or "higher"

    def difficulty_key(self, level: float) -> float:
        """Sort key that increases with difficulty (so plots put harder problems to the right)."""
        return -float(level) if self.harder_when == "lower" else float(level)

    def hardest(self, levels: Iterable[float]) -> float:
        return max(levels, key=self.difficulty_key)

    def axis_label(self, width: int = 38) -> str:
        direction = "lower = harder" if self.harder_when == "lower" else "higher = harder"
        text = f"level: {self.level_meaning}"
        return textwrap.fill(text, width) + f"\n(ordered easy \u2192 hard; {direction})"


def task_axis(name: str) -> TaskAxis:
    """The registered task's level meaning; a neutral fallback for a task this checkout lacks."""
    try:
        import tasks

        t = tasks.get(name)
        return TaskAxis(name, t.level_meaning, t.harder_when)
    except Exception:  # noqa: BLE001 - an unknown task must not stop the report
        return TaskAxis(name, "task level (meaning unknown: task not registered)", "higher")


def task_sort_key(name: str) -> tuple[int, str]:
    """Paper order first (denoise, cs, inpaint, ...), then any other task alphabetically."""
    return (TASK_ORDER.index(name) if name in TASK_ORDER else len(TASK_ORDER), name)


def _sort_by_difficulty(df: pd.DataFrame) -> pd.DataFrame:
    """Stable order for tables: stage (tune, eval), task (paper order), level easy to hard, method."""
    if df.empty or "task" not in df.columns or "level" not in df.columns:
        return df.reset_index(drop=True)
    axes = {t: task_axis(t) for t in df["task"].unique()}
    stage_rank = {"tune": 0, "eval": 1}
    order = df.assign(
        _s=df["stage"].map(lambda s: stage_rank.get(s, 2)) if "stage" in df.columns else 0,
        _t=df["task"].map(lambda t: "%03d:%s" % task_sort_key(t)),
        _d=[axes[t].difficulty_key(lv) for t, lv in zip(df["task"], df["level"])])
    sort_cols = ["_s", "_t", "_d"] + [c for c in ("method", "variant") if c in df.columns]
    order = order.sort_values(sort_cols, kind="mergesort")
    return order.drop(columns=["_s", "_t", "_d"]).reset_index(drop=True)


# ============================================================================ loading
def _with_defaults(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with every column the statistics read (hand-made frames may omit some)."""
    df = df.copy()
    for col, val in ROW_DEFAULTS.items():
        if col not in df.columns:
            df[col] = val
    for col in ("prior", "image_set", "variant", "params", "status", "reason", "lpips_status"):
        df[col] = df[col].fillna(ROW_DEFAULTS[col]).astype(str)
    df["noise_sigma"] = pd.to_numeric(df["noise_sigma"], errors="coerce").fillna(0.0)
    for col in ("level", *METRICS, "measurement_loss", "nfe_generator", "nfe_score", "seconds"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """All (cell, image) rows as one tidy table, numeric columns numeric, missing ids filled."""
    df = _with_defaults(pd.DataFrame(rows))
    if df["image_id"].isna().any():  # failed rows have no image id: use the index in the set
        fill = df["image_set"] + ":" + df["image_index"].astype(str)
        df["image_id"] = df["image_id"].where(df["image_id"].notna(), fill)
    return df


def traces_frame(traces: list[dict[str, Any]], rows: pd.DataFrame) -> pd.DataFrame:
    """Per-image traces as one row per (cell, image, step), with elapsed seconds and NFE.

    Elapsed time at a trace step s is (s + 1) * seconds / n_steps, with the row's per-image
    seconds and n_steps = last step + 1 (one generator evaluation per step, so this is the time
    at which that evaluation finished; a +1 keeps the first point off zero). Elapsed NFE is
    (s + 1) * nfe_generator / n_steps in the same way.
    """
    cols = ["cell", "stage", "image_set", "prior", "noise_sigma", "task", "level", "method", "variant", "image_id",
            "status", "step", "loss", "ref_mse", "seconds_elapsed", "nfe_elapsed"]
    traces = [t for t in traces if t.get("steps")]
    if not traces:
        return pd.DataFrame(columns=cols)
    lengths = np.array([len(t["steps"]) for t in traces])
    meta = ("cell", "stage", "task", "level", "method", "variant", "image_id")
    df = pd.DataFrame({c: np.repeat(np.array([t.get(c) for t in traces], dtype=object), lengths) for c in meta})
    df["level"] = pd.to_numeric(df["level"], errors="coerce")
    df["step"] = np.concatenate([np.asarray(t["steps"], dtype=np.int64) for t in traces])
    for col in ("loss", "ref_mse"):  # ref_mse is None when the method had no reference image
        df[col] = np.concatenate([_float_array(t.get(col), n) for t, n in zip(traces, lengths)])
    info = rows[["cell", "image_id", "image_set", "prior", "noise_sigma", "status", "seconds", "nfe_generator"]]
    df = df.merge(info.drop_duplicates(["cell", "image_id"]), on=["cell", "image_id"], how="left")
    n_steps = df.groupby(["cell", "image_id"], dropna=False)["step"].transform("max") + 1
    df["seconds_elapsed"] = (df["step"] + 1) * df["seconds"] / n_steps
    df["nfe_elapsed"] = (df["step"] + 1) * df["nfe_generator"] / n_steps
    return df[cols]


def _float_array(values: Sequence[float | None] | None, n: int) -> np.ndarray:
    """A trace column as floats, None (or a missing column) as NaN."""
    if not values:
        return np.full(n, np.nan)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def load_store(sweep_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """(rows, traces, records) of a ResultStore folder; EmptyStoreError if there is nothing."""
    from bench.store import ResultStore

    root = Path(sweep_dir)
    if not root.is_dir():
        raise EmptyStoreError(f"{root}: no such folder")
    store = ResultStore(root)
    records = store.records()
    rows = [r for rec in records for r in rec.get("rows", [])]
    if not rows:
        raise EmptyStoreError(f"{root}: no finished cells (expected records under {store.cells_dir}); "
                              "nothing to collect yet")
    df = rows_frame(rows)
    return df, traces_frame(store.traces(), df), records


def plan_progress(sweep_dir: Path) -> list[str]:
    """One line per plan*.json: planned cells and how many have no record yet (mid-sweep reports)."""
    from bench.store import ResultStore, read_plan

    store, lines = ResultStore(sweep_dir), []
    for p in sorted(Path(sweep_dir).glob("plan*.json")):
        try:
            cells, _ = read_plan(p)
            lines.append(f"`{p.name}`: {len(cells)} planned cells, {len(store.pending(cells))} without a record yet")
        except Exception as err:  # noqa: BLE001 - a broken plan must not stop the report
            lines.append(f"`{p.name}`: unreadable ({type(err).__name__}: {err})")
    n_att = len(list(store.attempts_dir.glob("*.json"))) if store.attempts_dir.exists() else 0
    if n_att:
        lines.append(f"{n_att} failed attempt file(s) under `attempts/` (retries; final failures are counted below)")
    return lines


# ============================================================================ markdown
def fmt_num(x: Any) -> str:
    """4 significant digits; an en dash for missing values."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "\u2013" if not math.isfinite(v) else f"{v:.4g}"


def fmt_ci(mean: float, lo: float, hi: float) -> str:
    return "\u2013" if not np.isfinite(mean) else f"{fmt_num(mean)} [{fmt_num(lo)}, {fmt_num(hi)}]"


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency); pipes in cells are escaped."""
    if df.empty:
        return "_(none)_\n"
    cells = [[str(c) for c in df.columns]] + [[_md_cell(v) for v in row] for row in df.itertuples(index=False)]
    head = "| " + " | ".join(cells[0]) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join([head, sep, *body]) + "\n"


def _md_cell(v: Any) -> str:
    if isinstance(v, float):
        return fmt_num(v)
    return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")


def summary_markdown(summary: pd.DataFrame, show_params: bool = False) -> str:
    """The human view of a summary: one 'mean [95% CI]' cell per metric, LPIPS 'unavailable'."""
    if summary.empty:
        return "_(no rows)_\n"
    view = pd.DataFrame({
        **{k: summary[k] for k in ("prior", "image_set", "noise_sigma") if k in summary and summary[k].nunique() > 1},
        "task": summary["task"], "level": summary["level"].map(lambda v: f"{v:g}"),
        "method": summary["method"], "variant": summary["variant"],
        "n ok": summary["n_ok"], "n failed": summary["n_failed"],
        "MSE [95% CI]": [fmt_ci(*r) for r in summary[["mse_mean", "mse_lo", "mse_hi"]].to_numpy()],
        "PSNR dB [95% CI]": [fmt_ci(*r) for r in summary[["psnr_mean", "psnr_lo", "psnr_hi"]].to_numpy()],
        "LPIPS [95% CI]": [note.split(" (")[0] if note else fmt_ci(m, lo, hi) for m, lo, hi, note in
                           summary[["lpips_mean", "lpips_lo", "lpips_hi", "lpips_note"]].itertuples(index=False)],
        "s/image": summary["seconds_mean"].map(fmt_num),
    })
    if show_params and "params" in summary.columns:
        view.insert(view.columns.get_loc("variant") + 1, "params", summary["params"].map(lambda p: textwrap.shorten(str(p), 70, placeholder="...")))
    return markdown_table(view)


# ============================================================================ the report
def _split_summary(summary: pd.DataFrame, stage: str) -> pd.DataFrame:
    return summary[summary["stage"] == stage].reset_index(drop=True) if not summary.empty else summary


def build_tables(rows: pd.DataFrame, n_boot: int = 2000) -> dict[str, pd.DataFrame]:
    """Every derived table of the report from the tidy rows (pure; no files)."""
    eval_rows = rows[rows["stage"] == "eval"]
    choices, comp_rows = ilo_composite(eval_rows)
    summary = _sort_by_difficulty(summarize(rows, n_boot=n_boot))
    comp_summary = _sort_by_difficulty(summarize(comp_rows, n_boot=n_boot)) if len(comp_rows) else summary.iloc[0:0]
    return {"summary": summary, "composite_summary": comp_summary, "ilo_choices": choices,
            "tuning_choices": select_best(rows, include_unsuccessful=True), "failures": failure_table(rows)}


def collect(sweep_dir: str | Path, out_dir: str | Path | None = None, n_boot: int = 2000) -> dict[str, Path]:
    """Write tables, figures and report.md for a ResultStore folder; returns {name: path}.

    Raises EmptyStoreError when the folder has no finished cell.
    """
    from bench import plots

    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    rows, traces, records = load_store(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["rows_csv"] = _write_csv(rows, out / "rows.csv")
    if _has_pyarrow():
        rows.to_parquet(out / "rows.parquet", index=False)
        paths["rows_parquet"] = out / "rows.parquet"
    paths["traces_csv"] = _write_csv(traces, out / "traces.csv")

    t = build_tables(rows, n_boot=n_boot)
    full_summary = pd.concat([t["summary"], t["composite_summary"]], ignore_index=True)
    paths["summary_csv"] = _write_csv(full_summary, out / "summary.csv")
    paths["tuning_choices_csv"] = _write_csv(t["tuning_choices"], out / "tuning_choices.csv")
    paths["ilo_composite_csv"] = _write_csv(t["ilo_choices"], out / "ilo_composite.csv")
    paths["failures_csv"] = _write_csv(t["failures"], out / "failures.csv")
    paths["summary_md"] = out / "summary.md"
    paths["summary_md"].write_text(_summary_md_text(t))

    notes: list[str] = []
    fig_paths: dict[str, Path] = {}
    eval_summary = pd.concat([_split_summary(t["summary"], "eval"), t["composite_summary"]], ignore_index=True)
    if len(eval_summary):
        fig_paths |= _guarded("Figure 3", notes, plots.figure3, eval_summary, out, notes)
        fig_paths |= _guarded("speed figure", notes, plots.speed_figure, traces, t["ilo_choices"], out, notes)
    paths |= fig_paths
    paths["report_md"] = out / "report.md"
    paths["report_md"].write_text(_report_text(sweep_dir, rows, records, t, fig_paths, notes, out))
    return paths


def _guarded(name: str, notes: list[str], fn, *args) -> dict[str, Path]:
    """Run a figure function; a plotting error becomes a note (and stderr) instead of losing the tables."""
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - the report must still be written at the end of a sweep
        msg = f"{name} failed: {type(err).__name__}: {err}"
        print(f"bench.collect: {msg}", file=sys.stderr)
        notes.append(msg)
        return {}


def _has_pyarrow() -> bool:
    """Parquet only where pyarrow is installed (not a dependency of the harness)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    """CSV with 6 significant digits for floats (trace tables get long)."""
    df.to_csv(path, index=False, float_format="%.6g")
    return path


def _summary_md_text(t: dict[str, pd.DataFrame]) -> str:
    ev = pd.concat([_split_summary(t["summary"], "eval"), t["composite_summary"]], ignore_index=True)
    ev = _sort_by_difficulty(ev)
    return ("# Summary (mean [95% bootstrap CI of the mean] over images; failed images counted, not averaged)\n\n"
            "## Eval stage\n\n" + summary_markdown(ev)
            + "\n## Tuning stage\n\n" + summary_markdown(_split_summary(t["summary"], "tune"), show_params=True))


def _report_text(sweep_dir: Path, rows: pd.DataFrame, records: list[dict[str, Any]], t: dict[str, pd.DataFrame],
                 figs: dict[str, Path], notes: list[str], out: Path) -> str:
    """report.md: how to read, progress, figures, eval summary, ILO composite, tuning choices, failures."""
    n_cells_failed = sum(1 for r in records if r.get("status") != "ok")
    has_eval = (rows["stage"] == "eval").any()
    lines = [f"# SGILO benchmark report: `{sweep_dir}`", "",
             "**How to read.** Each number is a mean over images with a 95% percentile-bootstrap confidence "
             "interval of that mean (2000 resamples, seed 0). MSE is on the [-1, 1] image scale (lower is better), "
             "PSNR in dB (higher is better), LPIPS is perceptual distance (lower is better). x axes run from easy "
             "(left) to hard (right) whatever the level's numeric direction. \"ILO (best of 3)\" is, per task, "
             "level and image set, whichever of ILO tuned, ILO with the ILO paper's schedule and ILO-unregularized "
             "has the lowest mean test MSE (as in the paper); each variant is also kept under its own name. "
             "Failed images are counted (n failed) and excluded from means.", "",
             "## Progress", "",
             f"- {len(records)} cell records ({n_cells_failed} failed after retries), {len(rows)} image rows "
             f"({int((rows['status'] != 'ok').sum())} failed).",
             f"- stages present: {', '.join(sorted(rows['stage'].unique()))}."]
    lines += [f"- {p}" for p in plan_progress(sweep_dir)]
    if not has_eval:
        lines += ["", "> **Eval stage pending**: only tuning rows so far. The tuning choices below are what the "
                      "eval stage will run; no test-set figures yet."]
    lines += [f"- note: {n}" for n in notes]
    if not _has_pyarrow():
        lines.append("- rows.parquet not written (pyarrow not installed); rows.csv has the same table.")
    if has_eval:
        lines += ["", "## Figures", ""]
        for name, p in figs.items():
            if p.suffix == ".png":
                lines += [f"![{name}]({p.relative_to(out).as_posix()})", ""]
        lines += ["## Eval summary (test/eval image sets)", "",
                  summary_markdown(_sort_by_difficulty(pd.concat([_split_summary(t["summary"], "eval"),
                                                                  t["composite_summary"]], ignore_index=True))),
                  "## Composite ILO: winning variant per task and level", "",
                  markdown_table(_level_str(t["ilo_choices"]))]
    lines += ["## Tuning choices (lowest mean tuning MSE; exact ties broken by LPIPS)", "",
              markdown_table(_level_str(t["tuning_choices"])),
              "## Failures (grouped by reason)", "", markdown_table(t["failures"]),
              "Files: `rows.csv` (every row), `traces.csv` (one row per cell, image and step), `summary.csv`/"
              "`summary.md` (all stages), `tuning_choices.csv`, `ilo_composite.csv`, `failures.csv`.", ""]
    return "\n".join(lines)


def _level_str(df: pd.DataFrame) -> pd.DataFrame:
    """Levels as compact strings for markdown (0.02, not 0.0200)."""
    if df.empty or "level" not in df.columns:
        return df
    return df.assign(level=df["level"].map(lambda v: f"{v:g}"))


# ============================================================================ CLI
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit status 2 (with a message on stderr) when there is nothing to collect."""
    ap = argparse.ArgumentParser(prog="python -m bench.collect", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="ResultStore folder (holds cells/)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: SWEEP_DIR/report)")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for the 95%% CIs")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    try:
        paths = collect(args.sweep_dir, args.out, n_boot=args.n_boot)
    except EmptyStoreError as err:
        print(f"bench.collect: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
