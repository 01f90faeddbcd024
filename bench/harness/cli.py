"""The command-line core shared by the sweep and the fairness command: usage errors, name
validation, execution options, W&B mode, live progress, the sbatch line and ``main``."""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from bench.harness.slurm import SlurmConfig, add_slurm_arguments, slurm_config_from_args


class UsageError(Exception):
    """Bad command-line input: printed with the valid choices, exit code 2."""


@dataclass
class ExecutionOptions:
    """How cells run: the executor and its settings (resolved when the run starts)."""

    executor: str = "auto"  # auto | slurm | local | debug
    workers: int = 2
    chunk_size: int | None = None  # None: 8 on SLURM, 1 locally (bench.harness.slurm.default_chunk_size)
    max_attempts: int = 2  # tries per cell when a worker or SLURM job dies (a failure inside a cell is final per run)
    retry_failed: bool = True  # run again the cells an earlier run stored as failed
    recycle_after: int = 8  # chunks a local worker process runs before a fresh one replaces it
    wandb: str = "auto"
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


def split_list(values: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (blanks dropped)."""
    tokens = [values] if isinstance(values, str) else list(values)
    return [v.strip() for tok in tokens for v in tok.split(",") if v.strip()]


def validate_names(kind: str, names: Sequence[str], valid: Sequence[str]) -> tuple[str, ...]:
    """The names, or UsageError listing the valid ones."""
    bad = [n for n in names if n not in valid]
    if bad:
        raise UsageError(f"unknown {kind} {', '.join(map(repr, bad))}; valid {kind}s: {', '.join(valid)}")
    if not names:
        raise UsageError(f"no {kind} given; valid {kind}s: {', '.join(valid)}")
    return tuple(names)


def validate_prior(name: str, valid: Sequence[str]) -> str:
    if name not in valid:
        raise UsageError(f"unknown prior {name!r}; valid priors: {', '.join(valid)}")
    return name


def resolve_wandb(mode: str) -> str:
    """``auto`` -> online with WANDB_API_KEY set, else offline."""
    if mode != "auto":
        return mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def add_execution_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default="auto", choices=["auto", "slurm", "local", "debug"],
                   help="auto: slurm when a controller answers `scontrol ping`, else local worker processes")
    p.add_argument("--wandb", default="auto", choices=["auto", "online", "offline", "disabled"],
                   help="auto: online with WANDB_API_KEY set, else offline (sync later with `wandb sync`)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="local worker processes")
    p.add_argument("--chunk-size", type=int, default=None, help="cells per job (default: 1 local, 8 slurm)")
    p.add_argument("--max-attempts", type=int, default=2,
                   help="tries per cell when its worker process or SLURM job dies (default 2); a failure inside a "
                        "cell (an error, a diverging run) is recorded at once and not retried in the same run")
    p.add_argument("--no-retry-failed", dest="retry_failed", action="store_false",
                   help="keep the cells an earlier run recorded as failed (default: run them again, e.g. after a fix)")
    p.add_argument("--recycle-after", type=int, default=8,
                   help="chunks a local worker process runs before a fresh process replaces it (default 8: starting "
                        "one, with torch and the prior, takes 2-3 s, as long as a quick cell; a fresh process frees "
                        "whatever earlier cells left behind; 1 for cells that leave memory behind)")
    add_slurm_arguments(p)


def execution_from_args(a: argparse.Namespace, world_gpus: int) -> ExecutionOptions:
    return ExecutionOptions(executor=a.executor, workers=a.workers, chunk_size=a.chunk_size,
                            max_attempts=a.max_attempts, retry_failed=a.retry_failed, wandb=a.wandb,
                            recycle_after=a.recycle_after, slurm=slurm_config_from_args(a, world_gpus))


def execute_with_options(cells: Sequence, store, executor: str, ex: ExecutionOptions, chunk_size: int,
                         stage: str) -> dict[str, int]:
    """``bench.harness.execution.execute`` under a command's execution options and a progress line for ``stage``:
    one place that maps the options, so an option added to ExecutionOptions reaches every command."""
    from bench.harness.execution import execute

    return execute(cells, store, executor, workers=ex.workers, chunk_size=chunk_size, max_attempts=ex.max_attempts,
                   wandb_mode=resolve_wandb(ex.wandb), slurm=ex.slurm, progress=progress_printer(stage),
                   retry_failed=ex.retry_failed, recycle_after=ex.recycle_after)


def progress_printer(stage: str) -> Callable[[dict[str, int]], None]:
    """A callback printing ``[stage] done/total cells ...`` on one stderr line, at most once a second."""
    start = time.time()
    last = [0.0]

    def show(s: dict[str, int]) -> None:
        now = time.time()
        if now - last[0] < 1.0 and s["done"] < s["total"]:
            return
        last[0] = now
        line = (f"\r[{stage}] {s['done']}/{s['total']} cells done, {s['failed']} failed, {s['running']} running "
                f"({now - start:.0f} s)")
        sys.stderr.write(line + ("\n" if s["done"] >= s["total"] else ""))
        sys.stderr.flush()

    return show


def sbatch_line(n_cells: int, chunk_size: int, gpus: int, plan: Path) -> str:
    """The ``sbatch`` command that runs a written plan as an array (one index per chunk)."""
    n_chunks = max(1, -(-n_cells // chunk_size))
    gres = "" if gpus else " --gres=none"
    return f"CHUNK_SIZE={chunk_size} sbatch{gres} --array=0-{n_chunks - 1} slurm/grid.sh {plan}"


EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C


def run_main(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
             run: Callable[[argparse.Namespace], int]) -> int:
    """Parse, set up the process, call ``run(args)``. Expected errors end with a message, never a
    traceback: a UsageError prints the usage (exit 2), a path that cannot be used says which (exit 2),
    Ctrl-C says how to resume (exit 130; stored cells are complete, the store stays sound)."""
    from bench.core.runtime import init_process

    a = parser.parse_args(argv)
    init_process()
    try:
        if getattr(a, "out", None):
            check_out_folder(Path(a.out))
        return run(a)
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        print(f"error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished cells are stored; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def check_out_folder(out: Path) -> None:
    """UsageError unless ``out`` is (or can become) a writable folder."""
    import os

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder; choose another path")
    parent = next((p for p in [out, *out.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is a file, so no folder can be made under it")
    if parent is not None and not os.access(parent, os.W_OK):
        raise UsageError(f"--out {out}: {parent} is not writable")
