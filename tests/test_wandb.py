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
