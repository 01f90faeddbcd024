"""Pure statistics and selection on tidy row frames: bootstrap CIs, per-setting summaries,
the tuning choice (``select_best``), the composite ILO series and the failure table.

Imported by the sweep planner and the fairness command (``select_best``), so it stays free of
store loading, markdown and plotting: numpy, pandas and the task axes only.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench.report.axes import sort_by_difficulty

COMPOSITE_LABEL = "ILO (best of 3)"  # the variant chosen on the tuning images (what every other method gets)
COMPOSITE_TEST_LABEL = "ILO (best of 3, test-selected)"  # the paper's: chosen by mean test MSE (optimistic)
ILO_PAPER_VARIANT = "ilo_paper"  # ILO with the ILO paper's schedule: a candidate of the composite, not a grid point
# (method, variant) candidates of the composite ILO series, as in the paper: ILO tuned, ILO with the
# ILO paper's default schedule, ILO without regularisation (tuned).
ILO_CANDIDATES: tuple[tuple[str, str], ...] = (("ilo", "tuned"), ("ilo", "ilo_paper"), ("ilo_unreg", "tuned"))
METRICS = ("mse", "psnr", "lpips")
# Columns that identify one experimental setting; a summary is one line per combination.
SUMMARY_KEYS = ("stage", "prior", "image_set", "task", "level", "noise_sigma", "method", "variant", "params")
# What a tuning choice is made per (the sweep plans one eval cell per combination); each seed is a
# replicate of the whole protocol, so it is tuned on its own.
SELECT_KEYS = ("prior", "seed", "task", "level", "noise_sigma", "method")
ROW_DEFAULTS: dict[str, Any] = {
    "cell": "", "stage": "eval", "prior": "", "seed": 0, "image_set": "", "noise_sigma": 0.0, "variant": "default",
    "params": "{}", "image_id": None, "mse": math.nan, "psnr": math.nan, "lpips": math.nan, "lpips_status": "",
    "measurement_loss": math.nan, "nfe_generator": math.nan, "nfe_score": math.nan, "seconds": math.nan,
    "status": "ok", "reason": "",
}


def with_defaults(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with every column the statistics read (hand-made frames may omit some)."""
    df = df.copy()
    for col, val in ROW_DEFAULTS.items():
        if col not in df.columns:
            df[col] = val
    for col in ("prior", "image_set", "variant", "params", "status", "reason", "lpips_status"):
        df[col] = df[col].astype(object).fillna(ROW_DEFAULTS[col]).astype(str)
    df["noise_sigma"] = pd.to_numeric(df["noise_sigma"], errors="coerce").fillna(0.0)
    for col in ("level", *METRICS, "measurement_loss", "nfe_generator", "nfe_score", "seconds"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def bootstrap_ci(values: Iterable[float], n: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (NaNs ignored).

    Fixed seed and sorted values, so the interval depends only on the multiset of values: a
    regenerated report, or the same rows read in another order (another --out folder names the
    cells differently, so the store lists them in another order), gives identical numbers. The interval is clipped to
    [min, max] of the data (the mean can never lie outside it), which also makes a constant
    sample give exactly (c, c) despite floating-point rounding of the resampled means.
    Returns (nan, nan) for no data and (v, v) for a single value.
    """
    x = np.sort(np.asarray(list(values), dtype=float))
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


def present_keys(keys: Sequence[str], df: pd.DataFrame) -> list[str]:
    """The grouping keys that exist in ``df`` (hand-made frames may lack prior, noise_sigma...)."""
    return [k for k in keys if k in df.columns]


def summarize(rows: pd.DataFrame, keys: Sequence[str] = SUMMARY_KEYS, n_boot: int = 2000) -> pd.DataFrame:
    """One line per setting: n ok/failed, mean and 95% bootstrap CI of MSE, PSNR, LPIPS.

    Failed rows only add to ``n_failed``. ``lpips_note`` says "unavailable" (with the reason the
    runner recorded) when no ok row has an LPIPS value, so a NaN is never mistaken for a result.
    """
    keys = present_keys(keys, rows)
    out = []
    for key, g in rows.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        ok = ok_rows(g)
        rec: dict[str, Any] = dict(zip(keys, key))
        rec["n_ok"], rec["n_failed"] = int(len(ok)), int(len(g) - len(ok))
        rec["seeds"] = seed_list(g)
        for m in METRICS:
            vals = ok[m] if m in ok.columns else pd.Series(dtype=float)
            rec[f"{m}_mean"], rec[f"{m}_lo"], rec[f"{m}_hi"] = mean_ci(vals, n=n_boot)
        for extra in ("seconds", "nfe_generator", "nfe_score"):
            rec[f"{extra}_mean"] = float(ok[extra].mean()) if extra in ok.columns and len(ok) else math.nan
        rec["lpips_note"] = "" if np.isfinite(rec["lpips_mean"]) else _lpips_unavailable_reason(g)
        out.append(rec)
    cols = keys + ["n_ok", "n_failed", "seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "lo", "hi")] + [
        "seconds_mean", "nfe_generator_mean", "nfe_score_mean", "lpips_note"]
    return pd.DataFrame(out, columns=cols)


def seed_list(g: pd.DataFrame) -> str:
    """The seeds a summary line pools, e.g. "0,1": with per-seed tuning, one method's "tuned" variant
    can be one line per chosen grid point, and this says which seeds each line holds."""
    if "seed" not in g.columns:
        return ""
    return ",".join(str(int(s)) for s in sorted(g["seed"].dropna().unique()))


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


def selection_note(ranked: pd.DataFrame, n_all: int) -> str:
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
    df = with_defaults(tune_rows_df)
    if "stage" in tune_rows_df.columns:
        df = df[df["stage"] == "tune"]
    df = df[df["variant"] != ILO_PAPER_VARIANT]  # tuned on the tuning images for the composite, not a grid point
    keys = present_keys(SELECT_KEYS, df)
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
        rec |= {"n_candidates": int(len(cands)), "note": selection_note(ranked, len(cands))}
        out.append(rec)
    return sort_by_difficulty(pd.DataFrame(out, columns=cols))


def ilo_composite_test_selected(eval_rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's "ILO" series: per (image set, task, level) the best of the three ILO variants by their
    mean on the very images they are reported on (optimistic: kept, labelled COMPOSITE_TEST_LABEL).

    Returns (choices, rows): ``choices`` has one line per (prior, image_set, task, level,
    noise_sigma) with the winning "method/variant" and every candidate's mean MSE; ``rows`` are
    the winner's rows relabelled method=COMPOSITE_LABEL, variant=winner, so that they summarise
    and plot like any other method. Ranking as ``rank_candidates`` (lowest mean MSE on the set).
    """
    df = with_defaults(eval_rows)
    is_cand = pd.Series(False, index=df.index)
    for method, variant in ILO_CANDIDATES:
        is_cand |= (df["method"] == method) & (df["variant"] == variant)
    df = df[is_cand & (df["stage"] == "eval")].copy()
    keys = present_keys(("prior", "seed", "image_set", "task", "level", "noise_sigma"), df)
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
        note = selection_note(ranked, len(stats))
        if len(stats) < len(ILO_CANDIDATES):
            note += f"; only {len(stats)} of {len(ILO_CANDIDATES)} variants present"
        choices.append(rec | {"winner": best["variant"], "n_ok": best["n_ok"], "n_failed": best["n_failed"],
                              "mse_mean": best["mse_mean"], "note": note})
        win = g[(g["_cand"] == best["variant"]) & (g["params"] == best["params"])]
        rows.append(win.assign(method=COMPOSITE_TEST_LABEL, variant=best["variant"]))
    choice_df = pd.DataFrame(choices)
    choice_df = choice_df[keys + ["winner", "n_ok", "n_failed", "mse_mean", *cand_cols, "note"]]
    comp = pd.concat(rows, ignore_index=True).drop(columns="_cand") if rows else df.iloc[0:0].drop(columns="_cand")
    return sort_by_difficulty(choice_df), comp


def ilo_composite(eval_rows: pd.DataFrame, tune_rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The composite ILO series selected on the tuning images only: per (prior, seed, task, level, noise),
    the candidate (ILO tuned, ILO paper schedule, ILO-unregularized tuned) with the best tuning-image
    mean (``rank_candidates``); its eval rows relabelled method=COMPOSITE_LABEL. Same return shape as
    :func:`ilo_composite_test_selected` (the ``mse_*`` columns are the candidates' tuning means)."""
    keys = present_keys(("prior", "seed", "task", "level", "noise_sigma"), with_defaults(tune_rows))
    cand_cols = [f"mse_{m}/{v}" for m, v in ILO_CANDIDATES]
    cols = keys + ["winner", "n_ok", "n_failed", "mse_mean", *cand_cols, "note"]
    tune = with_defaults(tune_rows)
    tune = tune[tune["stage"] == "tune"] if "stage" in tune.columns else tune
    chosen = select_best(tune)
    chosen = chosen[chosen["method"].isin({m for m, _ in ILO_CANDIDATES})].assign(
        variant=lambda d: d["method"] + "/tuned")
    paper = tune[(tune["method"] == "ilo") & (tune["variant"] == ILO_PAPER_VARIANT)]
    paper_stats = candidate_stats(paper.assign(variant="ilo/" + ILO_PAPER_VARIANT), keys)
    cands = pd.concat([chosen, paper_stats], ignore_index=True)
    ev = with_defaults(eval_rows)
    ev = ev[ev["stage"] == "eval"] if "stage" in ev.columns else ev
    choices, rows = [], []
    for key, g in cands.groupby(keys, dropna=False, sort=False):
        base = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        rec = base | {c: math.nan for c in cand_cols} | {f"mse_{v}": m for v, m in zip(g["variant"], g["mse_mean"])}
        ranked = rank_candidates(g)
        if ranked.empty:
            choices.append(rec | {"winner": None, "n_ok": 0, "n_failed": int(g["n_failed"].sum()),
                                  "mse_mean": math.nan, "note": "no candidate succeeded"})
            continue
        best = ranked.iloc[0]
        note = selection_note(ranked, len(g)) + "; selected on the tuning images"
        if len(g) < len(ILO_CANDIDATES):
            note += f"; only {len(g)} of {len(ILO_CANDIDATES)} variants present"
        choices.append(rec | {"winner": best["variant"], "n_ok": best["n_ok"], "n_failed": best["n_failed"],
                              "mse_mean": best["mse_mean"], "note": note})
        method, variant = best["variant"].split("/")
        sel = (ev["method"] == method) & (ev["variant"] == ("tuned" if variant == "tuned" else variant))
        for k, v in base.items():
            sel &= (ev[k] == v) if not (isinstance(v, float) and math.isnan(v)) else ev[k].isna()
        rows.append(ev[sel].assign(method=COMPOSITE_LABEL, variant=best["variant"]))
    choice_df = pd.DataFrame(choices, columns=cols)
    comp = pd.concat(rows, ignore_index=True) if rows else ev.iloc[0:0]
    return sort_by_difficulty(choice_df), comp


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


# The references every method is compared with, image by image: ILO and CSGM tuned on the tuning images,
# the composite ILO selected on them, and SGILO at temperature 0 (the control isolating the score prior).
PAIRED_REFERENCES = ("ilo", COMPOSITE_LABEL, "csgm", "sgilo_t0")


def comparable_rows(eval_rows: pd.DataFrame) -> pd.DataFrame:
    """ok test rows of the tuned methods and the tune-selected composite, with a ``label`` column (the
    method; the composite's variant differs by seed, so it is labelled by name only)."""
    df = ok_rows(with_defaults(eval_rows))
    if "image_set" in df.columns and (df["image_set"] == "test").any():
        df = df[df["image_set"] == "test"]
    df = df[(df["variant"] == "tuned") | (df["method"] == COMPOSITE_LABEL)]
    return df.assign(label=df["method"])


def per_image_means(rows: pd.DataFrame) -> pd.Series:
    """MSE per image averaged over seeds (a seed is a replicate; images are the unit of the bootstrap)."""
    return rows.groupby("image_id")["mse"].mean().sort_index()


def paired_differences(eval_rows: pd.DataFrame, reference: str = "ilo", n_boot: int = 2000) -> pd.DataFrame:
    """Per (task, level) and method: the mean over shared test images of MSE(method) - MSE(reference)
    (each image's MSE first averaged over the seeds both share) with a paired bootstrap 95% CI (images
    resampled together), the win rate (share of images where the method is lower) and the number of
    seeds. Negative = better than the reference. Independent of row order (sorted by image)."""
    cols = ["task", "level", "method", "reference", "n", "seeds", "mean_diff", "ci_low", "ci_high", "win_rate"]
    df = comparable_rows(eval_rows)
    out = []
    for (task, level), g in df.groupby(["task", "level"], sort=False):
        ref_rows = g[g["label"] == reference]
        if ref_rows.empty:
            continue
        for label, mg in g.groupby("label", sort=True):
            if label == reference:
                continue
            seeds = sorted(set(mg["seed"]) & set(ref_rows["seed"]))
            both = pd.concat([per_image_means(mg[mg["seed"].isin(seeds)]).rename("m"),
                              per_image_means(ref_rows[ref_rows["seed"].isin(seeds)]).rename("r")], axis=1).dropna()
            d = (both["m"] - both["r"]).to_numpy()
            if len(d) == 0:
                continue
            lo, hi = bootstrap_ci(d, n=n_boot)
            out.append({"task": task, "level": level, "method": label, "reference": reference, "n": len(d),
                        "seeds": len(seeds), "mean_diff": float(d.mean()), "ci_low": lo, "ci_high": hi,
                        "win_rate": float((d < 0).mean())})
    return sort_by_difficulty(pd.DataFrame(out, columns=cols))


def paired_table(eval_rows: pd.DataFrame, references: Sequence[str] = PAIRED_REFERENCES,
                 n_boot: int = 2000) -> pd.DataFrame:
    """:func:`paired_differences` against every reference present, stacked (reference order kept)."""
    parts = [paired_differences(eval_rows, ref, n_boot) for ref in references]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else paired_differences(eval_rows.iloc[0:0], references[0])


def seed_spread(eval_rows: pd.DataFrame) -> pd.DataFrame:
    """Seed-to-seed spread of the tuned methods: per (task, level, method) the mean test MSE of each seed,
    their mean and standard deviation across seeds (one line per setting; empty with a single seed)."""
    cols = ["task", "level", "method", "seeds", "mse_by_seed", "mean_of_seeds", "sd_across_seeds"]
    df = comparable_rows(eval_rows)
    if df.empty or df["seed"].nunique() < 2:
        return pd.DataFrame(columns=cols)
    out = []
    for (task, level, label), g in df.groupby(["task", "level", "label"], sort=True):
        by_seed = g.groupby("seed")["mse"].mean().sort_index()
        out.append({"task": task, "level": level, "method": label, "seeds": len(by_seed),
                    "mse_by_seed": ", ".join(f"{s}: {v:.4g}" for s, v in by_seed.items()),
                    "mean_of_seeds": float(by_seed.mean()),
                    "sd_across_seeds": float(by_seed.std(ddof=1)) if len(by_seed) > 1 else math.nan})
    return sort_by_difficulty(pd.DataFrame(out, columns=cols))
