"""Result store: atomic records, skip-when-done, retries, plans; the runner's failure rows."""
from __future__ import annotations

import json
import math

import pytest

from bench.harness.runner import Cell, CellResult, failed_result, image_seed, operator_seed, run_cell
from bench.harness.store import ResultStore, atomic_write_json


def cell(**over) -> Cell:
    base = dict(sweep="s", stage="tune", prior="tiny", task="inpaint", level=0.5, method="csgm",
                params={"steps": 5}, image_set="tune", image_indices=(0, 1), seed=0)
    return Cell(**{**base, **over})


def ok_result(c: Cell, value: float = 0.1) -> CellResult:
    return CellResult(c, [{"cell": c.key, "image_index": i, "mse": value, "status": "ok"} for i in c.image_indices])


def test_cell_key_is_stable_and_sensitive():
    a, b = cell(), cell()
    assert a.key == b.key and len(a.key) == 16
    assert cell(params={"steps": 6}).key != a.key
    assert cell(image_indices=(1, 0)).key != a.key
    assert Cell.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_seeds_depend_on_image_and_operator_identity_only():
    assert image_seed(0, "img-3") == image_seed(0, "img-3") != image_seed(0, "img-4")
    assert image_seed(1, "img-3") != image_seed(0, "img-3")
    assert operator_seed(cell(method="ilo")) == operator_seed(cell(method="csgm"))  # same operator for all methods
    assert operator_seed(cell(level=0.2)) != operator_seed(cell())


def test_record_skip_and_retry(tmp_path):
    store = ResultStore(tmp_path)
    c = cell()
    assert not store.is_done(c) and store.pending([c]) == [c]
    assert store.record(failed_result(c, "boom"), max_attempts=2) == "retry"
    assert not store.is_done(c) and store.attempts(c) == 1
    assert store.record(failed_result(c, "boom again"), max_attempts=2) == "failed"
    assert store.status(c) == "failed"
    assert store.is_done(c)
    rows = store.rows()
    assert len(rows) == 2 and all(r["status"] == "failed" and r["reason"] == "boom again" for r in rows)
    assert all(math.isnan(r["mse"]) for r in rows)

    c2 = cell(seed=1)
    assert store.record(ok_result(c2)) == "ok"
    assert store.pending([c, c2]) == []
    # writing the same cell twice (a requeued job racing its original) never duplicates rows
    store.record(ok_result(c2))
    assert len([r for r in store.rows() if r["cell"] == c2.key]) == 2


def test_failed_cells_are_reopened_on_the_next_run_and_counted_afresh(tmp_path):
    store = ResultStore(tmp_path)
    c = cell()
    assert store.record(failed_result(c, "bad file"), max_attempts=1) == "failed"
    assert store.status(c) == "failed" and store.pending([c]) == []
    assert store.reopen_failed([c]) == 1
    assert store.pending([c]) == [c] and store.attempts(c) == 0  # attempts counted afresh after a reopen
    assert len(list((tmp_path / "attempts").glob(f"{c.key}.*.json"))) == 1  # the old attempt is kept
    assert store.record(failed_result(c, "still bad"), max_attempts=2) == "retry"
    assert store.record(ok_result(c)) == "ok" and store.status(c) == "ok"
    assert store.reopen_failed([c]) == 0  # ok cells are never rerun


def test_execute_retries_failed_cells_only_when_asked(tmp_path):
    """A deterministic failure is final within a run (one attempt, whatever --max-attempts), and
    re-running the same command after fixing the cause reruns it unless --no-retry-failed."""
    from bench.harness.execution import execute

    store = ResultStore(tmp_path)
    bad = Cell("s", "tune", "tiny", "inpaint", 0.3, "csgm", {"steps": 2, "lr": "not a number"}, "tune", (0,))
    assert execute([bad], store, "debug", max_attempts=3) == {"ok": 0, "failed": 1, "missing": 0}
    assert store.attempts(bad) == 1
    assert execute([bad], store, "debug", max_attempts=3) == {"ok": 0, "failed": 1, "missing": 0}
    assert store.attempts(bad) == 1  # not rerun without retry_failed
    assert execute([bad], store, "debug", retry_failed=True)["failed"] == 1
    assert len(list((tmp_path / "attempts").glob(f"{bad.key}.*.json"))) == 2  # rerun once, each attempt kept


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "x.json"

    class Boom:
        def __str__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_json(path, {"a": Boom()})
    assert not path.exists() and not list(tmp_path.glob("*.tmp"))
    atomic_write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}


def test_plan_roundtrip(tmp_path):
    store = ResultStore(tmp_path)
    cells = [cell(), cell(level=0.2)]
    store.write_plan(cells, meta={"stage": "tune"})
    back, meta = store.read_plan()
    assert back == cells and meta == {"stage": "tune"}


def test_runner_turns_exceptions_into_failed_rows():
    res = run_cell(cell(params={"steps": "many"}), "cpu")
    assert res.status == "failed" and "TypeError" in res.reason
    assert [r["status"] for r in res.rows] == ["failed", "failed"]
    res = run_cell(cell(method="nonexistent"), "cpu")
    assert res.status == "failed" and "valid methods" in res.reason


def test_runner_ok_rows_have_metrics_and_versions():
    res = run_cell(cell(params={"steps": 10}), "cpu")
    assert res.status == "ok", res.reason
    r = res.rows[0]
    assert r["mse"] > 0 and r["psnr"] > 0 and r["nfe_generator"] == 11
    assert math.isnan(r["lpips"]) == (r["lpips_status"] != "ok")  # never a number without a backbone
    assert r["v_torch"] and r["image_id"].startswith("tiny-tune-")
    assert len(res.traces) == 2 and len(res.traces[0]["loss"]) == 11
