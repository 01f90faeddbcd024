"""The report's tables: every derived table from the tidy rows (``build_tables``) and their
markdown form (4 significant digits, 'mean [95% CI]' cells, no tabulate dependency)."""
from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from bench.report.axes import sort_by_difficulty
from bench.report.stats import (
    failure_table,
    ilo_composite,
    ilo_composite_test_selected,
    paired_table,
    seed_spread,
    select_best,
    summarize,
)


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
    if "seeds" in summary.columns and summary["seeds"].nunique() > 1:
        view.insert(view.columns.get_loc("variant") + 1, "seeds", summary["seeds"])
    if show_params and "params" in summary.columns:
        short = summary["params"].map(lambda p: textwrap.shorten(str(p), 70, placeholder="..."))
        view.insert(view.columns.get_loc("variant") + 1, "params", short)
    return markdown_table(view)


# ============================================================================ derived tables
def split_summary(summary: pd.DataFrame, stage: str) -> pd.DataFrame:
    """The summary lines of one stage ("tune" or "eval")."""
    return summary[summary["stage"] == stage].reset_index(drop=True) if not summary.empty else summary


def eval_summary(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Eval-stage summary lines followed by the composite ILO lines (in that order, unsorted)."""
    return pd.concat([split_summary(t["summary"], "eval"), t["composite_summary"]], ignore_index=True)


def level_str(df: pd.DataFrame) -> pd.DataFrame:
    """Levels as compact strings for markdown (0.02, not 0.0200)."""
    if df.empty or "level" not in df.columns:
        return df
    return df.assign(level=df["level"].map(lambda v: f"{v:g}"))


def build_tables(rows: pd.DataFrame, n_boot: int = 2000) -> dict[str, pd.DataFrame]:
    """Every derived table of the report from the tidy rows (pure; no files)."""
    eval_rows = rows[rows["stage"] == "eval"]
    choices, comp_rows = ilo_composite(eval_rows, rows[rows["stage"] == "tune"])
    test_choices, test_comp_rows = ilo_composite_test_selected(eval_rows)
    summary = sort_by_difficulty(summarize(rows, n_boot=n_boot))
    comp = pd.concat([comp_rows, test_comp_rows], ignore_index=True)
    comp_summary = sort_by_difficulty(summarize(comp, n_boot=n_boot)) if len(comp) else summary.iloc[0:0]
    return {"summary": summary, "composite_summary": comp_summary, "ilo_choices": choices,
            "ilo_choices_test_selected": test_choices,
            "tuning_choices": select_best(rows, include_unsuccessful=True), "failures": failure_table(rows),
            "paired": paired_table(pd.concat([eval_rows, comp_rows], ignore_index=True), n_boot=n_boot),
            "seed_spread": seed_spread(eval_rows)}
