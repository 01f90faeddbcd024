"""Task axes: what a task's level means, which direction is harder, and the easy-to-hard order
of every table and figure (the lowest layer of the report: no statistics, no plotting)."""
from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

TASK_ORDER = ("denoise", "cs", "inpaint", "inpaint_box", "superres", "colorize")


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

    @property
    def short_meaning(self) -> str:
        """The level's meaning up to its first qualification (the task plugin's full text is in the tables)."""
        return self.level_meaning.split(";")[0].split(" (")[0]

    def axis_label(self, width: int = 38) -> str:
        direction = "lower = harder" if self.harder_when == "lower" else "higher = harder"
        return textwrap.fill(f"level: {self.short_meaning}", width) + f"\n(ordered easy \u2192 hard; {direction})"


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


def sort_by_difficulty(df: pd.DataFrame) -> pd.DataFrame:
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
