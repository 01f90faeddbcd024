"""A worker process killed mid-cell (e.g. by the kernel for memory) is a retryable failure: the
local executor records a failed attempt for its unfinished cells and runs them again in a fresh pool."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from bench.harness.execution import execute
from bench.harness.runner import Cell
from bench.harness.store import ResultStore


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _workers(pid: int) -> set[int]:
    """The pool's worker processes (not multiprocessing's resource tracker)."""
    out = set()
    for p in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes():
                out.add(p)
        except OSError:  # exited meanwhile
            pass
    return out


def _kill_first_worker_once(store: ResultStore, stop: threading.Event, killed: list[int]) -> None:
    """Once the first cell is stored, SIGKILL the worker busy with a later one: a fresh process per cell, so the
    one that stored the first cell is exiting; its replacement (a pid not seen at that moment) is the busy one."""
    finished: set[int] | None = None
    while not stop.is_set():
        if finished is None and store.cells_dir.exists() and any(store.cells_dir.glob("*.json")):
            finished = _workers(os.getpid())
        if finished is not None:
            for w in _workers(os.getpid()) - finished:
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(w)
                return
        time.sleep(0.02)


def test_killed_worker_is_retried_in_a_fresh_pool(tmp_path):
    store = ResultStore(tmp_path)
    cells = [Cell("crash", "tune", "tiny", "inpaint", 0.3, "csgm", {"steps": 300}, "tune", (i,), seed=i)
             for i in range(4)]
    stop, killed = threading.Event(), []
    monitor = threading.Thread(target=_kill_first_worker_once, args=(store, stop, killed), daemon=True)
    monitor.start()
    try:
        counts = execute(cells, store, "local", workers=1, max_attempts=2, recycle_after=1)
    finally:
        stop.set()
        monitor.join(5)
    assert killed, "the test never found a worker to kill"
    assert counts == {"ok": 4, "failed": 0, "missing": 0}
    reasons = [json.loads(p.read_text())["reason"] for p in (tmp_path / "attempts").glob("*.json")]
    assert reasons and all(r.startswith("worker crashed") for r in reasons)


def _seen_workers(stop: threading.Event, seen: set[int]) -> None:
    while not stop.is_set():
        seen |= _workers(os.getpid())
        time.sleep(0.01)


def test_a_worker_process_serves_recycle_after_chunks_before_a_fresh_one(tmp_path):
    """recycle_after = 2 with one worker and 4 cells: exactly 2 worker processes, each running 2 cells (no spawn
    per cell: a spawn costs as much as a quick cell), and the run finishes (a pool with max_tasks_per_child > 1
    hangs here once a worker exits: CPython gh-115634)."""
    store = ResultStore(tmp_path)
    cells = [Cell("recycle", "tune", "tiny", "inpaint", 0.3, "csgm", {"steps": 5}, "tune", (i,), seed=i)
             for i in range(4)]
    stop, seen = threading.Event(), set()
    monitor = threading.Thread(target=_seen_workers, args=(stop, seen), daemon=True)
    monitor.start()
    try:
        counts = execute(cells, store, "local", workers=1, recycle_after=2)
    finally:
        stop.set()
        monitor.join(5)
    assert counts == {"ok": 4, "failed": 0, "missing": 0}
    assert len(seen) == 2, seen
