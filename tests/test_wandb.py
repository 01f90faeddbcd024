"""W&B logging works offline, resumes by cell id, and never writes the API key."""
from __future__ import annotations

import pytest

from bench.harness.execution import run_chunk
from bench.harness.runner import Cell
from bench.harness.store import ResultStore
from bench.harness.wandb_log import run_id

pytest.importorskip("wandb")


def test_offline_cell_runs_are_logged_and_keyed_by_cell(tmp_path, monkeypatch):
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cell = Cell("wb-sweep", "tune", "tiny", "inpaint", 0.5, "csgm", {"steps": 5}, "tune", (0, 1), seed=0)
    counts = run_chunk([cell], str(tmp_path), wandb_mode="offline")
    assert counts["ok"] == 1 and ResultStore(tmp_path).is_done(cell)
    runs = list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert runs and all(run_id("wb-sweep", cell.key) in r.name for r in runs)
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.stat().st_size < 5_000_000:
            assert secret not in f.read_bytes().decode("latin-1"), f


def test_offline_summary_run_is_a_dashboard(tmp_path, monkeypatch):
    """A small sweep with W&B offline: the summary run is named after the sweep, tagged, carries the
    sweep config, every report figure, the report and a per-image table; cell runs define step/NFE/seconds."""
    from wandb_files import run_summary

    from bench.harness.sweep.cli import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "wb-sweep"
    assert main(["--prior", "tiny", "--tasks", "inpaint", "--levels", "inpaint=0.3", "--methods", "csgm", "--n-test",
                 "2", "--eval-batch", "2", "--steps-scale", "0.05", "--executor", "debug", "--wandb", "offline",
                 "--out", str(out)]) == 0
    runs = {p.parent.name: run_summary(p) for p in (out / "wandb" / "wandb").glob("offline-run-*/run-*.wandb")}
    summary = next(r for name, r in runs.items() if run_id("wb-sweep", "summary") in name)
    assert summary["name"] == "wb-sweep (summary)"
    assert {"prior:tiny", "task:inpaint", "method:csgm"} <= set(summary["tags"])
    assert {"tasks", "levels", "methods", "data"} <= summary["config"]
    top = {k.split("/")[0] for k in summary["logged"]}  # media are logged as nested keys (path/_type, ...)
    figures = {k.split("/")[1] for k in summary["logged"] if k.startswith("figures/")}
    assert {"figure3_quality", "figure9_speed", "recon_inpaint_0.3"} <= figures
    assert {"report", "per_image", "summary"} <= top
    cell = next(r for name, r in runs.items() if "summary" not in name)
    assert cell["metrics"].get("step_ref_mse/mean") == "trace/step" and "trace/nfe" in cell["metrics"]
    assert {"trace/nfe", "trace/seconds", "step_ref_mse/mean"} <= cell["logged"]


def test_finished_offline_run_file_is_complete_when_finish_returns(tmp_path, monkeypatch):
    """wandb-core writes the offline file after ``run.finish()`` returns (3 of 8 read at once lacked
    the run record); ``finish_run`` must wait, or a reader (wandb sync, a pool worker's exit) sees
    a truncated run. Eight tries make a regression likely to show (with five tries and no wait, 2 of
    4 runs of this test failed here)."""
    from wandb_files import run_summary

    from bench.harness.wandb_log import finish_run, init_run

    monkeypatch.setenv("WANDB_MODE", "offline")
    for i in range(8):
        folder = tmp_path / str(i)
        wandb, run = init_run("offline", folder, "k", "grp", name=f"run {i}", tags=["t"])
        run.log({"x": 1.0})
        finish_run(wandb, run)
        (path,) = folder.glob("wandb/offline-run-*/run-*.wandb")
        got = run_summary(path)
        assert got["name"] == f"run {i}" and "x" in got["logged"], got
