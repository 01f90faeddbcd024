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


def _kill_first_worker_once(store: ResultStore, stop: threading.Event, killed: list[int]) -> None:
    """Once the first cell is stored (a worker is then busy with the next), SIGKILL the worker."""
    while not stop.is_set():
        if store.cells_dir.exists() and any(store.cells_dir.glob("*.json")):
            workers = [p for p in _children(os.getpid())
                       if b"multiprocessing" in Path(f"/proc/{p}/cmdline").read_bytes()]
            if workers:
                os.kill(workers[-1], signal.SIGKILL)
                killed.append(workers[-1])
                return
        time.sleep(0.05)


def test_killed_worker_is_retried_in_a_fresh_pool(tmp_path):
    store = ResultStore(tmp_path)
    cells = [Cell("crash", "tune", "tiny", "inpaint", 0.3, "csgm", {"steps": 300}, "tune", (i,), seed=i)
             for i in range(4)]
    stop, killed = threading.Event(), []
    monitor = threading.Thread(target=_kill_first_worker_once, args=(store, stop, killed), daemon=True)
    monitor.start()
    try:
        counts = execute(cells, store, "local", workers=1, max_attempts=2)
    finally:
        stop.set()
        monitor.join(5)
    assert killed, "the test never found a worker to kill"
    assert counts == {"ok": 4, "failed": 0, "missing": 0}
    reasons = [json.loads(p.read_text())["reason"] for p in (tmp_path / "attempts").glob("*.json")]
    assert reasons and all(r.startswith("worker crashed") for r in reasons)
