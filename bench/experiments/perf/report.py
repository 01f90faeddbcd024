"""perf.md and a throughput plot from the raw JSON of one or more perf runs (one per device)."""
from __future__ import annotations

import json
from pathlib import Path

GOALS = {"overhead": 1.10, "sgilo_vs_ilo": 1.5, "batch8_cpu": 1.3, "batch8_gpu": 5.0, "sweep_minutes": 8.0,
         "sweep_rss_gib": 3.0,
         # the GPU goals of the performance issue: SGILO at B = 1 (embedded and 1024), the optimised 1024 path at
         # B = 8 against the plain one, and the memory-bandwidth fraction it reaches there
         "sgilo_vs_ilo_gpu_b1": 1.2, "speedup_1024_b8": 2.0, "bandwidth_1024_b8": 0.70}


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.2f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def _ratio_ci(r: dict | None) -> str:
    """"1.05x (0.98-1.12)" from a timing.ratio_ci result; the reason when the measurement failed."""
    if not r:
        return "-"
    if r.get("ratio") is None:
        return "failed: " + r.get("failed", "")
    return f"{r['ratio']:.2f}x ({r['ci'][0]:.2f}-{r['ci'][1]:.2f})"


def overhead_table(rows: list[dict], methods: list[str]) -> list[str]:
    out = ["| scale | B | round | bare fwd+bwd ms | " + " | ".join(f"{m} ms (ratio, 95% CI)" for m in methods) + " |",
           "|---|---|---|---|" + "---|" * len(methods)]
    for r in rows:
        ratios = r.get("ratios", {})
        cells = [(f"{_ms(r.get(m))} ({_ratio_ci(ratios[m])})" if m in ratios else
                  f"{_ms(r.get(m))} ({_ratio(r.get(m), r['bare_seconds'])})") if m in r else "-" for m in methods]
        out.append(f"| {r['scale']} | {r['batch']} | {r['round']} | {_ms(r['bare_seconds'])} | " + " | ".join(cells) + " |")
    return out


def batch_table(rows: list[dict], methods: list[str]) -> list[str]:
    """Throughput (images x steps per second) at each batch size, and batch 8 over batch 1."""
    out = ["| scale | round | what | " + " | ".join(f"B={b}" for b in sorted({r['batch'] for r in rows})) +
           " | B8/B1 |", "|---|---|---|" + "---|" * (len({r['batch'] for r in rows}) + 1)]
    for scale in sorted({r["scale"] for r in rows}):
        for rnd in sorted({r["round"] for r in rows if r["scale"] == scale}):
            sel = {r["batch"]: r for r in rows if r["scale"] == scale and r["round"] == rnd}
            for what in ["bare_seconds"] + methods:
                if not all(what in v for v in sel.values()):
                    continue
                tput = {b: b / v[what] for b, v in sel.items() if v[what] > 0}
                gain = f"{tput[8] / tput[1]:.2f}x" if 1 in tput and 8 in tput else "-"
                name = "bare G" if what == "bare_seconds" else what
                out.append(f"| {scale} | {rnd} | {name} | " +
                           " | ".join(f"{tput.get(b, float('nan')):.1f}" for b in sorted(sel)) + f" | {gain} |")
    return out


def goals(run: dict) -> list[str]:
    """The issue's goals, each with the figure reached, per scale (the goals are set for the embedded one)."""
    out = []
    for scale in sorted({r["scale"] for r in run.get("steps", [])}):
        out += [f"{scale}:"] + ["  " + line for line in _scale_goals(run, scale)]
    return out + _sweep_goal(run)


def _scale_goals(run: dict, scale: str) -> list[str]:
    rows = [r for r in run.get("steps", []) if r["scale"] == scale]
    gpu = run["machine"]["device"].startswith("cuda")
    out = []
    for m in ("csgm", "ilo"):
        out += _ratio_goal(rows, m, f"{m} step / bare generator forward+backward", GOALS["overhead"])
    out += _ratio_goal([r for r in rows if r["round"] >= 1], "sgilo/ilo", "SGILO step / ILO step in rounds with a score "
                       "model", GOALS["sgilo_vs_ilo"])
    for col in sgilo_columns(rows):
        out += _ratio_goal([r for r in rows if r["round"] >= 1], f"{col}/ilo", f"with the {col[6:-1]} setting "
                           "(off by default; bench/priors/acceleration.py)", GOALS["sgilo_vs_ilo"])
    out += _flop_floor(rows)
    goal_b = GOALS["batch8_gpu" if gpu else "batch8_cpu"]
    for m in ("csgm", "ilo", "ilo_unreg", "sgilo"):
        gains = []
        for rnd in sorted({r["round"] for r in rows}):
            sel = {r["batch"]: r for r in rows if r["round"] == rnd and m in r}
            if 1 in sel and 8 in sel:
                gains.append((8 / sel[8][m]) / (1 / sel[1][m]))
        if gains:
            out.append(f"- {m} batch-8 / batch-1 throughput: {min(gains):.2f}x (lowest over rounds); goal >= {goal_b}x"
                       f" on {'GPU' if gpu else 'CPU'}: {'met' if min(gains) >= goal_b else 'NOT met'}")
    return out


def sgilo_columns(rows: list[dict]) -> list[str]:
    """The SGILO-under-a-speed-setting columns present (sgilo[<setting>]), in first-seen order."""
    return list(dict.fromkeys(k for r in rows for k in r if k.startswith("sgilo[")))


def _flop_floor(rows: list[dict]) -> list[str]:
    """What the SGILO/ILO goal asks of the score network: the ratio if its FLOPs ran at the generator's rate."""
    floors = {r["round"]: r["counts"] for r in rows if "sgilo_flop_floor" in r.get("counts", {})}
    if not floors:
        return []
    parts = [f"round {k}: {c['sgilo_flop_floor']:.2f}x (score forward {c['score_forward_flops'] / 1e6:.0f} MFLOP, "
             f"generator step {c['flops'] / 1e6:.0f} MFLOP)" for k, c in sorted(floors.items())]
    return ["- SGILO/ILO if the score network's FLOPs ran at the generator step's rate (2 score forwards per step; "
            "roofline.py): " + "; ".join(parts)]


def _ratio_goal(rows: list[dict], key: str, what: str, limit: float) -> list[str]:
    """One goal over every (batch, round): the worst ratio with its CI, judged on the CIs (met only when every
    CI lies under the limit); runs without CIs (older JSON) fall back to the medians."""
    from bench.experiments.perf.timing import judge

    measured = [(r["ratios"][key], r["batch"], r["round"]) for r in rows if key in r.get("ratios", {})]
    if not measured:
        num, den = key.split("/") if "/" in key else (key, "bare_seconds")
        legacy = [(r[num] / r[den], r["batch"], r["round"]) for r in rows if num in r and den in r]
        if not legacy:
            return []
        worst = max(legacy)
        return [f"- {what}: worst {worst[0]:.2f}x (B={worst[1]}, round {worst[2]}; medians, no CI); goal <= "
                f"{limit:.2f}x: {'met' if worst[0] <= limit else 'NOT met'}"]
    verdicts = [judge(r, limit) for r, _, _ in measured]
    ok = [m for m in measured if m[0]["ratio"] is not None]
    worst = max(ok, key=lambda m: m[0]["ratio"]) if ok else None
    overall = ("NOT met" if "NOT met" in verdicts else "met" if all(v == "met" for v in verdicts)
               else "undecided (some CIs span the limit or failed)")
    head = (f"worst {_ratio_ci(worst[0])} (B={worst[1]}, round {worst[2]})" if worst else "every measurement failed")
    failed = len(measured) - len(ok)
    return [f"- {what}: {head}{f'; {failed} failed measurement(s)' if failed else ''}; goal <= {limit:.2f}x on "
            f"the 95% CI: {overall} ({sum(v == 'met' for v in verdicts)}/{len(verdicts)} settings met)"]


def gpu_goals(runs: dict[str, dict]) -> list[str]:
    """The issue's three GPU goals over every GPU run in the folder, each "not measured" where no run has it."""
    gpu = {n: r for n, r in runs.items() if r["machine"]["device"].startswith("cuda")}
    out = []
    for scale in ("embedded", "ffhq-arch"):
        lines = [f"{n}: " + line[2:] for n, r in gpu.items()
                 for line in _sgilo_b1_goal([x for x in r.get("steps", []) if x["scale"] == scale])]
        out += [f"- {scale}, B = 1: SGILO step / ILO step <= {GOALS['sgilo_vs_ilo_gpu_b1']:.1f}x: "
                + ("; ".join(lines) if lines else "not measured")]
    speed = [(n, a) for n, r in gpu.items() for a in r.get("acceleration") or []
             if a["scale"] == "ffhq-arch" and a["batch"] == 8 and a.get("speedup", {}).get("ratio")]
    if speed:
        from bench.experiments.perf.timing import judge

        n, best = max(speed, key=lambda x: x[1]["speedup"]["ratio"])
        out.append(f"- 1024, B = 8: image-steps/s of the optimised settings / plain >= {GOALS['speedup_1024_b8']:.0f}x:"
                   f" best {_ratio_ci(best['speedup'])} ({best['setting']}, {n}, reconstruction difference "
                   f"{best['recon_mean_abs_diff']:.1e}): {judge(best['speedup'], GOALS['speedup_1024_b8'], True)}")
    else:
        out.append(f"- 1024, B = 8: image-steps/s of the optimised settings / plain >= {GOALS['speedup_1024_b8']:.0f}x "
                   "(reconstructions within tolerance): not measured")
    fracs = [(f["bytes_fraction"], n) for n, r in gpu.items() for row, _, _, f in _limit_rows(r)
             if row["scale"] == "ffhq-arch" and row["batch"] == 8 and f["bytes_fraction"] is not None]
    head = f"- 1024, B = 8: fraction of the memory-bandwidth limit >= {GOALS['bandwidth_1024_b8']:.0%}: "
    if fracs:
        best, n = max(fracs)
        out.append(head + f"best {best:.0%} ({n}): {'met' if best >= GOALS['bandwidth_1024_b8'] else 'NOT met'} "
                   "(plain path only: no optimised-path row)")
    else:
        out.append(head + "not measured")
    return out


def _sgilo_b1_goal(rows: list[dict]) -> list[str]:
    b1 = [r for r in rows if r["batch"] == 1 and r["round"] >= 1]
    out = _ratio_goal(b1, "sgilo/ilo", "plain", GOALS["sgilo_vs_ilo_gpu_b1"])
    for col in sgilo_columns(b1):
        out += _ratio_goal(b1, f"{col}/ilo", col[6:-1], GOALS["sgilo_vs_ilo_gpu_b1"])
    return out


def _limit_rows(run: dict):
    """(step row, what, image-steps/s, limit fractions) for the bare step, ILO and SGILO of every step row with
    counts, against the run's peaks (none without peaks)."""
    from bench.experiments.perf.roofline import limit_fractions

    peaks = run.get("peaks")
    if not peaks:
        return
    for r in run.get("steps", []):
        if "counts" not in r:
            continue
        for what in ("bare_seconds", "ilo", "sgilo"):
            if r.get(what) and r[what] > 0:
                tput = r["batch"] / r[what]
                yield r, what, tput, limit_fractions(r["counts"], tput, peaks)


def _sweep_goal(run: dict) -> list[str]:
    out = []
    sw = run.get("sweep")
    if sw:
        ok = sw["wall_seconds"] / 60 <= GOALS["sweep_minutes"] and sw["peak_rss_mb"] / 1024 <= GOALS["sweep_rss_gib"]
        out.append(f"- default sweep: {_sweep_minutes(sw)}, peak RSS {sw['peak_rss_mb']:.0f} MB (exit "
                   f"{sw['returncode']}); goal <= {GOALS['sweep_minutes']:.0f} min (median) and <= 3 GiB: "
                   f"{'met' if ok and sw['returncode'] == 0 else 'NOT met'}")
    return out


def _sweep_minutes(sw: dict) -> str:
    """"3.3 min" for one run; "3.3 min (median of 3 runs, 3.1-3.6)" for several."""
    runs = sw.get("runs")
    if not runs or len(runs) == 1:
        return f"{sw['wall_seconds'] / 60:.1f} min"
    lo, hi = sw["wall_seconds_range"]
    return f"{sw['wall_seconds'] / 60:.1f} min (median of {len(runs)} runs, {lo / 60:.1f}-{hi / 60:.1f})"


def reach_table(reach: dict) -> list[str]:
    t = reach["targets"]
    out = [f"Inpainting with {reach['level']:.0%} of the pixels observed, {reach['batch']} images in one batch, each "
           f"method's default hyperparameters; targets: mean MSE {t['reached_by_all']:.4f} (the worst method's best) "
           f"and {t['within_10pct_of_best']:.4f} (within 10% of the best method's best). Seconds are the run's wall "
           "time up to that step, split over steps by the measured per-step cost of each round.", "",
           "| method | final MSE | best MSE | run s | to worst's best: NFE (G+score), s | to 1.1x best: NFE, s |",
           "|---|---|---|---|---|---|"]
    for m, c in reach["curves"].items():
        cells = []
        for name in ("reached_by_all", "within_10pct_of_best"):
            hit = reach["table"][m][name]
            cells.append("not reached" if hit is None else
                         f"{hit['nfe_total']} ({hit['nfe_generator']}+{hit['nfe_score']}), {hit['seconds']:.2f}")
        out.append(f"| {m} | {c['final_mse']:.4f} | {c['best_mse']:.4f} | {c['wall_seconds']:.1f} | " + " | ".join(cells) + " |")
    return out


def limits_table(run: dict) -> list[str]:
    """Achieved FLOP/s and bytes/s of the bare step and each method at every measured setting, as fractions of
    the device's peaks (bench/experiments/perf/roofline.py says how both are counted)."""
    peaks = run.get("peaks")
    rows = list(_limit_rows(run))
    if not rows:
        return []
    pf, pb = peaks.get("flops_per_s"), peaks.get("bytes_per_s")
    out = [f"Peaks: {pf / 1e12 if pf else float('nan'):.2f} TFLOP/s, {pb / 1e9 if pb else float('nan'):.0f} GB/s "
           f"({peaks['source']}). Per image-step counts from the architecture (roofline.py): FLOPs = forward x 3, "
           "bytes = full-activation passes of the unfused ops.", "",
           "| scale | B | round | GFLOP / image-step | GB / image-step | what | image-steps/s | % of peak FLOP/s | "
           "% of peak bandwidth |", "|---|---|---|---|---|---|---|---|---|"]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    for r, what, tput, f in rows:
        c = r["counts"]
        out.append(f"| {r['scale']} | {r['batch']} | {r['round']} | {c['flops'] / 1e9:.3g} | {c['bytes'] / 1e9:.3g} | "
                   f"{'bare G' if what == 'bare_seconds' else what} | {tput:.1f} | {pct(f['flops_fraction'])} | "
                   f"{pct(f['bytes_fraction'])} |")
    return out


def acceleration_table(rows: list[dict]) -> list[str]:
    """Speed settings against the plain path: per-step time, speed-up (95% CI), reconstruction difference."""
    out = ["| scale | B | method, round | setting | ms / step | speed-up vs plain (95% CI) | mean abs recon diff vs plain "
           "| reference MSE |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['scale']} | {r['batch']} | {r['method']}, {r['round']} | {r['setting']} | "
                   f"{_ms(r['step_seconds'])} | {_ratio_ci(r['speedup'])} | {r['recon_mean_abs_diff']:.2e} | "
                   f"{r['reference_mse']:.4g} |")
    return out


def memory_table(rows: list[dict]) -> list[str]:
    out = ["| scale | B | method | peak RSS MB | CUDA peak allocated MB |", "|---|---|---|---|---|"]
    for r in rows:
        cuda = "-" if r["cuda_peak_allocated_mb"] is None else f"{r['cuda_peak_allocated_mb']:.0f}"
        rss = "not measured" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        out.append(f"| {r['scale']} | {r['batch']} | {r['method']} | {rss} | {cuda} |")
    return out


def render(runs: dict[str, dict]) -> str:
    lines = ["# Performance of the methods", "",
             "Written by `python -m bench.perf` from the JSON files beside this one (one per device). Per-step times are "
             "marginal: (T(long round) - T(short round)) / (extra steps), so set-up costs cancel; the bare step and every "
             "method are measured interleaved (order reversed every repeat), every repeat is kept, and each ratio is the "
             "ratio of medians with a paired bootstrap 95% CI; a goal is met only when its CIs lie under the limit. "
             "'bare fwd+bwd' is the generator's forward from the optimised variables plus the measurement loss and its "
             "backward, nothing else: the floor of an optimisation step. ffhq-arch = the 1024 FFHQ architecture and "
             "official-size score networks with random weights (speed only).", "",
             "## GPU goals", "", "Over every GPU run below (`scripts/gpu_bench.sh` measures them in a few minutes "
             "whenever a GPU is lent; a goal no run has measured says so).", ""] + gpu_goals(runs) + [""]
    for name, run in runs.items():
        mach = run["machine"]
        methods = [m for m in ("csgm", "ilo", "ilo_unreg", "sgilo") if any(m in r for r in run.get("steps", []))]
        methods += sgilo_columns(run.get("steps", []))
        lines += [f"## {name}: {mach.get('gpu') or mach['cpu']}", "",
                  f"torch {mach['torch']}, {mach['torch_threads']} threads, {mach['cpu_count']} CPUs, device "
                  f"{mach['device']}; measured {run.get('date', '')}; command `{run.get('command', '')}`.", ""]
        lines += ["### Goals", ""] + goals(run) + [""]
        if run.get("steps"):
            lines += ["### Per-step time vs the bare generator", ""] + overhead_table(run["steps"], methods) + [""]
            lines += ["### Throughput (image-steps per second) vs batch size", ""] + batch_table(run["steps"], methods) + [""]
            if limits_table(run):
                lines += ["### Fraction of the hardware's limits", ""] + limits_table(run) + [""]
            if run.get("plot"):
                lines += [f"![throughput]({run['plot']})", ""]
        if run.get("acceleration"):
            lines += ["### Speed settings (BENCH_ACCEL)", "", "Each setting against the plain path on the same problem, "
                      "measured interleaved; the reconstruction difference is after a short solve from the same start "
                      "(bench/priors/acceleration.py; tests/test_acceleration.py states the tolerances).", ""]
            lines += acceleration_table(run["acceleration"]) + [""]
        if run.get("reach"):
            lines += ["### Time and NFE to reach a reference MSE", ""] + reach_table(run["reach"]) + [""]
        if run.get("memory"):
            lines += ["### Peak memory", "", "Each method in a fresh process, two steps per round at its timing "
                      "schedule; 'none' only loads the prior and the problem.", ""] + memory_table(run["memory"]) + [""]
        if run.get("sweep"):
            sw = run["sweep"]
            lines += ["### Default sweep", "", f"`{sw['command']}`: exit {sw['returncode']}, {_sweep_minutes(sw)} "
                      f"wall, peak RSS of its largest process {sw['peak_rss_mb']:.0f} MB.", ""]
        if run.get("notes"):
            lines += ["### Notes", ""] + [f"- {n}" for n in run["notes"]] + [""]
    return "\n".join(lines)


def plot_throughput(run: dict, path: Path) -> Path | None:
    rows = run.get("steps", [])
    if not rows or len({r["batch"] for r in rows}) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    scales = sorted({r["scale"] for r in rows})
    series = {"bare_seconds": ("bare G fwd+bwd", "black"), "csgm": ("CSGM", "#0072B2"), "ilo": ("ILO", "#E69F00"),
              "ilo_unreg": ("ILO-unreg.", "#CC79A7"), "sgilo": ("SGILO", "#009E73")}
    styles = ["-", "--", ":", "-."]  # one line style per round; colour = method
    fig, axes = plt.subplots(1, len(scales), figsize=(5 * len(scales), 4.2), squeeze=False)
    rounds_seen: set[int] = set()
    for ax, scale in zip(axes[0], scales):
        for rnd in sorted({r["round"] for r in rows if r["scale"] == scale}):
            for what, (_label, color) in series.items():
                sel = sorted((r["batch"], r[what]) for r in rows if r["scale"] == scale and r["round"] == rnd and what in r)
                if len(sel) >= 2:
                    rounds_seen.add(rnd)
                    ax.plot([b for b, _ in sel], [b / t for b, t in sel], styles[rnd % len(styles)], color=color,
                            marker="o", ms=3)
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="image-steps per second", title=scale)
        ax.set_xticks(sorted({r["batch"] for r in rows}), labels=[str(b) for b in sorted({r["batch"] for r in rows})])
    handles = [Line2D([], [], color=c, marker="o", ms=3, label=lab) for lab, c in series.values()]
    handles += [Line2D([], [], color="gray", linestyle=styles[r % len(styles)], label=f"round {r}")
                for r in sorted(rounds_seen)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False)
    fig.suptitle(f"throughput on {run['machine'].get('gpu') or run['machine']['cpu']} "
                 f"(colour: method, line: round)", fontsize=9)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write(out: Path) -> Path:
    runs = {p.stem.removeprefix("perf_"): json.loads(p.read_text()) for p in sorted(out.glob("perf_*.json"))}
    for name, run in runs.items():
        png = plot_throughput(run, out / f"throughput_{name}.png")
        run["plot"] = png.name if png else None
    path = out / "perf.md"
    path.write_text(render(runs))
    return path
