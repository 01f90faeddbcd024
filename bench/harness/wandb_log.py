"""Weights & Biases logging: one run per cell, grouped by sweep, plus a summary-table run.

Run ids are derived from the cell key, so a requeued or re-run cell resumes its run instead of
creating a duplicate. ``offline`` mode needs no network (upload later with ``wandb sync``);
the API key is read by wandb from the environment/netrc only and never written by us.
"""
from __future__ import annotations

import os
from pathlib import Path

from bench.harness.runner import CellResult


def wandb_module(mode: str, folder: Path):
    """The ``wandb`` module, quiet and without git/console capture; ``folder`` created."""
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_DISABLE_GIT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")
    folder.mkdir(parents=True, exist_ok=True)
    import wandb

    return wandb


def project_name() -> str:
    return os.environ.get("WANDB_PROJECT", "sgilo-bench")


def init_run(mode: str, folder: Path, run_key: str, group: str, **kwargs):
    """A W&B run with the project's settings; ``run_key`` (with ``group``) makes the id, so a re-run
    resumes the same run instead of creating a duplicate."""
    wandb = wandb_module(mode, folder)
    return wandb, wandb.init(project=project_name(), group=group, id=run_id(group, run_key), resume="allow", mode=mode,
                             dir=str(folder), reinit="finish_previous", settings=wandb.Settings(
                                 console="off", disable_git=True, x_disable_stats=True), **kwargs)


def finish_run(wandb, run) -> None:
    """Finish ``run`` and wait until its files are complete. ``run.finish()`` alone returns before
    wandb-core has written the offline transaction log (measured here: 3 of 8 files read right after
    it lacked the run record), and pool workers exit without the atexit hook that would wait for it;
    ``wandb.teardown()`` waits, at the cost of restarting the service for the next run."""
    try:
        run.finish()
    finally:
        wandb.teardown()


def run_id(sweep: str, key: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in sweep)[:40]
    return f"{safe}-{key}"


def log_cell(result: CellResult, mode: str, folder: Path) -> None:
    """Log one finished cell: config, per-step traces, final metrics, a few image panels."""
    if mode == "disabled":
        return
    c = result.cell
    wandb, run = init_run(mode, folder, c.key, c.sweep, job_type=c.stage,
                          name=f"{c.stage}/{c.task}@{c.level}/{c.method}:{c.variant}",
                          tags=[f"task:{c.task}", f"method:{c.method}", f"level:{c.level}", f"stage:{c.stage}"],
                          config=c.to_dict() | {"cell_key": c.key})
    try:
        _log_traces(run, result)
        ok = [r for r in result.rows if r["status"] == "ok"]
        summary = {"status": result.status, "reason": result.reason, "n_ok": len(ok), "n_failed": len(result.rows) - len(ok)}
        for m in ("mse", "psnr", "lpips", "measurement_loss", "seconds", "nfe_generator", "nfe_score"):
            vals = [r[m] for r in ok if r.get(m) == r.get(m)]
            if vals:
                summary[f"final/{m}"] = sum(vals) / len(vals)
        run.summary.update(summary)
        if result.images:
            panels = {}
            for name, imgs in result.images.items():
                panels[f"images/{name}"] = [wandb.Image(_to_uint8(im)) for im in imgs[:4]]
            run.log(panels)
    finally:
        finish_run(wandb, run)


def _log_traces(run, result: CellResult) -> None:
    """Per optimisation step: mean loss and reference MSE over the cell's images, against the step, the
    generator evaluations so far and the seconds so far (Figure 9 in W&B: plot step_ref_mse/mean against
    trace/nfe or trace/seconds). NFE and seconds per step are the cell's totals spread evenly over its steps."""
    if not result.traces:
        return
    for key in ("trace/step", "trace/nfe", "trace/seconds"):
        run.define_metric(key)
    for key in ("step_loss/mean", "step_ref_mse/mean"):
        run.define_metric(key, step_metric="trace/step")
    ok = [r for r in result.rows if r["status"] == "ok"] or result.rows
    nfe = sum(r["nfe_generator"] for r in ok) / len(ok)
    seconds = sum(r.get("seconds", 0.0) or 0.0 for r in ok) / len(ok)
    steps = result.traces[0]["steps"]
    n = len(steps)
    for s in range(n):
        entry = {"trace/step": steps[s], "trace/nfe": nfe * (s + 1) / n, "trace/seconds": seconds * (s + 1) / n,
                 "step_loss/mean": sum(t["loss"][s] for t in result.traces) / len(result.traces)}
        refs = [t["ref_mse"][s] for t in result.traces if t["ref_mse"][s] is not None]
        if refs:
            entry["step_ref_mse/mean"] = sum(refs) / len(refs)
        run.log(entry)


def _to_uint8(img):
    import numpy as np

    a = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()
    a = np.transpose(a, (1, 2, 0))
    return a[..., 0] if a.shape[2] == 1 else a


def log_summary(sweep_dir: str | Path, mode: str) -> None:
    """The sweep's dashboard run: named after the sweep, tagged with its prior, tasks and methods, its
    config.json as config, every report figure, report.md, the summary table and a per-image table."""
    if mode == "disabled":
        return
    import json

    import pandas as pd

    sweep_dir = Path(sweep_dir)
    report = sweep_dir / "report"
    if not (report / "summary.csv").exists():
        return
    cfg_path = sweep_dir / "config.json"
    config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    tags = [f"prior:{config.get('prior', '?')}"] + [f"task:{t}" for t in config.get("tasks", [])] + \
        [f"method:{m}" for m in config.get("methods", [])]
    wandb, run = init_run(mode, sweep_dir / "wandb", "summary", sweep_dir.name, job_type="summary",
                          name=f"{sweep_dir.name} (summary)", tags=tags, config=config)
    try:
        entry = {"summary": wandb.Table(dataframe=pd.read_csv(report / "summary.csv"))}
        if (report / "rows.csv").exists():
            rows = pd.read_csv(report / "rows.csv")
            cols = [c for c in ("stage", "task", "level", "method", "variant", "image_id", "mse", "psnr", "lpips",
                                "seconds", "nfe_generator", "nfe_score", "status", "reason") if c in rows.columns]
            entry["per_image"] = wandb.Table(dataframe=rows[rows["stage"] == "eval"][cols])
        for png in sorted(report.glob("*.png")):
            entry[f"figures/{png.stem}"] = wandb.Image(str(png))
        if (report / "report.md").exists():
            entry["report"] = wandb.Html(f"<pre>{(report / 'report.md').read_text()}</pre>")
        run.log(entry)
    finally:
        finish_run(wandb, run)
