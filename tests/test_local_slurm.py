"""Integration smoke tests of the sweep's SLURM path through submitit, against a live cluster.

Skipped (with the reason) unless ``scontrol ping`` answers; start the local single-node cluster with
``bash scripts/local_slurm.sh start`` (root, Debian 12). Partition: $BENCH_SLURM_PARTITION (default
``debug``). About 20-30 s in total when the cluster is up and idle.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from slurm_utils import SLURM_PARTITION, require_slurm, sacct_available  # noqa: F401 (fixture)

submitit = pytest.importorskip("submitit")
cloudpickle = pytest.importorskip("cloudpickle")

pytestmark = pytest.mark.slurm

# This module is imported by pytest from tests/ (not a package, not on the job's sys.path), so
# cloudpickle must ship its functions by value rather than as "test_local_slurm.<name>" references.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def square_on_node(x: int) -> tuple[int, str, str | None]:
    """Tiny picklable job: the square, where it ran, and its array index."""
    return x * x, socket.gethostname(), os.environ.get("SLURM_ARRAY_TASK_ID")


def sleep_then_return(seconds: float) -> str:
    time.sleep(seconds)
    return "not cancelled"


def _executor(folder, partition: str):
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")  # explicit: never rely on srun detection
    # slurm_signal_delay_s: submitit's default --signal=USR2@90 is beyond a 2-min limit's useful range
    # (the job would be signalled almost at once); keep it small with short timeouts.
    ex.update_parameters(
        timeout_min=2,
        slurm_partition=partition,
        cpus_per_task=1,
        slurm_signal_delay_s=15,
        name="bench-slurm-smoke",
    )  # gpus_per_node deliberately unset: the CI cluster has no GPUs (GPU count 0)
    return ex


def _wait_done(jobs, timeout_s: float) -> float:
    """Poll job.done() (what job.result() waits on) with a deadline instead of blocking forever."""
    t0 = time.monotonic()
    while not all(j.done() for j in jobs):
        elapsed = time.monotonic() - t0
        if elapsed > timeout_s:
            states = {j.job_id: j.get_info(mode="force").get("State", "?") for j in jobs}
            pytest.fail(f"submitit did not see the job(s) finish within {timeout_s:.0f} s: {states}")
        time.sleep(0.5)
    return time.monotonic() - t0


def _squeue_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=15)
    return out.stdout.strip()


def test_map_array_runs_on_slurm(require_slurm, tmp_path):
    partition = require_slurm
    ex = _executor(tmp_path / "submitit", partition)
    assert ex.cluster == "slurm"
    jobs = ex.map_array(square_on_node, [0, 1, 2, 3])
    try:
        assert len(jobs) == 4
        assert len({j.job_id.split("_")[0] for j in jobs}) == 1, [j.job_id for j in jobs]  # one array job
        sbatch_script = jobs[0].paths.submission_file.read_text()
        assert f"--partition={partition}" in sbatch_script
        assert "gpu" not in sbatch_script and "gres" not in sbatch_script, sbatch_script
        _wait_done(jobs, timeout_s=120)
        results = [j.result() for j in jobs]
    finally:
        subprocess.run(["scancel", *{j.job_id.split("_")[0] for j in jobs}], capture_output=True, timeout=15)
    assert [r[0] for r in results] == [0, 1, 4, 9]
    assert sorted(r[2] for r in results) == ["0", "1", "2", "3"]  # really ran as array tasks
    nodes = subprocess.run(["sinfo", "-h", "-p", partition, "-o", "%n"], capture_output=True, text=True).stdout.split()
    assert all(r[1] in nodes for r in results), (results, nodes)


def test_scancel_is_reported_as_cancelled(require_slurm, tmp_path):
    # Without accounting submitit cannot see the cancellation and job.result() blocks forever.
    ok, why = sacct_available()
    if not ok:
        pytest.skip(why)
    ex = _executor(tmp_path / "submitit", require_slurm)
    job = ex.submit(sleep_then_return, 60)
    try:
        t0 = time.monotonic()
        while (state := _squeue_state(job.job_id)) != "RUNNING":
            assert state in ("PENDING", "CONFIGURING", ""), f"job {job.job_id} is {state!r} before scancel"
            assert time.monotonic() - t0 < 60, f"job {job.job_id} still {state!r} after 60 s (cluster busy?)"
            time.sleep(0.3)
        subprocess.run(["scancel", job.job_id], check=True, capture_output=True, timeout=15)
        elapsed = _wait_done([job], timeout_s=40)
        with pytest.raises((submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError)) as err:
            job.result()
    finally:
        subprocess.run(["scancel", job.job_id], capture_output=True, timeout=15)
    assert "CANCELLED" in str(err.value), str(err.value)[:500]
    assert job.get_info(mode="force").get("State", "").startswith("CANCELLED")
    assert elapsed < 40
