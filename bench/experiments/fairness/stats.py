"""Fairness statistics, pure functions: Wilson intervals, majority votes, sample agreement and
the long-form table from per-image predictions."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

Z95 = 1.959963984540054  # standard normal 97.5% quantile



def wilson_ci(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (NaNs for n = 0).

    Chosen over the normal approximation because it stays inside [0, 1] and keeps its coverage
    for small n and proportions near 0 or 1 (n = 64 per group, some methods near 100%)."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def majority_vote(preds: Any) -> np.ndarray:
    """[N, S] predictions -> [N]: the most frequent class per row.

    Ties go to the tied class that appears first in sample order; with two groups and an even
    S that is the first sample's prediction, so a tie never favours a fixed group."""
    p = np.asarray(preds)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"expected predictions [N, S] with S >= 1, got shape {p.shape}")
    out = np.empty(p.shape[0], dtype=np.int64)
    for i, row in enumerate(p):
        values, counts = np.unique(row, return_counts=True)
        tied = set(values[counts == counts.max()].tolist())
        out[i] = next(v for v in row.tolist() if v in tied)
    return out


def agreement_rate(preds: Any) -> np.ndarray:
    """[N, S] -> [N]: per image, the fraction of samples that agree with the majority vote."""
    p = np.asarray(preds)
    return (p == majority_vote(p)[:, None]).mean(axis=1)


def count_row(correct: np.ndarray, n_failed: int) -> dict[str, Any]:
    k, n = int(correct.sum()), int(correct.size)
    lo, hi = wilson_ci(k, n)
    return {"n": n, "n_failed": n_failed, "correct": k, "accuracy": k / n if n else math.nan, "ci_low": lo, "ci_high": hi}


def fairness_table(per_image: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """Long-form table from per-image predictions.

    ``per_image`` has one row per (factor, method, image) with columns factor, method,
    params_source, group (name), label (group index), status ("ok"/"failed"), pred (single
    sample), ref_pred (the classifier on the original image), and for samplers
    samples (S > 1), pred_majority and agreement (NaN/-1 otherwise). Returns, per factor,
    method and vote ("single" and, for samplers, "majority of S"), one row per group and a
    "total" row: n, n_failed, correct, accuracy, Wilson 95% CI, preserved, mean agreement.
    """
    out: list[dict[str, Any]] = []
    df = per_image.copy()
    if "samples" not in df.columns:
        df["samples"] = 1
    keys = ["factor", "method"]
    for (factor, method), sub in df.groupby(keys, sort=False):
        ok = sub[sub["status"] == "ok"]
        S = int(sub["samples"].max())
        votes = [("single", "pred")] + ([(f"majority of {S}", "pred_majority")] if S > 1 else [])
        agreement = float(ok["agreement"].mean()) if S > 1 and len(ok) else math.nan
        for vote, col in votes:
            for g in [*groups, "total"]:
                part = ok if g == "total" else ok[ok["group"] == g]
                failed = sub[sub["status"] != "ok"]
                n_failed = len(failed) if g == "total" else int((failed["group"] == g).sum())
                pred = part[col].to_numpy(dtype=np.int64)
                row = count_row(pred == part["label"].to_numpy(dtype=np.int64), n_failed)
                preserved = int((pred == part["ref_pred"].to_numpy(dtype=np.int64)).sum())
                out.append({"factor": int(factor), "pixel_factor": int(factor) ** 2, "method": method,
                            "params_source": str(sub["params_source"].iloc[0]), "vote": vote, "samples": S,
                            "group": g, **row, "preserved": preserved, "agreement_mean": agreement})
    return pd.DataFrame(out)


