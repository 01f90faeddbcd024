"""SLURM settings shared by every command that submits cells (sweep, fairness): the options,
their dataclass, and the check whether a controller answers."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass
class SlurmConfig:
    partition: str = os.environ.get("BENCH_SLURM_PARTITION", "")
    gpus_per_node: int = 0
    cpus_per_task: int = 4
    mem_gb: int = 32
    timeout_min: int = 240
    account: str = ""
    array_parallelism: int = 64
    signal_delay_s: int = 90  # seconds before the time limit that submitit gets USR2 (keep < timeout)


def add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("SLURM (submitit)")
    g.add_argument("--slurm-partition", default=os.environ.get("BENCH_SLURM_PARTITION", ""))
    g.add_argument("--slurm-gpus", type=int, default=None,
                   help="GPUs per job (default $BENCH_SLURM_GPUS, else the world's: 1 for ffhq, 0 for the CPU-sized "
                        "worlds)")
    g.add_argument("--slurm-cpus", type=int, default=4)
    g.add_argument("--slurm-mem-gb", type=int, default=32)
    g.add_argument("--slurm-time-min", type=int, default=240)
    g.add_argument("--slurm-account", default="")
    g.add_argument("--slurm-signal-delay-s", type=int, default=90,
                   help="seconds before the time limit at which a job checkpoints and is requeued")


def slurm_config_from_args(a: argparse.Namespace, world_gpus: int) -> SlurmConfig:
    """The parsed options; GPUs default to $BENCH_SLURM_GPUS, else the world's ``slurm_gpus``."""
    gpus = a.slurm_gpus
    if gpus is None:
        gpus = int(os.environ.get("BENCH_SLURM_GPUS", str(world_gpus)))
    return SlurmConfig(partition=a.slurm_partition, gpus_per_node=gpus, cpus_per_task=a.slurm_cpus,
                       mem_gb=a.slurm_mem_gb, timeout_min=a.slurm_time_min, account=a.slurm_account,
                       signal_delay_s=a.slurm_signal_delay_s)


def slurm_alive() -> tuple[bool, str]:
    """Is a SLURM controller answering? (submitit only checks that ``srun`` exists)."""
    if shutil.which("scontrol") is None:
        return False, "scontrol not found"
    try:
        p = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"scontrol ping failed: {err}"
    ok = p.returncode == 0 and "UP" in p.stdout
    return ok, (p.stdout or p.stderr).strip()


def resolve_executor(name: str) -> str:
    """``auto`` -> ``slurm`` when a controller answers, else ``local`` (called when a run starts,
    never while parsing arguments)."""
    if name != "auto":
        return name
    return "slurm" if slurm_alive()[0] else "local"


def default_chunk_size(chunk_size: int | None, executor: str) -> int:
    """Cells per job: as given, else 8 on SLURM (amortises job start-up) and 1 locally."""
    return chunk_size or (8 if executor == "slurm" else 1)
