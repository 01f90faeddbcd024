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


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (binomial test of b vs Bin(b + c, 1/2))."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def bootstrap_mean_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95% CI of a mean (sorted input: independent of row order)."""
    from bench.report.stats import bootstrap_ci

    return bootstrap_ci(np.sort(np.asarray(values, dtype=float)), n=n_boot, seed=seed)


def per_image_correct(part: pd.DataFrame, col: str) -> pd.Series:
    """Correctness per image averaged over seeds (a seed is a replicate; images are the unit of every CI)."""
    ok = part.assign(_c=(part[col].to_numpy(dtype=np.int64) == part["label"].to_numpy(dtype=np.int64)).astype(float))
    return ok.groupby("image_id")["_c"].mean().sort_index()


def count_row(part: pd.DataFrame, col: str, n_failed: int, n_boot: int = 2000) -> dict[str, Any]:
    """n images, mean correct over seeds, accuracy and its 95% CI (Wilson for one seed; else a bootstrap over
    images of their seed-averaged correctness), and each seed's accuracy."""
    seeds = sorted(part["seed"].unique()) if "seed" in part.columns and len(part) else [0]
    per_img = per_image_correct(part, col) if len(part) else pd.Series(dtype=float)
    n = int(per_img.size)
    k = float(per_img.sum())
    if len(seeds) <= 1:
        lo, hi = wilson_ci(int(round(k)), n)
    else:
        lo, hi = bootstrap_mean_ci(per_img.to_numpy(), n_boot) if n else (math.nan, math.nan)
    by_seed = ", ".join(f"{float((g[col] == g['label']).mean()):.3f}" for _, g in part.groupby("seed")) \
        if len(seeds) > 1 else ""
    return {"n": n, "n_failed": n_failed, "seeds": len(seeds), "correct": k, "accuracy": k / n if n else math.nan,
            "ci_low": lo, "ci_high": hi, "accuracy_by_seed": by_seed}


def group_gap(ok: pd.DataFrame, col: str, groups: Sequence[str], n_boot: int = 2000, seed: int = 0
              ) -> tuple[float, float, float]:
    """Accuracy(group 0) - accuracy(group 1) and a bootstrap 95% CI (images resampled within each group)."""
    a = per_image_correct(ok[ok["group"] == groups[0]], col).to_numpy()
    b = per_image_correct(ok[ok["group"] == groups[1]], col).to_numpy()
    if not len(a) or not len(b):
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    diffs = rng.choice(a, (n_boot, len(a))).mean(1) - rng.choice(b, (n_boot, len(b))).mean(1)
    return (float(a.mean() - b.mean()), float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975)))


def fairness_table(per_image: pd.DataFrame, groups: Sequence[str], n_boot: int = 2000) -> pd.DataFrame:
    """Long-form table from per-image predictions.

    ``per_image`` has one row per (factor, method, seed, image) with columns factor, method, seed,
    params_source, group (name), label (group index), status ("ok"/"failed"), pred (single sample),
    ref_pred (the classifier on the original image), and for samplers samples (S > 1), pred_majority and
    agreement. Returns, per factor, method and vote ("single" and, for samplers, "majority of S"), one row
    per group and a "total" row: n images, n_failed, seeds, correct (mean over seeds), accuracy with its
    95% CI, accuracy per seed, preserved, mean agreement, and on the total row the group gap with its CI.
    """
    out: list[dict[str, Any]] = []
    df = per_image.copy()
    if "samples" not in df.columns:
        df["samples"] = 1
    if "seed" not in df.columns:
        df["seed"] = 0
    for (factor, method), sub in df.groupby(["factor", "method"], sort=False):
        ok = sub[sub["status"] == "ok"]
        S = int(sub["samples"].max())
        votes = [("single", "pred")] + ([(f"majority of {S}", "pred_majority")] if S > 1 else [])
        agreement = float(ok["agreement"].mean()) if S > 1 and len(ok) else math.nan
        for vote, col in votes:
            for g in [*groups, "total"]:
                part = ok if g == "total" else ok[ok["group"] == g]
                failed = sub[sub["status"] != "ok"]
                n_failed = len(failed) if g == "total" else int((failed["group"] == g).sum())
                row = count_row(part, col, n_failed, n_boot)
                preserved = float((part[col].to_numpy(dtype=np.int64) == part["ref_pred"].to_numpy(dtype=np.int64)).sum()
                                  / max(row["seeds"], 1))
                gap = group_gap(ok, col, groups, n_boot) if g == "total" and len(groups) == 2 else (math.nan,) * 3
                out.append({"factor": int(factor), "pixel_factor": int(factor) ** 2, "method": method,
                            "params_source": str(sub["params_source"].iloc[0]), "vote": vote, "samples": S,
                            "group": g, **row, "preserved": preserved, "agreement_mean": agreement,
                            "gap": gap[0], "gap_ci_low": gap[1], "gap_ci_high": gap[2]})
    return pd.DataFrame(out)


MAJORITY = "@majority"  # suffix of a paired side: the method's majority vote over its posterior samples


def _paired_side(ok: pd.DataFrame, spec: str) -> tuple[pd.DataFrame, str, str]:
    """A side of a paired comparison: ``"method"`` (its single-sample prediction) or ``"method@majority"``
    (its majority vote over S samples). Returns its rows, the prediction column and the label for the table."""
    if spec.endswith(MAJORITY):
        method = spec[:-len(MAJORITY)]
        rows = ok[ok["method"] == method]
        S = int(rows["samples"].max()) if len(rows) and "samples" in rows.columns else 1
        return rows, "pred_majority", f"{method} (majority of {S})"
    return ok[ok["method"] == spec], "pred", spec


def paired_comparisons(per_image: pd.DataFrame, pairs: Sequence[tuple[str, str]], n_boot: int = 2000
                       ) -> pd.DataFrame:
    """Method a vs method b on the same images, per factor: accuracies, their difference with a paired
    bootstrap 95% CI over images (each image's correctness averaged over the seeds both ran), and the exact
    McNemar test per seed (discordant counts a-only / b-only correct, p-value).

    A side is a method's single-sample prediction, or its majority vote with the ``@majority`` suffix.
    A side run with one seed only (the deterministic measurement-only baseline) is paired with every seed
    of the other side."""
    cols = ["factor", "a", "b", "n", "seeds", "acc_a", "acc_b", "diff", "ci_low", "ci_high", "mcnemar_by_seed"]
    ok = per_image[per_image["status"] == "ok"]
    if "seed" not in ok.columns:
        ok = ok.assign(seed=0)
    out = []
    for factor, sub in ok[ok["factor"] > 0].groupby("factor", sort=True):
        for a, b in pairs:
            (A, col_a, label_a), (B, col_b, label_b) = _paired_side(sub, a), _paired_side(sub, b)
            sa, sb = set(A["seed"]), set(B["seed"])
            if not sa or not sb or (col_a not in A.columns) or (col_b not in B.columns):
                continue
            A, B = (A.assign(seed=[sorted(sb)] * len(A)).explode("seed") if len(sa) == 1 < len(sb) else A,
                    B.assign(seed=[sorted(sa)] * len(B)).explode("seed") if len(sb) == 1 < len(sa) else B)
            seeds = sorted(set(A["seed"]) & set(B["seed"]))
            if not seeds:
                continue
            ca = per_image_correct(A[A["seed"].isin(seeds)], col_a)
            cb = per_image_correct(B[B["seed"].isin(seeds)], col_b)
            both = pd.concat([ca.rename("a"), cb.rename("b")], axis=1).dropna()
            d = (both["a"] - both["b"]).to_numpy()
            lo, hi = bootstrap_mean_ci(d, n_boot)
            tests = []
            for s in seeds:
                ja = A[A["seed"] == s].set_index("image_id")
                jb = B[B["seed"] == s].set_index("image_id")
                common = ja.index.intersection(jb.index)
                ra = ja.loc[common, col_a].to_numpy(dtype=np.int64) == ja.loc[common, "label"].to_numpy(dtype=np.int64)
                rb = jb.loc[common, col_b].to_numpy(dtype=np.int64) == jb.loc[common, "label"].to_numpy(dtype=np.int64)
                nb, nc = int((ra & ~rb).sum()), int((~ra & rb).sum())
                tests.append(f"seed {s}: {nb}/{nc}, p={mcnemar_exact(nb, nc):.3g}")
            out.append({"factor": int(factor), "a": label_a, "b": label_b, "n": len(d), "seeds": len(seeds),
                        "acc_a": float(both["a"].mean()), "acc_b": float(both["b"].mean()), "diff": float(d.mean()),
                        "ci_low": lo, "ci_high": hi, "mcnemar_by_seed": "; ".join(tests)})
    return pd.DataFrame(out, columns=cols)
