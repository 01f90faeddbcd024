"""Carry finished cells of long runs across fresh checkouts (and GPU leases) in a git-friendly form.

Paper-scale runs take several sessions on 2 CPU cores, and a fresh checkout holds only what git holds. A run
folder's cell records are mostly optimisation traces (one loss and reference MSE per step and image: about 700 kB
of a 720 kB fairness cell), which only the speed figure reads. ``pack`` mirrors run folders into a folder
that git can hold cell by cell (unchanged cells are unchanged blobs, so commits grow by the new cells only),
with every trace thinned to every ``every``-th step plus its last step and marked ``"thin": every``;
``unpack`` copies the mirror back without overwriting anything already there, so it never undoes progress.
:func:`bench.report.frames.traces_frame` puts every trace of a report on the coarsest grid present, so restored
and local cells are drawn alike.

    python -m bench.harness.carry pack results/embedded/paper-wip runs/fairness-x runs/sweep-y [--every 25]
    python -m bench.harness.carry unpack results/embedded/paper-wip
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

# large or re-creatable; never needed to resume or report ("report": bench.collect rebuilds it from the cells, and
# its traces.csv alone can be tens of MB)
SKIPPED_DIRS = ("previews", "logs", "slurm", "wandb", "report")


def thin_steps(steps: list[int], every: int) -> list[int]:
    """Indices of the trace points kept: the steps that are multiples of ``every``, and the last one."""
    keep = [i for i, s in enumerate(steps) if s % every == 0]
    if steps and (not keep or keep[-1] != len(steps) - 1):
        keep.append(len(steps) - 1)
    return keep


def thin_trace(trace: dict[str, Any], every: int) -> dict[str, Any]:
    """The trace with every per-step list cut to :func:`thin_steps`; other fields as they are."""
    steps = trace.get("steps") or []
    if every <= 1 or not steps:
        return trace
    every = max(every, int(trace.get("thin", 1)))
    keep = thin_steps(list(steps), every)
    n = len(steps)
    out = {k: ([v[i] for i in keep] if isinstance(v, list) and len(v) == n else v) for k, v in trace.items()}
    out["thin"] = every
    return out


def thin_record(record: dict[str, Any], every: int) -> dict[str, Any]:
    """A cell record whose traces are thinned (rows, status and everything else unchanged)."""
    if not record.get("traces"):
        return record
    return {**record, "traces": [thin_trace(t, every) for t in record["traces"]]}


def _files(run: Path) -> Iterable[Path]:
    for p in sorted(run.rglob("*")):
        rel = p.relative_to(run)
        if p.is_file() and rel.parts[0] not in SKIPPED_DIRS and not p.name.endswith(".tmp"):
            yield p


def pack(dest: Path, runs: Iterable[Path], every: int = 25) -> dict[str, int]:
    """Mirror each run folder as ``dest/<run name>/``; cell records thinned, other files copied, each with its
    source's mtime, so a repeated pack rewrites only new or rewritten files.
    Returns {run name: cell records in the mirror}."""
    from bench.core.io import atomic_write_json

    counts = {}
    for run in runs:
        run = Path(run)
        if not run.is_dir():
            raise FileNotFoundError(f"{run}: no such run folder")
        for src in _files(run):
            rel = src.relative_to(run)
            out = dest / run.name / rel
            mtime = src.stat().st_mtime
            if out.exists() and out.stat().st_mtime == mtime:
                continue  # packed before and not rewritten since (a re-run cell gets a new mtime)
            out.parent.mkdir(parents=True, exist_ok=True)
            if rel.parts[0] == "cells" and src.suffix == ".json":
                atomic_write_json(out, thin_record(json.loads(src.read_text()), every))
                os.utime(out, (mtime, mtime))
            else:
                shutil.copy2(src, out)  # keeps the mtime
        counts[run.name] = len(list((dest / run.name / "cells").glob("*.json")))
    return counts


def unpack(src: Path, dest: Path = Path("runs")) -> dict[str, int]:
    """Copy the mirror's run folders under ``dest``, never overwriting a file already there.
    Returns {run name: files copied}."""
    counts: dict[str, int] = {}
    if not src.is_dir():
        return counts
    for run in sorted(p for p in src.iterdir() if p.is_dir()):
        n = 0
        for f in _files(run):
            out = dest / run.name / f.relative_to(run)
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out)
                n += 1
        counts[run.name] = n
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.carry", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    pk = sub.add_parser("pack", help="mirror run folders (cells with thinned traces) into MIRROR")
    pk.add_argument("mirror", type=Path)
    pk.add_argument("runs", type=Path, nargs="+")
    pk.add_argument("--every", type=int, default=25, help="keep every N-th trace step, and the last (default 25)")
    un = sub.add_parser("unpack", help="copy MIRROR's run folders under --dest (existing files win)")
    un.add_argument("mirror", type=Path)
    un.add_argument("--dest", type=Path, default=Path("runs"))
    a = p.parse_args(argv)
    if a.action == "pack":
        try:
            counts = pack(a.mirror, a.runs, a.every)
        except FileNotFoundError as err:
            print(f"error: {err}")
            return 2
        for name, n in counts.items():
            print(f"carry: {a.mirror / name}: {n} cell records")
    else:
        counts = unpack(a.mirror, a.dest)
        if not counts:
            print(f"carry: {a.mirror}: nothing to unpack")
        for name, n in counts.items():
            print(f"carry: {a.dest / name}: {n} files restored (existing files kept)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
