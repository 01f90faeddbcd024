"""Paired differences of grid-extension runs against a finished sweep's references.

A grid extension (e.g. ILO at smaller radii, re-tuned on the same tuning images) runs as its own sweep
with the same task, levels and seeds, so its test rows pair image by image with the original sweep's.
This relabels each extension's tuned method, puts it beside the original rows and applies the report's
own paired statistics (``bench.report.stats.paired_table``), so the numbers are computed the same way as
the report's.

    python scripts/extension_paired.py results/embedded/paper-others/rows.csv \
        ilo_small_radius=runs/denoise-ilo-small-radius/report/rows.csv --task denoise --out paired.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from bench.report.stats import paired_table


def load_rows(path: str, task: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    return df[(df["stage"] == "eval") & (df["task"] == task)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="rows.csv of the finished sweep (holds the references)")
    ap.add_argument("extensions", nargs="+", help="LABEL=rows.csv of an extension sweep (its tuned rows get LABEL)")
    ap.add_argument("--task", required=True)
    ap.add_argument("--out", required=True, help="CSV of the paired differences")
    args = ap.parse_args(argv)
    parts, labels = [load_rows(args.base, args.task)], []
    for spec in args.extensions:
        label, _, path = spec.partition("=")
        if not path or not Path(path).is_file():
            sys.exit(f"expected LABEL=rows.csv with an existing file, got {spec!r}")
        ext = load_rows(path, args.task)
        parts.append(ext[ext["variant"] == "tuned"].assign(method=label))
        labels.append(label)
    table = paired_table(pd.concat(parts, ignore_index=True))
    table = table[table["method"].isin(labels)]
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
