"""Run one chunk of a written plan: what each array task of ``slurm/grid.sh`` executes.

    python -m bench.harness.run_plan runs/x/plan_tune.json --index $SLURM_ARRAY_TASK_ID --chunk-size 8

The chunk is cells [index*chunk_size, (index+1)*chunk_size) of the plan; results go to the
plan's folder (the sweep's store). Finished cells are skipped, so re-running an array task
(requeue, a retry after a cancel) never duplicates rows.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.harness.execution import run_chunk, slurm_threads
from bench.harness.store import read_plan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.run_plan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("plan", help="plan_<stage>.json written by `python -m bench.sweep --plan-only <stage>`")
    p.add_argument("--index", type=int, required=True, help="chunk index (SLURM_ARRAY_TASK_ID)")
    p.add_argument("--chunk-size", type=int, default=1)
    p.add_argument("--max-attempts", type=int, default=2)
    p.add_argument("--wandb", default="disabled", choices=["online", "offline", "disabled"])
    a = p.parse_args(argv)
    plan = Path(a.plan)
    if not plan.exists():
        print(f"plan file {plan} not found; write it with `python -m bench.sweep --plan-only tune ...`", file=sys.stderr)
        return 2
    cells, _ = read_plan(plan)
    chunk = cells[a.index * a.chunk_size : (a.index + 1) * a.chunk_size]
    if not chunk:
        n = (len(cells) + a.chunk_size - 1) // a.chunk_size
        print(f"chunk {a.index} is empty: the plan has {len(cells)} cells = {n} chunks of {a.chunk_size}", file=sys.stderr)
        return 2
    counts = run_chunk(chunk, str(plan.parent), a.max_attempts, None, a.wandb, slurm_threads())
    print(json.dumps({"plan": str(plan), "index": a.index, **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
