"""bench.harness.carry: finished cells survive a fresh checkout (thinned traces, nothing lost or overwritten)."""
import json
import os

import pandas as pd

from bench.harness.carry import main, pack, thin_steps, thin_trace, unpack
from bench.harness.runner import Cell, CellResult
from bench.harness.store import ResultStore
from bench.report.frames import traces_frame


def _trace(n_steps: int, image_id: str = "img-0") -> dict:
    return {"image_id": image_id, "steps": list(range(n_steps)), "loss": [1.0 / (s + 1) for s in range(n_steps)],
            "ref_mse": [2.0 / (s + 1) for s in range(n_steps)]}


ROW_SECONDS = 2.0  # a made-up per-image cost written into the rows: no clock is read anywhere here


def _cell(variant: str = "grid0") -> Cell:
    return Cell("sw", "eval", "tiny", "inpaint", 0.5, "ilo", {"steps": [50, 51]}, "test", (0, 1), variant=variant)


def _rows(c: Cell) -> list[dict]:
    return [{"cell": c.key, "stage": "eval", "task": "inpaint", "level": 0.5, "method": "ilo", "variant": c.variant,
             "image_id": f"img-{i}", "image_set": "test", "prior": "tiny", "noise_sigma": 0.0, "status": "ok",
             "seconds": ROW_SECONDS, "nfe_generator": 101, "mse": 0.1 * (i + 1)} for i in (0, 1)]


def test_thinning_keeps_multiples_and_the_last_step():
    assert [s for s in thin_steps(list(range(101)), 25)] == [0, 25, 50, 75, 100]
    assert thin_steps(list(range(90)), 25) == [0, 25, 50, 75, 89]
    t = thin_trace({**_trace(90), "note": "x"}, 25)
    assert t["steps"] == [0, 25, 50, 75, 89] and t["loss"] == [1.0, 1 / 26, 1 / 51, 1 / 76, 1 / 90]
    assert t["note"] == "x" and t["thin"] == 25 and len(t["ref_mse"]) == 5
    # a thinned trace is never made finer again, and thinning it once more changes nothing
    assert thin_trace(t, 5) == t and thin_trace(_trace(90), 1) == _trace(90)


def test_pack_then_unpack_restores_every_cell_without_overwriting(tmp_path):
    run = tmp_path / "runs" / "sweep-a"
    store = ResultStore(run)
    cells = [_cell("grid0"), _cell("grid1")]
    for c in cells:
        store.record(CellResult(c, _rows(c), traces=[_trace(101, "img-0"), _trace(101, "img-1")]))
    (run / "previews").mkdir()
    (run / "previews" / "big.pt").write_bytes(b"0" * 1000)
    (run / "report").mkdir()
    (run / "report" / "traces.csv").write_text("cell,step\n")
    store.write_plan(cells)
    mirror = tmp_path / "wip"
    assert pack(mirror, [run], every=25) == {"sweep-a": 2}
    assert not (mirror / "sweep-a" / "previews").exists() and (mirror / "sweep-a" / "plan.json").exists()
    assert not (mirror / "sweep-a" / "report").exists()  # the collected report is rebuilt, not carried
    packed = json.loads((mirror / "sweep-a" / "cells" / f"{cells[0].key}.json").read_text())
    assert packed["rows"] == _rows(cells[0]) and packed["traces"][0]["steps"] == [0, 25, 50, 75, 100]

    # a fresh checkout: runs/ holds one cell already (its own copy must win), the other comes back
    fresh = tmp_path / "fresh"
    kept = ResultStore(fresh / "sweep-a")
    kept.record(CellResult(cells[1], _rows(cells[1]), traces=[_trace(101)]))
    assert unpack(mirror, fresh)["sweep-a"] == 2  # the plan and the missing cell
    restored = ResultStore(fresh / "sweep-a")
    assert all(restored.is_done(c) for c in cells)
    assert len(json.loads(restored.record_path(cells[1]).read_text())["traces"][0]["steps"]) == 101
    assert sorted(r["mse"] for r in restored.rows()) == sorted(r["mse"] for c in cells for r in _rows(c))
    assert unpack(mirror, fresh)["sweep-a"] == 0  # idempotent

    # a second pack rewrites only a cell recorded again since (e.g. re-run after a prior was re-installed)
    before = {p.name: p.stat().st_mtime_ns for p in (mirror / "sweep-a" / "cells").iterdir()}
    src = store.record_path(cells[0])
    os.utime(src, (src.stat().st_mtime + 10, src.stat().st_mtime + 10))
    pack(mirror, [run], every=25)
    after = {p.name: p.stat().st_mtime_ns for p in (mirror / "sweep-a" / "cells").iterdir()}
    assert after[f"{cells[1].key}.json"] == before[f"{cells[1].key}.json"]
    assert after[f"{cells[0].key}.json"] != before[f"{cells[0].key}.json"]


def test_report_draws_restored_and_local_traces_on_one_grid(tmp_path):
    c0, c1 = _cell("grid0"), _cell("grid1")
    traces = [{"cell": c0.key, "stage": "eval", "task": "inpaint", "level": 0.5, "method": "ilo", "variant": "grid0",
               **thin_trace(_trace(101, "img-0"), 25)},
              {"cell": c1.key, "stage": "eval", "task": "inpaint", "level": 0.5, "method": "ilo", "variant": "grid1",
               **_trace(101, "img-0")}]
    df = traces_frame(traces, pd.DataFrame(_rows(c0) + _rows(c1)))
    for key in (c0.key, c1.key):
        d = df[df["cell"] == key]
        assert d["step"].tolist() == [0, 25, 50, 75, 100]
        # thinning keeps the arithmetic of the elapsed axis: the last kept step ends at the row's recorded cost
        assert d["seconds_elapsed"].iloc[-1] == ROW_SECONDS


def test_cli_reports_a_missing_run_folder(tmp_path, capsys):
    assert main(["pack", str(tmp_path / "wip"), str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().out
    assert main(["unpack", str(tmp_path / "wip"), "--dest", str(tmp_path / "runs")]) == 0
    assert "nothing to unpack" in capsys.readouterr().out
