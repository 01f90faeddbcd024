"""A local pool worker must not outlive a killed sweep (it would idle forever, holding its memory)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PARENT = """
import multiprocessing as mp, os, sys, time

def child(watch, parent):
    if watch:
        from bench.harness.execution import exit_with_parent
        exit_with_parent(parent, poll_s=0.1)
    time.sleep(600)

if __name__ == "__main__":
    p = mp.get_context("spawn").Process(target=child, args=(sys.argv[1] == "watch", os.getpid()))
    p.start()
    print(p.pid, flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running, not exited (a zombie nobody reaps counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _orphan_survives(mode: str, tmp_path: Path, wait_s: float) -> bool:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    child = int(parent.stdout.readline())
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + wait_s  # a liveness bound, not a timing assertion
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.1)
        return _alive(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_worker_exits_when_its_parent_is_killed(tmp_path):
    assert not _orphan_survives("watch", tmp_path, wait_s=60)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_without_the_watcher_the_orphan_lives_on(tmp_path):
    """The control: the behaviour the watcher fixes (so the test above can fail)."""
    assert _orphan_survives("plain", tmp_path, wait_s=2)
