"""Helpers for integration tests that need a live SLURM cluster.

Usage in a test module::

    import pytest
    from slurm_utils import require_slurm, SLURM_PARTITION  # noqa: F401  (require_slurm is a fixture)

    pytestmark = pytest.mark.slurm

    def test_something(require_slurm):
        ...

or, for a whole module without the fixture::

    pytestmark = [pytest.mark.slurm, skip_unless_slurm()]

The probe is ``scontrol ping`` (does the controller answer?), never submitit's AutoExecutor
detection: that only checks that ``srun`` is on PATH and says "slurm" with no daemon running,
after which every submission fails after ~9 s.

Environment:
    BENCH_SLURM_PARTITION  partition the tests submit to (default ``debug``, the partition
                           ``scripts/local_slurm.sh start`` creates).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest

SLURM_PARTITION = os.environ.get("BENCH_SLURM_PARTITION", "debug")
START_HINT = "start it with bash scripts/local_slurm.sh start"

__all__ = [
    "SLURM_PARTITION",
    "START_HINT",
    "slurm_available",
    "sacct_available",
    "require_slurm",
    "skip_unless_slurm",
]


def _run(cmd: list[str], timeout: float = 15.0) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"{cmd[0]} timed out after {timeout:.0f} s"
    except OSError as exc:
        return 127, f"{cmd[0]}: {exc}"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _slurm_conf_present() -> bool:
    # Without a slurm.conf, Slurm clients try "configless" mode (a DNS SRV lookup) and fail slowly.
    return os.path.exists(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))


@functools.lru_cache(maxsize=None)
def _probe(partition: str | None) -> tuple[bool, str]:
    if shutil.which("scontrol") is None:
        return False, "scontrol not found (SLURM client not installed)"
    if not _slurm_conf_present():
        return False, "no slurm.conf (SLURM not configured)"
    rc, out = _run(["scontrol", "ping"])
    if rc != 0 or "is UP" not in out:
        return False, f"controller not answering: {out.splitlines()[0] if out else f'scontrol ping exit {rc}'}"
    if partition:
        rc, out = _run(["sinfo", "-h", "-p", partition, "-o", "%a %D"])
        if rc != 0 or not out:
            return False, f"partition {partition!r} not found (set BENCH_SLURM_PARTITION)"
        if not out.split()[0].startswith("up"):
            return False, f"partition {partition!r} is {out.split()[0]}"
    return True, out.splitlines()[0] if out else "ok"


def slurm_available(partition: str | None = None) -> tuple[bool, str]:
    """(True, info) iff ``scontrol ping`` says the controller is UP (and ``partition``, if given, is up).

    Otherwise (False, reason). Cached per process; cheap (~10-50 ms) when the cluster is up or the
    client is missing.
    """
    return _probe(partition)


@functools.lru_cache(maxsize=None)
def sacct_available() -> tuple[bool, str]:
    """(True, '') iff job accounting works (``sacct`` answers). submitit needs it to see jobs that
    were cancelled or killed from outside; without it ``job.result()`` waits forever for them."""
    if shutil.which("sacct") is None:
        return False, "sacct not found"
    rc, out = _run(["sacct", "-n", "-X", "-o", "JobID", "-S", "now-1minutes"])
    if rc != 0:
        return False, f"SLURM accounting not available ({out.splitlines()[0] if out else rc}): start with LOCAL_SLURM_ACCOUNTING=1"
    return True, ""


def _skip_reason() -> str | None:
    ok, why = slurm_available(SLURM_PARTITION)
    return None if ok else f"SLURM not running: {START_HINT} ({why})"


def skip_unless_slurm():
    """A ``pytest.mark.skipif`` marker for modules/tests that need the cluster (evaluated at import)."""
    reason = _skip_reason()
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture
def require_slurm() -> str:
    """Skip the test unless a SLURM controller answers; returns the partition to submit to."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return SLURM_PARTITION
