"""The paper's claim as a question with an answer per cell: at the scarcest measurement levels of each task, is
SGILO's test MSE lower than each reference's (ILO, the tune-selected ILO composite, CSGM, SGILO at T = 0)?

Read off the paired differences (bench.report.stats.paired_table): the verdict of a cell is decided by its
paired bootstrap 95% CI alone, so it can come out either way and says "not resolved" when the CI spans 0.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from bench.report.axes import task_axis
from bench.report.stats import PAIRED_REFERENCES

CLAIM_COLUMNS = ["task", "level", "reference", "n", "seeds", "mean_diff", "ci_low", "ci_high", "win_rate", "verdict"]


def verdict(ci_low: float, ci_high: float, method: str = "SGILO") -> str:
    """Lower MSE is better: the whole CI under 0 = better, over 0 = worse, else not resolved."""
    if ci_high < 0:
        return f"{method} better"
    if ci_low > 0:
        return f"{method} worse"
    return "not resolved (CI spans 0)"


def scarcest_levels(levels: Sequence[float], task: str, n: int = 2) -> list[float]:
    """The ``n`` hardest levels of a task (the direction comes from the task's plugin)."""
    axis = task_axis(task)
    return sorted(set(float(v) for v in levels), key=axis.difficulty_key, reverse=True)[:n]


def claim_table(paired: pd.DataFrame, method: str = "sgilo", references: Sequence[str] = PAIRED_REFERENCES,
                n_scarcest: int = 2) -> pd.DataFrame:
    """One row per (task, scarce level, reference present): SGILO minus the reference, with the verdict."""
    rows = []
    mine = paired[paired["method"] == method] if len(paired) else paired
    for task, g in mine.groupby("task", sort=False):
        for level in scarcest_levels(g["level"], task, n_scarcest):
            at = g[g["level"].astype(float) == level]
            for ref in references:
                r = at[at["reference"] == ref]
                if r.empty:
                    continue
                r = r.iloc[0]
                rows.append({"task": task, "level": level, "reference": ref, "n": int(r["n"]),
                             "seeds": int(r["seeds"]), "mean_diff": float(r["mean_diff"]),
                             "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]),
                             "win_rate": float(r["win_rate"]), "verdict": verdict(r["ci_low"], r["ci_high"])})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def claim_counts(claims: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per reference, how many scarce cells went each way (for a one-line summary)."""
    out: dict[str, dict[str, int]] = {}
    for ref, g in claims.groupby("reference", sort=False):
        out[ref] = {v: int((g["verdict"] == v).sum()) for v in sorted(g["verdict"].unique())}
    return out


def claim_lines(claims: pd.DataFrame) -> list[str]:
    """The report section: the counts per reference, then the table."""
    if claims.empty:
        return []
    from bench.report.tables import markdown_table

    counts = claim_counts(claims)
    summary = [f"- against {ref}: " + ", ".join(f"{k}: {v}" for k, v in c.items()) + f" (of {sum(c.values())} cells)"
               for ref, c in counts.items()]
    shown = claims.assign(level=claims["level"].map(lambda v: f"{v:g}"))
    return ["## The question: is SGILO better at the two scarcest levels of each task?", "",
            "SGILO's test MSE minus each reference's, at the two hardest levels of every task (paired over the same "
            "test images, each image's MSE averaged over the seeds; paired bootstrap 95% CI). The verdict follows "
            "from the CI alone: better (CI under 0), worse (over 0), or not resolved.", "", *summary, "",
            markdown_table(shown), ""]


def combine_claims(report_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """The ``claims.csv`` of several reports (e.g. one sweep per task group) as one table, with the report
    each row came from; a task and level answered by two reports is an error (which one would be the answer?)."""
    parts = []
    for d in report_dirs:
        path = Path(d) / "claims.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no claims.csv (write the report with `python -m bench.collect` first)")
        parts.append(pd.read_csv(path).assign(report=Path(d).name))
    claims = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*CLAIM_COLUMNS, "report"])
    dup = claims[claims.duplicated(["task", "level", "reference"], keep=False)]
    if len(dup):
        cells = sorted({f"{t} {lv:g} ({r})" for t, lv, r in zip(dup["task"], dup["level"], dup["report"])})
        raise ValueError(f"the same task and level in more than one report: {', '.join(cells)}")
    return claims


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report.claims REPORT... --out FILE.md``: one answer to the paper's question over reports."""
    import argparse

    from bench.core.io import atomic_write_text

    p = argparse.ArgumentParser(prog="python -m bench.report.claims",
                                description="Combine the claims.csv of several reports (each written by "
                                            "python -m bench.collect) into one markdown table and one CSV.")
    p.add_argument("reports", nargs="+", help="report folders, each holding a claims.csv")
    p.add_argument("--out", required=True, help="the markdown file to write; the CSV goes beside it")
    a = p.parse_args(argv)
    try:
        claims = combine_claims(a.reports)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    claims.to_csv(out.with_suffix(".csv"), index=False, float_format="%.6g")
    sources = ", ".join(f"`{r}`" for r in a.reports)
    atomic_write_text(out, "\n".join([f"# SGILO against its references, over {sources}", "",
                                      f"Written by `python -m bench.report.claims {' '.join(a.reports)} --out {out}`.",
                                      "", *claim_lines(claims)]))
    print(f"wrote {out} and {out.with_suffix('.csv')} ({len(claims)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
