"""The sweep on a real (local, single-node) SLURM cluster: submitit, sbatch slurm/grid.sh, scancel.

Skipped with a reason when no controller answers `scontrol ping`; `bash scripts/test.sh`
starts the cluster (scripts/local_slurm.sh). GPU count is 0: the local cluster has none.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_utils import SLURM_PARTITION, require_slurm, sacct_available  # noqa: F401 - fixture

from bench.harness.store import ResultStore

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[1]
BASE = ["--prior", "tiny", "--tasks", "inpaint", "--methods", "csgm", "--n-test", "4", "--eval-batch", "2",
        "--wandb", "disabled", "--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-mem-gb", "1",
        "--slurm-time-min", "10", "--slurm-signal-delay-s", "15", "--steps-scale", "0.25"]


def sweep(args: list[str], timeout: int = 400, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_SLURM_PARTITION": SLURM_PARTITION}
    return subprocess.run([sys.executable, "-m", "bench.sweep", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, **kw)


def test_sweep_through_submitit_slurm(require_slurm, tmp_path):
    out = tmp_path / "sweep"
    p = sweep(BASE + ["--levels", "inpaint=0.3,0.6", "--executor", "slurm", "--slurm-partition", require_slurm,
                      "--chunk-size", "2", "--out", str(out)])
    assert p.returncode == 0, p.stderr[-3000:]
    rows = ResultStore(out).rows()
    assert len([r for r in rows if r["stage"] == "tune"]) == 2 * 2 * 8
    assert len([r for r in rows if r["stage"] == "eval"]) == 2 * 4
    assert all(r["status"] == "ok" for r in rows)
    assert list((out / "slurm").glob("*_0_log.out"))  # submitit array logs


def _wait_job(job_id: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        q = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
        if not q.stdout.strip():
            return
        time.sleep(1)
    raise TimeoutError(f"SLURM job {job_id} still queued after {timeout} s")


def test_grid_sh_runs_a_written_plan(require_slurm, tmp_path):
    out = tmp_path / "sweep"
    args = BASE + ["--levels", "inpaint=0.5", "--executor", "local", "--out", str(out), "--chunk-size", "1"]
    for stage in ("tune", "eval"):
        p = sweep(args + ["--plan-only", stage])
        assert p.returncode == 0, p.stderr
        n = len(json.loads((out / f"plan_{stage}.json").read_text())["cells"])
        sub = subprocess.run(["sbatch", "--parsable", "--gres=none", "-p", require_slurm, "--mem=1G", "-c", "1",
                              f"--array=0-{n - 1}", f"--output={tmp_path}/grid-%A_%a.out", "slurm/grid.sh",
                              str(out / f"plan_{stage}.json")], capture_output=True, text=True, cwd=ROOT)
        assert sub.returncode == 0, sub.stderr
        _wait_job(sub.stdout.strip().split(";")[0])
    rows = ResultStore(out).rows()
    assert len(rows) == 2 * 8 + 4 and all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows][:3]


def test_cancelled_job_is_recorded_failed_and_retried(require_slurm, tmp_path):
    ok, why = sacct_available()
    if not ok:
        pytest.skip(f"needs SLURM accounting (sacct) to see a cancelled job: {why}")
    out = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bench.sweep", *BASE, "--levels", "inpaint=0.5", "--executor", "slurm",
                             "--slurm-partition", require_slurm, "--chunk-size", "8", "--out", str(out),
                             "--max-attempts", "3"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    cancelled = None
    deadline = time.time() + 120
    while time.time() < deadline and cancelled is None:  # cancel the first job as soon as it runs
        q = subprocess.run(["squeue", "-h", "-u", "root", "-o", "%i %T %j"], capture_output=True, text=True).stdout
        for line in q.splitlines():
            jid, state, name = line.split()[:3]
            if state == "RUNNING" and "submitit" in name:
                subprocess.run(["scancel", jid.split("_")[0]], check=True)
                cancelled = jid
                break
        time.sleep(0.2)
    assert cancelled, "no running job to cancel"
    stdout, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 0, stderr[-3000:]
    store = ResultStore(out)
    attempts = [json.loads(p.read_text()) for p in store.attempts_dir.glob("*.json")]
    assert attempts and all("did not finish" in a["reason"] for a in attempts), [a["reason"] for a in attempts]
    rows = store.rows()
    assert len([r for r in rows if r["stage"] == "tune"]) == 2 * 8  # retried: nothing lost, nothing duplicated
    assert all(r["status"] == "ok" for r in rows)


def test_preempted_job_is_requeued_and_skips_finished_cells(require_slurm, tmp_path):
    """submitit's checkpoint contract: on USR2 (what Slurm sends before preemption or the time
    limit) ChunkJob is requeued with the same arguments, and the store makes the second run skip
    the cells the first one finished. The signal is sent by hand once a few cells are stored, so
    the test does not depend on when slurmctld gets round to the time limit."""
    import submitit

    from bench.harness.execution import ChunkJob
    from bench.harness.runner import Cell

    store_root = tmp_path / "store"
    cells = [Cell("requeue", "tune", "tiny", "inpaint", 0.5, "csgm", {"steps": 400}, "tune", (i % 8,), seed=i)
             for i in range(16)]
    store = ResultStore(store_root)
    ex = submitit.AutoExecutor(folder=str(tmp_path / "slurm"), cluster="slurm")
    ex.update_parameters(timeout_min=10, slurm_partition=require_slurm, cpus_per_task=1, mem_gb=1)
    job = ex.submit(ChunkJob(), [c.to_dict() for c in cells], str(store_root), 2, "disabled")
    deadline = time.time() + 400
    signalled = False
    while not job.done() and time.time() < deadline:
        if not signalled and sum(store.is_done(c) for c in cells) >= 3:
            subprocess.run(["scancel", "--signal=USR2", str(job.job_id)], check=True)
            signalled = True
        # Slurm holds a requeued job for ~2 minutes (Reason=BeginTime); release it at once
        reason = subprocess.run(["squeue", "-h", "-j", str(job.job_id), "-o", "%r"], capture_output=True, text=True)
        if "BeginTime" in reason.stdout:
            subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"], capture_output=True)
        time.sleep(1)
    assert signalled, "the job finished before 3 cells were stored (too fast to signal?)"
    counts = job.result()  # the requeued run's counts
    assert all(store.is_done(c) for c in cells)
    assert counts["skipped"] >= 3, counts  # the requeued run found finished cells and did not redo them
    assert counts["ok"] + counts["skipped"] == len(cells)
    assert len(store.rows()) == len(cells)
