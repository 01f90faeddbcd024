"""A ResultStore folder as tidy frames: one row per (cell, image), one trace row per
(cell, image, step), and the plan progress of a sweep that is still running."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report.stats import with_defaults


class EmptyStoreError(RuntimeError):
    """The folder holds no finished cell (wrong path, or the sweep has not produced anything yet)."""


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """All (cell, image) rows as one tidy table, numeric columns numeric, missing ids filled."""
    df = with_defaults(pd.DataFrame(rows))
    if df["image_id"].isna().any():  # failed rows have no image id: use the index in the set
        fill = df["image_set"] + ":" + df["image_index"].astype(str)
        df["image_id"] = df["image_id"].where(df["image_id"].notna(), fill)
    return df


def traces_frame(traces: list[dict[str, Any]], rows: pd.DataFrame) -> pd.DataFrame:
    """Per-image traces as one row per (cell, image, step), with elapsed seconds and NFE.

    Elapsed time at a trace step s is (s + 1) * seconds / n_steps, with the row's per-image
    seconds and n_steps = last step + 1 (one generator evaluation per step, so this is the time
    at which that evaluation finished; a +1 keeps the first point off zero). Elapsed NFE is
    (s + 1) * nfe_generator / n_steps in the same way. Traces thinned for carrying (``"thin": k``) put every
    trace on the steps that are multiples of the largest k, plus each trace's last step.
    """
    cols = ["cell", "stage", "image_set", "prior", "noise_sigma", "task", "level", "method", "variant", "image_id",
            "status", "step", "loss", "ref_mse", "seconds_elapsed", "nfe_elapsed"]
    traces = [t for t in traces if t.get("steps")]
    if not traces:
        return pd.DataFrame(columns=cols)
    coarsest = max(int(t.get("thin", 1)) for t in traces)
    if coarsest > 1:  # cells restored by bench.harness.carry hold thinned traces: draw every trace on their grid
        from bench.harness.carry import thin_trace

        traces = [thin_trace(t, coarsest) for t in traces]
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
    from bench.harness.store import ResultStore

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
    from bench.harness.store import ResultStore, read_plan

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
