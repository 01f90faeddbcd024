"""Measure the harness's speed and memory and write results/perf/ (perf_<device>.json + perf.md).

    python -m bench.perf                         # embedded + 1024 architecture, this machine's device
    python -m bench.perf --scales embedded --sweep   # also time the README's default sweep 3 times (~10 min)
    BENCH_DEVICE=cuda python -m bench.perf       # the same on a GPU (e.g. in a SLURM job)

Sections: per-step time of each method next to the bare generator forward+backward (overhead
ratio) and SGILO next to ILO; throughput vs batch size; time and NFE to reach a reference MSE
on inpainting with 5% observed; peak memory per method; optionally the default sweep. The JSON
is rewritten after each section, so an interrupted run keeps what it measured.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from bench.core.device import get_device
from bench.experiments.perf import report, sections
from bench.experiments.perf.timing import MIN_EXTRA_STEPS
from bench.experiments.perf.workloads import SCALES


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split(",") if x)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", default=",".join(SCALES), help=f"comma-separated, from {SCALES}")
    p.add_argument("--device", default=None, help="cpu, cuda, ...; default $BENCH_DEVICE or auto")
    p.add_argument("--batches", default="1,2,4,8,16", help="batch sizes for the embedded step timings")
    p.add_argument("--ffhq-batches", default=None, help="batch sizes at 1024 (default: 1 on CPU, 1,2,4,8,16 on GPU)")
    p.add_argument("--rounds", default="0,1,2", help="rounds whose steps are timed (round r starts at layer r)")
    p.add_argument("--short", type=int, default=5, help="steps of the short run (embedded)")
    p.add_argument("--long", type=int, default=40, help="steps of the long run (embedded; >= short + 30)")
    p.add_argument("--ffhq-steps", default=None, help="short,long steps at 1024 (default: 2,32 on GPU; 1,2 on CPU, "
                   "where 30 extra steps of every method would take hours: those rows are marked indicative)")
    p.add_argument("--repeats", type=int, default=7, help="interleaved repeats per measurement (all kept; CIs from them)")
    p.add_argument("--reach-batch", type=int, default=8, help="images in the time-to-MSE problem (0: skip)")
    p.add_argument("--memory-batch", type=int, default=8, help="batch of the peak-memory runs (0: skip)")
    p.add_argument("--sweep", action="store_true", help="also run and time the README's default sweep")
    p.add_argument("--sweep-runs", type=int, default=3, help="runs of the default sweep (median and range reported)")
    p.add_argument("--accel", default="", metavar="S1;S2",
                   help="speed settings to compare with the plain path, ';'-separated, each a BENCH_ACCEL value "
                        "(e.g. 'channels_last;bf16;compile;channels_last,bf16,compile'); '' skips the comparison")
    p.add_argument("--sgilo-settings", default="", metavar="S1;S2",
                   help="speed settings under which SGILO is also timed beside the plain methods, ';'-separated, "
                        "each a BENCH_ACCEL value (e.g. 'score-bf16;score-graphs;score-bf16,score-graphs')")
    p.add_argument("--score-bf16", action="store_true", help="shorthand for --sgilo-settings score-bf16")
    p.add_argument("--accel-batch", type=int, default=8, help="batch of the acceleration comparison")
    p.add_argument("--accel-method", default="ilo_unreg",
                   help="method of the acceleration comparison (sgilo with --accel-round 2 for the score settings)")
    p.add_argument("--accel-round", type=int, default=1, help="round of the acceleration comparison")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="results/perf")
    p.add_argument("--name", default=None, help="run name in the file names (default: cpu or cuda)")
    return p.parse_args(argv)


def _sgilo_settings(a: argparse.Namespace) -> tuple[str, ...]:
    from bench.priors.acceleration import Acceleration

    labels = [x.strip() for x in a.sgilo_settings.split(";") if x.strip()]
    if a.score_bf16 and "score-bf16" not in labels:
        labels.insert(0, "score-bf16")
    for lab in labels:
        Acceleration.parse(lab)  # an unknown setting fails here, before any timing, with the valid ones listed
    return tuple(labels)


def main(argv: list[str] | None = None) -> int:
    from bench.core.runtime import init_process

    init_process()  # the malloc tuning is part of what is measured (bench/core/malloc.py)
    a = parse(argv)
    scales = [s for s in a.scales.split(",") if s]
    bad = [s for s in scales if s not in SCALES]
    if bad:
        print(f"unknown scale(s) {bad}; choose from {SCALES}", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    dev = get_device(a.device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"perf_{a.name or dev.type}.json"
    from bench.experiments.perf.roofline import device_peaks

    run = {"machine": sections.machine(dev), "date": datetime.date.today().isoformat(),
           "peaks": device_peaks(dev, a.threads),
           "command": "python -m bench.perf " + " ".join(argv if argv is not None else sys.argv[1:]),
           "steps": [], "notes": []}

    def save() -> None:
        path.write_text(json.dumps(run, indent=1))

    t0 = time.perf_counter()
    gpu = dev.type == "cuda"
    for scale in scales:
        big = scale == "ffhq-arch"
        batches = _ints(a.ffhq_batches) if (big and a.ffhq_batches) else (_ints("1,2,4,8,16") if gpu or not big else (1,))
        if not big:
            batches = _ints(a.batches)
        short, long = _ints(a.ffhq_steps or ("2,32" if gpu else "1,2")) if big else (a.short, a.long)
        plan = sections.StepPlan(batches, _ints(a.rounds), short, long, a.repeats if (gpu or not big) else 2)
        if long - short < MIN_EXTRA_STEPS:
            run["notes"].append(f"{scale}: marginals from {long - short} extra step(s), below {MIN_EXTRA_STEPS}: "
                                "indicative only")
        run["steps"] += sections.step_times(scale, dev, plan, sgilo_settings=_sgilo_settings(a))
        save()
    if a.accel:
        run["acceleration"] = []
        for scale in scales:
            big = scale == "ffhq-arch"
            short, long = _ints(a.ffhq_steps or ("2,32" if gpu else "1,2")) if big else (a.short, a.long)
            plan = sections.StepPlan((a.accel_batch,), (a.accel_round,), short, long,
                                     a.repeats if (gpu or not big) else 2)
            run["acceleration"] += sections.acceleration(scale, dev, a.accel_batch, a.accel.split(";"), plan,
                                                         method=a.accel_method, rnd=a.accel_round)
            save()
    if a.reach_batch and "embedded" in scales:
        run["reach"] = sections.reach("embedded", dev, a.reach_batch, run["steps"])
        save()
    if a.memory_batch:
        run["memory"] = []
        for scale in scales:
            mb = a.memory_batch if (gpu or scale == "embedded") else 1
            run["memory"] += sections.memory(scale, dev, mb, a.threads)
            save()
    if a.sweep:
        run["sweep"] = sections.default_sweeps(str(Path("runs") / "perf-sweep"), a.sweep_runs)
        save()
    run["seconds"] = time.perf_counter() - t0
    save()
    print(f"wrote {path} and {report.write(out)} in {run['seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
