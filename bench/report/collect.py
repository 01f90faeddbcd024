"""Collect a sweep's ResultStore into tables, Figure-3/Figure-9-style plots and a markdown report.

    python -m bench.collect SWEEP_DIR [--out OUT_DIR]      # default OUT_DIR = SWEEP_DIR/report

or ``collect(sweep_dir)`` at the end of a sweep. Everything is recomputed from the cell records,
so the report can be regenerated at any time (also mid-sweep: missing eval cells are reported
as pending, failed images are counted and never averaged).

The statistics are pure functions of data frames in ``bench.report.stats`` (``bootstrap_ci``,
``summarize``, ``select_best``, ``ilo_composite``) so that they can be unit-tested and imported
by the sweep, which uses ``select_best`` to plan the eval stage from the tuning rows.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.io import atomic_write, atomic_write_text
from bench.core.runtime import init_process
from bench.report.axes import sort_by_difficulty
from bench.report.claims import claim_lines, claim_table
from bench.report.frames import EmptyStoreError, load_store, plan_progress
from bench.report.tables import (
    build_tables,
    eval_summary,
    level_str,
    markdown_table,
    split_summary,
    summary_markdown,
)

__all__ = ["EmptyStoreError", "collect", "main"]

HOW_TO_READ = (
    "**How to read.** Each number is a mean over images with a 95% percentile-bootstrap confidence "
    "interval of that mean (2000 resamples, seed 0). MSE is on the [-1, 1] image scale (lower is better), "
    "PSNR in dB (higher is better), LPIPS is perceptual distance (lower is better). x axes run from easy "
    "(left) to hard (right) whatever the level's numeric direction. \"ILO (best of 3)\" is, per task, "
    "level and image set, whichever of ILO tuned, ILO with the ILO paper's schedule and ILO-unregularized "
    "has the lowest mean test MSE (as in the paper); each variant is also kept under its own name. "
    "Failed images are counted (n failed) and excluded from means.")
FILES_NOTE = ("Files: `rows.csv` (every row), `traces.csv` (one row per cell, image and step), `summary.csv`/"
              "`summary.md` (all stages), `tuning_choices.csv`, `ilo_composite.csv`, `failures.csv`.")


# ============================================================================ collect
def collect(sweep_dir: str | Path, out_dir: str | Path | None = None, n_boot: int = 2000) -> dict[str, Path]:
    """Write tables, figures and report.md for a ResultStore folder; returns {name: path}.

    Raises EmptyStoreError when the folder has no finished cell.
    """
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    rows, traces, records = load_store(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_rows(rows, traces, out)
    t = build_tables(rows, n_boot=n_boot)
    paths |= write_tables(t, out)
    notes: list[str] = []
    fig_paths = write_figures(t, traces, out, notes)
    paths |= fig_paths
    grids = guarded("reconstruction grids", notes, _recon_grids, sweep_dir, records, out)
    paths |= grids
    fig_paths = {**fig_paths, **grids}
    paths["report_md"] = atomic_write_text(out / "report.md",
                                           report_text(sweep_dir, rows, records, t, fig_paths, notes, out))
    return paths


def _recon_grids(sweep_dir: Path, records: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    from bench.report.recon_grid import write_grids

    return write_grids(sweep_dir, records, out)


def write_rows(rows: pd.DataFrame, traces: pd.DataFrame, out: Path) -> dict[str, Path]:
    """rows.csv (and rows.parquet where pyarrow is installed) and traces.csv."""
    paths = {"rows_csv": write_csv(rows, out / "rows.csv")}
    if has_pyarrow():
        paths["rows_parquet"] = atomic_write(out / "rows.parquet", lambda f: rows.to_parquet(f, index=False))
    paths["traces_csv"] = write_csv(traces, out / "traces.csv")
    return paths


def write_tables(t: dict[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    """summary.csv (all stages and the composite ILO), the choice and failure CSVs, summary.md."""
    full_summary = pd.concat([t["summary"], t["composite_summary"]], ignore_index=True)
    return {"summary_csv": write_csv(full_summary, out / "summary.csv"),
            "tuning_choices_csv": write_csv(t["tuning_choices"], out / "tuning_choices.csv"),
            "ilo_composite_csv": write_csv(t["ilo_choices"], out / "ilo_composite.csv"),
            "ilo_composite_test_selected_csv": write_csv(t["ilo_choices_test_selected"],
                                                         out / "ilo_composite_test_selected.csv"),
            "failures_csv": write_csv(t["failures"], out / "failures.csv"),
            "paired_csv": write_csv(t["paired"], out / "paired_differences.csv"),
            "seed_spread_csv": write_csv(t["seed_spread"], out / "seed_spread.csv"),
            "claims_csv": write_csv(claim_table(t["paired"]), out / "claims.csv"),
            "summary_md": atomic_write_text(out / "summary.md", summary_md_text(t))}


def write_figures(t: dict[str, pd.DataFrame], traces: pd.DataFrame, out: Path, notes: list[str]) -> dict[str, Path]:
    """Figure 3 and the speed figure when there are eval rows; a plotting error becomes a note."""
    from bench.report import figures  # matplotlib only when figures are drawn

    fig_paths: dict[str, Path] = {}
    ev = eval_summary(t)
    if len(ev):
        fig_paths |= guarded("Figure 3", notes, figures.figure3, ev, out, notes)
        fig_paths |= guarded("speed figure", notes, figures.speed_figure, traces, t["ilo_choices"], out, notes)
        fig_paths |= guarded("paired-difference figure", notes, figures.paired_figure, t["paired"], out)
    return fig_paths


def guarded(name: str, notes: list[str], fn, *args) -> dict[str, Path]:
    """Run a figure function; a plotting error becomes a note (and stderr) instead of losing the tables."""
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - the report must still be written at the end of a sweep
        msg = f"{name} failed: {type(err).__name__}: {err}"
        print(f"bench.collect: {msg}", file=sys.stderr)
        notes.append(msg)
        return {}


def has_pyarrow() -> bool:
    """Parquet only where pyarrow is installed (not a dependency of the harness)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """CSV with 6 significant digits for floats (trace tables get long), written atomically."""
    return atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


# ============================================================================ markdown files
def summary_md_text(t: dict[str, pd.DataFrame]) -> str:
    """summary.md: the eval stage (with the composite ILO), then the tuning stage with params."""
    return ("# Summary (mean [95% bootstrap CI of the mean] over images; failed images counted, not averaged)\n\n"
            "## Eval stage\n\n" + summary_markdown(sort_by_difficulty(eval_summary(t)))
            + "\n## Tuning stage\n\n" + summary_markdown(split_summary(t["summary"], "tune"), show_params=True))


def report_text(sweep_dir: Path, rows: pd.DataFrame, records: list[dict[str, Any]], t: dict[str, pd.DataFrame],
                figs: dict[str, Path], notes: list[str], out: Path) -> str:
    """report.md: how to read, progress, figures, eval summary, ILO composite, tuning choices, failures."""
    has_eval = (rows["stage"] == "eval").any()
    lines = [f"# SGILO benchmark report: `{sweep_dir}`", "", HOW_TO_READ, ""]
    lines += progress_lines(sweep_dir, rows, records, notes, has_eval)
    if has_eval:
        lines += eval_lines(t, figs, out)
    lines += grid_lines(sweep_dir)
    lines += ["## Tuning choices (lowest mean tuning MSE; exact ties broken by LPIPS)", "",
              markdown_table(level_str(t["tuning_choices"])),
              "## Failures (grouped by reason)", "", markdown_table(t["failures"]), FILES_NOTE, ""]
    return "\n".join(lines)


def grid_lines(sweep_dir: Path) -> list[str]:
    """The grids that replaced a method's built-in one (--grid, --grid-file or the world), from config.json."""
    cfg_path = sweep_dir / "config.json"
    grids = json.loads(cfg_path.read_text()).get("grids") if cfg_path.exists() else None
    if not grids:
        return []
    lines = ["## Tuning grids set for this sweep (other methods: their built-in grids)", ""]
    for method, points in grids.items():
        lines += [f"- {method}: {len(points)} points"] + [f"  - `{json.dumps(p, sort_keys=True)}`" for p in points]
    return lines + [""]


def progress_lines(sweep_dir: Path, rows: pd.DataFrame, records: list[dict[str, Any]], notes: list[str],
                   has_eval: bool) -> list[str]:
    """The report's Progress section: records, rows, stages, plans, pending eval, notes."""
    n_cells_failed = sum(1 for r in records if r.get("status") != "ok")
    lines = ["## Progress", "",
             (f"- {len(records)} cell records ({n_cells_failed} failed after retries), {len(rows)} image rows "
             f"({int((rows['status'] != 'ok').sum())} failed)."),
             f"- stages present: {', '.join(sorted(rows['stage'].unique()))}."]
    lines += [f"- {p}" for p in plan_progress(sweep_dir)]
    lines += weight_lines(records)
    if not has_eval:
        lines += ["", ("> **Eval stage pending**: only tuning rows so far. The tuning choices below are what the "
                      "eval stage will run; no test-set figures yet.")]
    lines += [f"- note: {n}" for n in notes]
    if not has_pyarrow():
        lines.append("- rows.parquet not written (pyarrow not installed); rows.csv has the same table.")
    return lines


def weight_lines(records: list[dict[str, Any]]) -> list[str]:
    """A warning when the cells were computed with different weight files (each record names its own; records
    written before that are not counted): results of two priors must not be read as one sweep's."""
    seen: dict[str, int] = {}
    for r in records:
        if r.get("weights"):
            key = json.dumps(r["weights"], sort_keys=True)
            seen[key] = seen.get(key, 0) + 1
    if len(seen) <= 1:
        return []
    return [f"- **WARNING: the cells used {len(seen)} different sets of weight files** (cells per set: "
            f"{', '.join(str(n) for n in sorted(seen.values(), reverse=True))}); a score model re-installed during "
            f"the sweep? Re-run the sweep with --rerun-score-cells, or compare the records' `weights`."]


def eval_lines(t: dict[str, pd.DataFrame], figs: dict[str, Path], out: Path) -> list[str]:
    """The report's eval sections: figures (PNG), eval summary, composite ILO choices."""
    lines = ["", "## Figures", ""]
    for name, p in figs.items():
        if p.suffix == ".png":
            lines += [f"![{name}]({p.relative_to(out).as_posix()})", ""]
    return lines + ["## Eval summary (test/eval image sets)", "",
                    summary_markdown(sort_by_difficulty(eval_summary(t))),
                    *claim_lines(claim_table(t["paired"])),
                    "## Paired differences", "",
                    "Per task and level, against each reference (ILO and CSGM tuned on the tuning images, the composite "
                    "ILO selected on the tuning images, SGILO at T = 0 when it ran): the mean over the same test images "
                    "of MSE(method) - MSE(reference), each image's MSE first averaged over the seeds both share, a "
                    "paired bootstrap 95% CI (images resampled together) and the win rate (share of images where the "
                    "method is lower). Negative: better than the reference.", "",
                    markdown_table(level_str(t["paired"])),
                    *(["## Seed-to-seed spread", "", "Mean test MSE per seed (each seed tuned on its own) and the "
                       "standard deviation of those means.", "", markdown_table(level_str(t["seed_spread"]))]
                      if not t["seed_spread"].empty else []),
                    "## Composite ILO: winning variant per task and level (selected on the tuning images)", "",
                    markdown_table(level_str(t["ilo_choices"])),
                    "## The paper's composite ILO (selected on the test images; optimistic, for comparison only)", "",
                    markdown_table(level_str(t["ilo_choices_test_selected"]))]


# ============================================================================ CLI
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit status 2 (with a message on stderr) when there is nothing to collect."""
    init_process()
    ap = argparse.ArgumentParser(prog="python -m bench.collect", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="ResultStore folder (holds cells/)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: SWEEP_DIR/report)")
    ap.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples for the 95%% CIs")
    ap.add_argument("--wandb", default="disabled", choices=["disabled", "offline", "online", "auto"],
                    help="also log the sweep's summary run (figures, report, tables) to W&B (default disabled)")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    try:
        paths = collect(args.sweep_dir, args.out, n_boot=args.n_boot)
    except EmptyStoreError as err:
        print(f"bench.collect: {err}", file=sys.stderr)
        return 2
    if args.wandb != "disabled":
        from bench.harness.cli import resolve_wandb
        from bench.harness.wandb_log import log_summary

        log_summary(args.sweep_dir, mode=resolve_wandb(args.wandb))
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
