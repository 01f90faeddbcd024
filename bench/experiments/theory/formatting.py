"""Number formatting shared by ``report.md``'s tables and its verdicts."""
from __future__ import annotations

import math


def pct(x: float) -> str:
    """A fraction as a whole percentage: 0.125 -> "12%"."""
    return f"{100 * x:.0f}%"


def fmt(x: float | None, spec: str = ".2f") -> str:
    """``format(x, spec)``, or "n/a" for None and non-finite floats."""
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)
