"""Run cells through an executor: in-process (debug), a local process pool, or SLURM (submitit).

Work is shipped as *chunks*: lists of cells that one job (one SLURM array task, one pool
task) runs in order, storing each finished cell atomically before starting the next. A
requeued or re-run chunk therefore skips what is already stored and never redoes a finished
cell (submitit's checkpoint contract: :class:`ChunkJob` is ``Checkpointable``).
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Sequence

from bench.harness.runner import Cell, failed_result, run_cell
from bench.harness.slurm import SlurmConfig
from bench.harness.store import ResultStore

try:  # submitit is a dependency, but keep the local path importable without it
    import submitit
    from submitit.helpers import Checkpointable
except ImportError:  # pragma: no cover
    submitit = None
    Checkpointable = object  # type: ignore[assignment,misc]


def run_chunk(cells: Sequence[Cell], store_root: str, max_attempts: int = 2, device: str | None = None,
              wandb_mode: str = "disabled", threads: int | None = None) -> dict[str, int]:
    """Run the not-yet-stored cells of a chunk; returns status counts.

    A failure inside a cell (an exception, a non-finite result) is deterministic: the cell is a pure
    function of its fields, so running it again in this run would fail the same way. It is recorded
    as final at once; the next invocation reopens it (``execute(retry_failed=True)``, the CLIs'
    default), e.g. after the cause was fixed. ``max_attempts`` counts infrastructure failures
    (a crashed worker, a SLURM job that died), which the executors retry within the run."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    store = ResultStore(store_root)
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    for cell in cells:
        if store.is_done(cell):
            counts["skipped"] += 1
            continue
        result = run_cell(cell, device, keep_images=wandb_mode != "disabled" or cell.stage == "eval")
        if cell.stage == "eval":  # a few small reconstructions for the report's grids, before the record
            from bench.harness.previews import save_previews

            save_previews(result, store_root)
        if wandb_mode != "disabled":
            from bench.harness.wandb_log import log_cell

            log_cell(result, mode=wandb_mode, folder=Path(store_root) / "wandb")
        counts[store.record(result, max_attempts=1)] += 1  # deterministic: never retried within the run
    return counts


class ChunkJob(Checkpointable):
    """A picklable, requeue-safe SLURM job: on preemption/timeout submitit resubmits it with
    the same arguments, and the store makes it skip the cells already finished."""

    def __call__(self, cells: list[dict], store_root: str, max_attempts: int, wandb_mode: str) -> dict[str, int]:
        from bench.core.runtime import init_process

        init_process()
        return run_chunk([Cell.from_dict(c) for c in cells], store_root, max_attempts, None, wandb_mode,
                         slurm_threads())


def slurm_threads() -> int | None:
    """Intra-op threads = the CPUs SLURM gave the task (torch's default, all cores of the node,
    oversubscribes a shared node, which slowed tiny cells ~50x in tests)."""
    n = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("SLURM_CPUS_ON_NODE")
    return int(n) if n and n.isdigit() else None


def chunked(cells: Sequence[Cell], size: int) -> list[list[Cell]]:
    size = max(1, size)
    return [list(cells[i : i + size]) for i in range(0, len(cells), size)]


Progress = Callable[[dict[str, int]], None]


def execute(cells: Sequence[Cell], store: ResultStore, executor: str, *, workers: int = 2, chunk_size: int = 1,
            max_attempts: int = 2, wandb_mode: str = "disabled", slurm: SlurmConfig | None = None,
            progress: Progress | None = None, folder: Path | None = None, retry_failed: bool = False,
            recycle_after: int = 8) -> dict[str, int]:
    """Run every pending cell; returns counts of ok/failed cells (including earlier runs).

    ``retry_failed``: cells stored as failed by an earlier run are run again (the CLIs' default).
    ``recycle_after``: chunks a local worker process runs before a fresh one replaces it."""
    if recycle_after < 1:
        raise ValueError(f"recycle_after must be >= 1, got {recycle_after}")
    if retry_failed:
        store.reopen_failed(cells)
    pending = store.pending(cells)
    chunks = chunked(pending, chunk_size)
    state = {"total": len(cells), "done": len(cells) - len(pending), "failed": 0, "running": 0}

    def report() -> None:
        if progress:
            progress(dict(state))

    report()
    if not chunks:
        return _final_counts(cells, store)
    if executor == "debug":
        for ch in chunks:
            state["running"] = len(ch)
            report()
            c = run_chunk(ch, str(store.root), max_attempts, wandb_mode=wandb_mode)
            state["done"] += c["ok"] + c["failed"] + c["skipped"]
            state["failed"] += c["failed"]
            state["running"] = 0
            report()
    elif executor == "local":
        _execute_local(chunks, store, workers, max_attempts, wandb_mode, state, report, recycle_after)
    elif executor == "slurm":
        _execute_slurm(chunks, store, slurm or SlurmConfig(), max_attempts, wandb_mode, state, report,
                       folder or store.root / "slurm")
    else:
        raise ValueError(f"unknown executor {executor!r}; valid: auto, debug, local, slurm")
    return _final_counts(cells, store)


def _final_counts(cells: Sequence[Cell], store: ResultStore) -> dict[str, int]:
    ok = failed = missing = 0
    for c in cells:
        p = store.record_path(c)
        if not p.exists():
            missing += 1
            continue
        import json

        status = json.loads(p.read_text())["status"]
        ok += status == "ok"
        failed += status != "ok"
    return {"ok": ok, "failed": failed, "missing": missing}


def _worker_init(parent: int | None = None) -> None:
    import torch

    from bench.core.runtime import init_process

    init_process()
    exit_with_parent(parent)
    torch.set_num_threads(1)  # one process per core beats threads for these small models


def exit_with_parent(parent: int | None = None, poll_s: float = 5.0) -> threading.Thread:
    """Make this pool worker exit when the process that started it dies. A spawned worker holds both ends of the
    pool's call queue, so when the sweep is killed (SIGTERM from `timeout`, SIGKILL) it never sees EOF and waits
    forever, holding its memory: seen here, two idle 0.9 GB workers an hour after a killed `bench.scores invert`.
    A cell it was running is not recorded, and the resumed sweep runs it again (as after any kill). Polls the
    parent pid (POSIX: an orphan is re-parented) rather than prctl's death signal, which is Linux-only. ``parent``:
    the pid the starter passed (default: the current parent), so that a parent that died while this worker was
    still importing torch is noticed too."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def _execute_local(chunks, store, workers, max_attempts, wandb_mode, state, report, recycle_after: int = 8) -> None:
    """Worker processes in rounds: a crashed worker (killed for memory, a segfault: the pool breaks)
    is a failed attempt of its unfinished cells, which the next round runs again in a fresh pool
    while attempts remain."""
    _in_rounds(chunks, store, max_attempts,
               lambda todo: _local_round(todo, store, workers, max_attempts, wandb_mode, state, report,
                                         recycle_after))


def _in_rounds(chunks, store, max_attempts: int, run_round) -> None:
    """Run ``chunks``; then, while attempts remain, the unfinished cells of the chunks whose worker or
    job died (``run_round(todo)`` returns those chunks)."""
    todo = chunks
    for _round in range(max_attempts):
        todo = [[c for c in ch if not store.is_done(c)] for ch in todo]
        todo = [ch for ch in todo if ch]
        if not todo:
            return
        todo = run_round(todo)


def _local_round(chunks, store, workers, max_attempts, wandb_mode, state, report,
                 recycle_after: int = 8) -> list[list[Cell]]:
    """Pools over ``chunks``; returns the chunks of cells a crash left unfinished.

    A fresh pool (fresh processes) every ``workers * recycle_after`` chunks, so whatever cells leave behind
    cannot pile up into an OOM (fairness cells once grew a worker by ~0.7 GB each, before the StepTrace fix).
    Not a fresh process per chunk: a spawn (torch, the prior) takes 2-3 s, as long as a quick-grid cell, and that
    doubled the default sweep (3.5 -> 7.1 min on 2 cores, results/perf). Not ``max_tasks_per_child`` > 1 either:
    on Python 3.11-3.13 a pool with it stops replacing exited workers and hangs (CPython gh-115634; the default
    sweep hung here at 16 of 54 cells)."""
    workers = max(1, min(workers, len(chunks)))
    per_pool = workers * recycle_after  # execute() checked recycle_after >= 1
    crashed: list[list[Cell]] = []
    for i in range(0, len(chunks), per_pool):
        crashed += _pool_run(chunks[i:i + per_pool], store, workers, max_attempts, wandb_mode, state, report)
    return crashed


def _pool_run(chunks, store, workers, max_attempts, wandb_mode, state, report) -> list[list[Cell]]:
    """One pool of ``workers`` processes over ``chunks``; returns the chunks a crash left unfinished."""
    import multiprocessing as mp

    workers = max(1, min(workers, len(chunks)))
    crashed: list[list[Cell]] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_chunk, ch, str(store.root), max_attempts, None, wandb_mode, 1): ch for ch in chunks}
        state["running"] = min(workers, len(chunks))
        report()
        for fut in as_completed(futures):
            c = {"ok": 0, "failed": 0, "skipped": 0}
            try:
                c = fut.result()
            except Exception as err:  # noqa: BLE001 - a crashed worker fails its cells' attempt, not the sweep
                reason = f"worker crashed: {type(err).__name__}: {err}"
                for cell in (cell for cell in futures[fut] if not store.is_done(cell)):
                    c["failed"] += store.record(failed_result(cell, reason), max_attempts=max_attempts) == "failed"
                crashed.append(futures[fut])
            state["done"] += c["ok"] + c["failed"] + c["skipped"]
            state["failed"] += c["failed"]
            state["running"] = min(workers, sum(1 for f in futures if not f.done()))
            report()
    return crashed


def _execute_slurm(chunks, store, cfg: SlurmConfig, max_attempts, wandb_mode, state, report, folder: Path) -> None:
    """Submit chunks as one job array, wait, record jobs that died (cancel/timeout/node failure)
    as failed attempts of their unfinished cells, and resubmit those while attempts remain."""
    if submitit is None:
        raise RuntimeError("submitit is not installed: pip install submitit")
    ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    params = dict(timeout_min=cfg.timeout_min, cpus_per_task=cfg.cpus_per_task, mem_gb=cfg.mem_gb,
                  slurm_array_parallelism=cfg.array_parallelism, slurm_signal_delay_s=cfg.signal_delay_s)
    if cfg.partition:
        params["slurm_partition"] = cfg.partition
    if cfg.gpus_per_node:
        params["gpus_per_node"] = cfg.gpus_per_node
    if cfg.account:
        params["slurm_account"] = cfg.account
    ex.update_parameters(**params)
    _in_rounds(chunks, store, max_attempts, lambda todo: _slurm_round(ex, todo, store, max_attempts, wandb_mode,
                                                                      state, report))


def _slurm_round(ex, todo, store, max_attempts, wandb_mode, state, report) -> list[list[Cell]]:
    """One job array over ``todo``, waited for; returns the unfinished cells of jobs that died."""
    args = [[c.to_dict() for c in ch] for ch in todo]
    jobs = ex.map_array(ChunkJob(), args, [str(store.root)] * len(args), [max_attempts] * len(args),
                        [wandb_mode] * len(args))
    state["running"] = len(jobs)
    report()
    died: list[list[Cell]] = []
    pending = dict(zip(jobs, todo))
    while pending:
        time.sleep(2)
        for job in [j for j in pending if j.done()]:
            ch = pending.pop(job)
            try:
                c = job.result()
                state["done"] += c["ok"] + c["failed"] + c["skipped"]
                state["failed"] += c["failed"]
            except Exception as err:  # noqa: BLE001 - cancelled, timed out, node failure
                reason = f"SLURM job {job.job_id} did not finish: {type(err).__name__}: {str(err).splitlines()[0][:300]}"
                left = [cell for cell in ch if not store.is_done(cell)]
                for cell in left:
                    if store.record(failed_result(cell, reason), max_attempts=max_attempts) == "failed":
                        state["done"] += 1
                        state["failed"] += 1
                state["done"] += len(ch) - len(left)
                died.append([cell for cell in left if not store.is_done(cell)])
            state["running"] = len(pending)
            report()
    return died
