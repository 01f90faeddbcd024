"""The measurements, one function per figure of the perf report; each returns plain dicts."""
from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

import methods
from bench.experiments.perf.roofline import score_forward_flops, sgilo_flop_floor, step_counts
from bench.experiments.perf.timing import MIN_EXTRA_STEPS, interleaved_marginals, ratio_ci, sync
from bench.experiments.perf.workloads import bare_step, build_prior, images, problem, round_runner

METHODS = ("csgm", "ilo", "ilo_unreg", "sgilo")


def sgilo_column(setting: str) -> str:
    """The column of SGILO timed under a speed setting (bench/priors/acceleration.py), e.g. sgilo[score-bf16]."""
    return f"sgilo[{setting}]"


SGILO_SCORE_BF16 = sgilo_column("score-bf16")


@dataclass
class StepPlan:
    batches: tuple[int, ...]
    rounds: tuple[int, ...]
    short: int
    long: int
    repeats: int


def timing_params(method: str):
    """What each method's step is timed with: its defaults, except ILO with the ILO paper's radii
    (state and latent projections on, the costlier case) and SGILO with scores in rounds 1-2."""
    m = methods.get(method)
    if method == "ilo":
        return m.presets()["ilo_paper"]
    return m.default_params()


def machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def step_times(scale: str, device: torch.device, plan: StepPlan, method_names=METHODS, log=print,
               sgilo_settings: tuple[str, ...] = ()) -> list[dict]:
    """Per-step seconds of every method round and of the bare generator step, measured interleaved (every
    repeat kept), with each method's ratio to the bare step and SGILO's to ILO as bootstrap CIs.
    ``sgilo_settings``: speed settings (BENCH_ACCEL values, e.g. "score-bf16") under which SGILO is also timed,
    in the same interleaving, as columns ``sgilo[<setting>]``."""
    prior = build_prior(scale, device)
    fast = {lab: build_prior(scale, device, lab) for lab in sgilo_settings}
    rows = []
    for B in plan.batches:
        prob = problem(prior, images(prior, B, scale))
        fast_probs = {lab: problem(p, images(p, B, scale)) for lab, p in fast.items()}
        for r in plan.rounds:
            runners = {"bare_seconds": repeated(bare_step(prior, prob, r))}
            runners |= {m: round_runner(m, timing_params(m), r, prior, prob) for m in method_names
                        if not (m == "csgm" and r > 0)}
            if r >= 1 and "sgilo" in method_names:
                for lab, p in fast.items():
                    runners[sgilo_column(lab)] = round_runner("sgilo", timing_params("sgilo"), r, p, fast_probs[lab])
            reps = interleaved_marginals(runners, plan.short, plan.long, plan.repeats, device,
                                         min_extra=min(MIN_EXTRA_STEPS, plan.long - plan.short))
            row = {"scale": scale, "batch": B, "round": r, "short": plan.short, "long": plan.long, "repeats": reps,
                   "counts": _counts(prior, r),
                   **{k: statistics.median(v) for k, v in reps.items()},
                   "ratios": {m: ratio_ci(reps[m], reps["bare_seconds"]) for m in runners if m != "bare_seconds"}}
            for m in ["sgilo"] + [sgilo_column(lab) for lab in fast]:
                if m in reps and "ilo" in reps:
                    row["ratios"][f"{m}/ilo"] = ratio_ci(reps[m], reps["ilo"])
            rows.append(row)
            log(f"[steps] {scale} B={B} round {r}: " + ", ".join(f"{k.removesuffix('_seconds')} {row[k] * 1e3:.2f} ms"
                                                                   for k in runners))
    return rows


def _counts(prior, r: int) -> dict:
    """The generator step's FLOP and byte counts from layer r and, where SGILO's round r uses a score model,
    that model's forward FLOPs and SGILO's FLOP floor over ILO (roofline.py)."""
    counts = step_counts(prior.generator, r)
    score = prior.scores.get(r - 1) if r >= 1 else None
    if score is not None and hasattr(score, "config"):
        evals = 2 * timing_params("sgilo").hot_steps
        counts["score_forward_flops"] = score_forward_flops(score.config)
        counts["sgilo_flop_floor"] = sgilo_flop_floor(counts["flops"], counts["score_forward_flops"], evals)
    return counts


def repeated(step) -> Callable[[int], None]:
    """A runner doing ``n`` bare steps (the bare floor is measured like the methods: marginally, interleaved)."""
    def run(n: int) -> None:
        for _ in range(n):
            step()
    return run


def acceleration(scale: str, device: torch.device, batch: int, settings: list[str], plan: StepPlan,
                 method: str = "ilo_unreg", rnd: int = 1, log=print) -> list[dict]:
    """Each speed setting against the plain path on the same problem: the method's per-step time in round
    ``rnd`` (all settings measured interleaved), the speed-up with its CI, and the reconstruction difference
    of a short solve (mean |x_setting - x_plain| and both reference MSEs)."""
    labels = [""] + [s for s in settings if s]
    priors = {lab: build_prior(scale, device, lab) for lab in labels}
    x = images(priors[""], batch, scale)
    probs = {lab: problem(p, x) for lab, p in priors.items()}
    p = timing_params(method)
    runners = {lab or "plain": round_runner(method, p, rnd, priors[lab], probs[lab]) for lab in labels}
    reps = interleaved_marginals(runners, plan.short, plan.long, plan.repeats, device,
                                 min_extra=min(MIN_EXTRA_STEPS, plan.long - plan.short))
    short = p.replace(steps=(plan.short,) * (rnd + 1))
    recon = {lab: torch.stack([r.reconstruction for r in methods.get(method).solve(probs[lab], priors[lab], short)])
             for lab in labels}
    rows = []
    for lab in labels:
        name = lab or "plain"
        rows.append({"scale": scale, "batch": batch, "method": method, "round": rnd, "setting": name,
                     "step_seconds": statistics.median(reps[name]), "repeats": reps[name],
                     "speedup": ratio_ci(reps["plain"], reps[name]),
                     "recon_mean_abs_diff": float((recon[lab] - recon[""]).abs().mean()),
                     "reference_mse": float((recon[lab] - x.cpu()).pow(2).mean())})
        log(f"[accel] {scale} B={batch} {name}: {rows[-1]['step_seconds'] * 1e3:.2f} ms/step, "
            f"|diff| {rows[-1]['recon_mean_abs_diff']:.2e}")
    return rows


def reach(scale: str, device: torch.device, batch: int, step_rows: list[dict], method_names=METHODS,
          log=print) -> dict:
    """Each method with its default hyperparameters on the fixed problem: the mean reference-MSE
    curve over ``batch`` images, the NFE and wall time at which it first reaches two targets."""
    prior = build_prior(scale, device)
    prob = problem(prior, images(prior, batch, scale))
    curves = {}
    for m in method_names:
        p = methods.get(m).default_params()
        sync(device)
        t0 = time.perf_counter()
        res = methods.get(m).solve(prob, prior, p)
        sync(device)
        wall = time.perf_counter() - t0
        mse = torch.tensor([[t[2] for t in r.trace] for r in res]).mean(0)
        nfe_g, nfe_s, cost = _per_step_counts(m, p, step_rows, batch)
        share = torch.tensor(cost).cumsum(0) / sum(cost)
        curves[m] = {"wall_seconds": wall, "mse": mse.tolist(), "nfe_generator": nfe_g, "nfe_score": nfe_s,
                     "seconds": (share * wall).tolist(), "final_mse": float(mse[-1]), "best_mse": float(mse.min())}
        log(f"[reach] {m}: {len(mse)} evaluations in {wall:.1f} s, final mean MSE {mse[-1]:.4f}")
    targets = {"reached_by_all": max(c["best_mse"] for c in curves.values()),
               "within_10pct_of_best": 1.1 * min(c["best_mse"] for c in curves.values())}
    table = {}
    for m, c in curves.items():
        table[m] = {}
        for name, target in targets.items():
            hit = next((i for i, v in enumerate(c["mse"]) if v <= target), None)
            table[m][name] = None if hit is None else {
                "step": hit, "nfe_generator": c["nfe_generator"][hit], "nfe_score": c["nfe_score"][hit],
                "nfe_total": c["nfe_generator"][hit] + c["nfe_score"][hit], "seconds": c["seconds"][hit]}
    return {"scale": scale, "batch": batch, "task": "inpaint", "level": 0.05, "targets": targets,
            "curves": curves, "table": table}


def _per_step_counts(method: str, p, step_rows: list[dict], batch: int) -> tuple[list[int], list[int], list[float]]:
    """Cumulative generator/score evaluations and a relative cost per trace entry (a step of round
    r costs what the step timings measured for that round at this batch size, else 1)."""
    steps = (p.steps,) if method == "csgm" else tuple(p.steps)
    timed = {row["round"]: row.get(method) for row in step_rows if row["batch"] == batch}
    per_score = 0
    g_acc, s_acc, nfe_g, nfe_s, cost = 0, 0, [], [], []
    for r, n in enumerate(steps):
        if method == "sgilo":
            temp = p.temperature[min(r, len(p.temperature) - 1)]
            per_score = 2 * p.hot_steps if (p.start_layer + r >= 1 and temp > 0 and p.mode == "official") else 0
        c = timed.get(r) or timed.get(max(timed, default=0)) or 1.0
        for _ in range(n):
            g_acc += 1
            s_acc += per_score
            nfe_g.append(g_acc); nfe_s.append(s_acc); cost.append(c)
    nfe_g.append(g_acc + 1); nfe_s.append(s_acc); cost.append(cost[-1] if cost else 1.0)  # the final evaluation
    return nfe_g, nfe_s, cost


def _own_peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: that survives
    fork+exec, so a spawned child would report its parent's size when the parent was larger."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # non-Linux fallback


def _memory_child(scale: str, device: str, method: str, batch: int, threads: int, queue) -> None:
    from bench.core.runtime import init_process

    init_process()
    torch.set_num_threads(threads)
    dev = torch.device(device)
    prior = build_prior(scale, dev)
    prob = problem(prior, images(prior, batch, scale))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    if method != "none":
        p = timing_params(method)
        p = p.replace(steps=2) if method == "csgm" else p.replace(steps=(2,) * len(p.steps))
        methods.get(method).solve(prob, prior, p)
    rss_mb = _own_peak_rss_mb()
    cuda_mb = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    queue.put({"method": method, "peak_rss_mb": rss_mb, "cuda_peak_allocated_mb": cuda_mb})


def memory(scale: str, device: torch.device, batch: int, threads: int, method_names=METHODS, log=print) -> list[dict]:
    """Peak memory of each method (two steps per round, its timing schedule) in a fresh process,
    next to a process that only loads the prior and the problem ("none")."""
    ctx = mp.get_context("spawn")
    rows = []
    for m in ("none",) + tuple(method_names):
        q = ctx.Queue()
        proc = ctx.Process(target=_memory_child, args=(scale, str(device), m, batch, threads, q))
        proc.start()
        row = q.get()
        proc.join()
        rows.append({"scale": scale, "batch": batch, **row})
        log(f"[memory] {scale} {m}: peak RSS {row['peak_rss_mb']:.0f} MB" +
            (f", CUDA peak {row['cuda_peak_allocated_mb']:.0f} MB" if row["cuda_peak_allocated_mb"] else ""))
    return rows


def default_sweeps(out: str, runs: int, log=print) -> dict:
    """The default sweep ``runs`` times, each from an empty folder (a kept folder would resume and finish at
    once): every run's figures, and the median and range of the wall time, since one run on a shared
    machine says little."""
    each = []
    for i in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        each.append(default_sweep(out, log))
        log(f"[sweep] run {i + 1}/{runs} done")
    return summarise_sweeps(each)


def median_and_range(values: list[float]) -> tuple[float, list[float]]:
    """The median of ``values`` and their [min, max]."""
    ordered = sorted(values)
    return float(statistics.median(ordered)), [ordered[0], ordered[-1]]


def summarise_sweeps(each: list[dict]) -> dict:
    """Several default-sweep runs as one record: every run kept, the median and range of the wall time, the
    worst return code and the largest peak RSS."""
    median, span = median_and_range([r["wall_seconds"] for r in each])
    return {"command": each[0]["command"], "runs": each, "returncode": max(r["returncode"] for r in each),
            "wall_seconds": median, "wall_seconds_range": span, "peak_rss_mb": max(r["peak_rss_mb"] for r in each)}


def default_sweep(out: str, log=print) -> dict:
    """The README's default sweep, in its own process tree: wall time, and the peak RSS of the
    largest process of that tree (the kernel's accounting of waited-for descendants, read by a
    small wrapper so that nothing else this benchmark ran is counted)."""
    cmd = [sys.executable, "-m", "bench.sweep", "--tasks", "inpaint,cs", "--executor", "local", "--wandb", "disabled",
           "--out", out]
    wrapper = ("import resource, subprocess, sys, time\n"
               "t0 = time.perf_counter()\n"
               "rc = subprocess.run(sys.argv[1:]).returncode\n"
               "print('PERF', rc, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper] + cmd, capture_output=True, text=True)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("PERF ")), None)
    if line is None:
        raise RuntimeError(f"the sweep wrapper printed no result; stderr: {proc.stderr[-2000:]}")
    _, rc, wall, rss_kb = line.split()
    res = {"command": "python " + " ".join(cmd[1:]), "returncode": int(rc), "wall_seconds": float(wall),
           "peak_rss_mb": int(rss_kb) / 1024}
    log(f"[sweep] exit {rc} in {res['wall_seconds'] / 60:.1f} min, peak RSS {res['peak_rss_mb']:.0f} MB")
    return res
