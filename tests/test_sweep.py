"""The sweep: CLI validation, dry run, end-to-end on the tiny prior, determinism, kill-and-resume."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness.store import ResultStore
from bench.harness.sweep.cli import main

ROOT = Path(__file__).resolve().parents[1]
# A small but complete sweep: tiny prior, one task, two levels, two methods, 4 test images.
TINY_ARGS = ["--prior", "tiny", "--tasks", "inpaint", "--levels", "inpaint=0.2,0.5", "--methods", "csgm,ilo",
             "--n-test", "4", "--eval-batch", "2", "--wandb", "disabled", "--steps-scale", "0.25"]


def run_cli(args: list[str], timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench.sweep", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, **kw)


@pytest.mark.parametrize("args,expected", [
    (["--tasks", "inpaint,foo"], "valid tasks: colorize, cs, denoise, inpaint, inpaint_box, superres"),
    (["--tasks", "inpaint", "--methods", "ilo,pulse"], "valid methods: csgm, ilo, ilo_unreg"),
    (["--tasks", "inpaint", "--levels", "inpaint=abc"], "levels must be numbers"),
    (["--tasks", "inpaint", "--levels", "inpaint"], "expected task=level1,level2"),
    (["--tasks", "inpaint", "--levels", "cs=0.1"], "not in --tasks"),
    (["--tasks", "inpaint", "--levels", "inpaint=1.5"], "must be in (0, 1]"),
    (["--tasks", "inpaint", "--prior", "mnist"], "valid priors:"),
])
def test_bad_input_exits_2_and_lists_valid_choices(args, expected, capsys):
    assert main(args + ["--dry-run"]) == 2
    assert expected in capsys.readouterr().err


def test_dry_run_prints_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(TINY_ARGS + ["--out", str(out), "--dry-run", "--executor", "local"]) == 0
    text = capsys.readouterr().out
    assert "tune stage: " in text and "eval stage: " in text and "local: " in text
    assert not out.exists()


def test_missing_ffhq_assets_are_listed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("SGILO_BENCH_FFHQ_DIR", raising=False)
    assert main(["--tasks", "inpaint", "--prior", "ffhq", "--dry-run", "--executor", "local"]) == 2
    text = capsys.readouterr().out
    assert "stylegan2-ffhq-config-f.pt" in text and "SGILO_BENCH_FFHQ_DIR" in text
    assert main(["--tasks", "inpaint", "--prior", "ffhq", "--executor", "local", "--out", str(tmp_path / "x")]) == 2


def _rows(folder: Path) -> dict[tuple, dict]:
    return {(r["cell"], r["image_index"]): r for r in ResultStore(folder).rows()}


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory) -> Path:
    """One uninterrupted run (2 local workers), shared by the tests below."""
    out = tmp_path_factory.mktemp("tiny") / "sweep"
    p = run_cli(TINY_ARGS + ["--out", str(out), "--executor", "local", "--workers", "2"])
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def test_tiny_sweep_end_to_end(tiny_sweep):
    store = ResultStore(tiny_sweep)
    rows = store.rows()
    tune = [r for r in rows if r["stage"] == "tune"]
    ev = [r for r in rows if r["stage"] == "eval"]
    # tune: 2 levels x (2 csgm + 2 ilo grid points + the ILO paper schedule) x 8 images
    assert len(tune) == 2 * (2 + 2 + 1) * 8
    # eval: 2 levels x (csgm tuned, ilo tuned, ilo paper) x 4 test images
    assert len(ev) == 2 * 3 * 4
    assert {r["variant"] for r in ev} == {"tuned", "ilo_paper"}
    assert all(r["status"] == "ok" for r in rows)
    report = tiny_sweep / "report"
    assert (report / "report.md").exists()
    assert list(report.glob("*.png"))
    # reconstruction grids from the eval cells' previews: one per task and level, shown in the report
    assert sorted(p.name for p in report.glob("recon_*.png")) == ["recon_inpaint_0.2.png", "recon_inpaint_0.5.png"]
    assert "recon_inpaint_0.2.png" in (report / "report.md").read_text()
    import torch

    blob = torch.load(next((tiny_sweep / "previews").glob("*.pt")), weights_only=True)
    assert blob["reconstruction"].dtype == torch.uint8 and blob["reference"].shape[0] == 2  # eval batches of 2


def test_rerun_is_a_noop_and_same_numbers(tiny_sweep):
    before = _rows(tiny_sweep)
    p = run_cli(TINY_ARGS + ["--out", str(tiny_sweep), "--executor", "local"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert _rows(tiny_sweep) == before


def test_killed_sweep_resumes_to_exactly_the_uninterrupted_rows(tiny_sweep, tmp_path):
    out = tmp_path / "killed" / "sweep"  # same sweep name => same cell keys
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bench.sweep", *TINY_ARGS, "--out", str(out), "--executor", "local",
                             "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill -9 (the whole process group) once a few cells are stored
        if len(list((out / "cells").glob("*.json"))) >= 5:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list((out / "cells").glob("*.json")))
    assert 5 <= partial < 2 * 4 + 2 * 3 * 2, "the kill should land mid-sweep"
    p = run_cli(TINY_ARGS + ["--out", str(out), "--executor", "local", "--workers", "2"])
    assert p.returncode == 0, p.stderr[-2000:]
    resumed, reference = _rows(out), _rows(tiny_sweep)
    assert resumed.keys() == reference.keys()  # nothing lost, nothing duplicated
    for k, r in reference.items():
        assert resumed[k]["mse"] == pytest.approx(r["mse"], rel=1e-5, abs=1e-9), k


def test_plan_only_and_run_plan_chunks(tiny_sweep, tmp_path):
    """The grid.sh path: --plan-only writes the plan; bench.harness.run_plan runs chunks into the store."""
    out = tmp_path / "planned" / "sweep"
    args = TINY_ARGS + ["--out", str(out), "--executor", "local", "--methods", "csgm", "--levels", "inpaint=0.5"]
    p = run_cli(args + ["--plan-only", "tune"])
    assert p.returncode == 0 and "slurm/grid.sh" in p.stdout, p.stderr
    plan = json.loads((out / "plan_tune.json").read_text())
    assert len(plan["cells"]) == 2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for i in range(2):
        r = subprocess.run([sys.executable, "-m", "bench.harness.run_plan", str(out / "plan_tune.json"), "--index", str(i)],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
    p = run_cli(args + ["--plan-only", "eval"])
    assert p.returncode == 0, p.stderr
    assert len(json.loads((out / "plan_eval.json").read_text())["cells"]) == 2  # 4 test images, batches of 2
    # identical numbers to the in-process sweep for the same cells
    ref = _rows(tiny_sweep)
    for k, r in _rows(out).items():
        assert ref[k]["mse"] == pytest.approx(r["mse"], rel=1e-5, abs=1e-9)


def test_every_cell_failing_exits_1_and_a_rerun_retries_them(tmp_path, capsys):
    """A world whose CSGM grid point has a learning rate that is not a number: the preflight cannot
    know, every tuning cell fails at run time (the reason says why), the sweep exits 1, and running it
    again reruns them (retry is the default) unless --no-retry-failed."""
    from bench.harness.cli import ExecutionOptions
    from bench.harness.sweep.config import resolve
    from bench.harness.sweep.run import run_sweep
    from bench.priors import catalog
    from bench.priors.tiny import TINY_PRIOR

    world = dataclasses.replace(TINY_PRIOR.world, name="tiny-badgrid", grids={"csgm": ({"steps": 2, "lr": "fast"},)})
    catalog.register_prior(dataclasses.replace(TINY_PRIOR, name="tiny-badgrid", world=world))
    out = tmp_path / "s"

    def sweep(retry: bool = True) -> int:
        ex = ExecutionOptions(executor="debug", wandb="disabled", retry_failed=retry)
        return run_sweep(resolve(("inpaint",), "tiny-badgrid", levels={"inpaint": (0.3,)}, methods=("csgm",),
                                 n_test=2, out=out, execution=ex))

    assert sweep() == 1
    assert "every tuning cell failed" in capsys.readouterr().err
    store = ResultStore(out)
    assert {r["status"] for r in store.rows()} == {"failed"} and all("TypeError" in r["reason"] for r in store.rows())
    attempts = lambda: len(list((out / "attempts").glob("*.json")))  # noqa: E731
    assert attempts() == 1
    assert sweep() == 1 and attempts() == 2
    assert sweep(retry=False) == 1 and attempts() == 2  # kept, not rerun


def test_a_different_sweep_in_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "one"
    base = ["--prior", "tiny", "--tasks", "inpaint", "--methods", "csgm", "--n-test", "2", "--wandb", "disabled",
            "--steps-scale", "0.05", "--executor", "debug", "--out", str(out)]
    assert main(base + ["--levels", "inpaint=0.3"]) == 0
    assert main(base + ["--levels", "inpaint=0.3", "--executor", "local"]) == 0  # how cells run may change
    stored = (out / "config.json").read_text()
    n_cells = len(list((out / "cells").iterdir()))
    assert main(base + ["--levels", "inpaint=0.4"]) == 2
    err = capsys.readouterr().err
    assert "holds another sweep" in err and "levels: stored {'inpaint': [0.3]}, now {'inpaint': [0.4]}" in err
    assert (out / "config.json").read_text() == stored and len(list((out / "cells").iterdir())) == n_cells
    # new weights or images under the same --out: refused too (the fingerprints are part of the identity)
    cfg = json.loads(stored)
    cfg["data"] = {"embedded-generator": "123:abc"}
    (out / "config.json").write_text(json.dumps(cfg))
    assert main(base + ["--levels", "inpaint=0.3"]) == 2
    assert "data: stored {'embedded-generator': '123:abc'}, now {}" in capsys.readouterr().err


def test_file_fingerprint_changes_with_content_and_size(tmp_path):
    from bench.core.io import file_fingerprint

    p = tmp_path / "w.pt"
    p.write_bytes(b"a" * 100)
    f1 = file_fingerprint(p)
    p.write_bytes(b"b" * 100)
    f2 = file_fingerprint(p)
    p.write_bytes(b"b" * 101)
    assert len({f1, f2, file_fingerprint(p)}) == 3


def test_preflight_names_every_problem_before_any_cell(tmp_path, capsys):
    """Bad levels, counts and option ranges are found before the first cell, in the dry run and the run."""
    args = ["--prior", "tiny", "--tasks", "superres,colorize,inpaint", "--levels", "superres=3",
            "--levels", "inpaint=1e-6,0.5,0.5", "--methods", "sgilo,csgm", "--n-test", "100", "--eval-batch", "0",
            "--steps-scale", "-1", "--workers", "0", "--max-attempts", "0", "--executor", "debug",
            "--wandb", "disabled", "--out", str(tmp_path / "p")]
    for extra in (["--dry-run"], []):
        assert main(args + extra) == 2
        text = capsys.readouterr()
        text = text.out + text.err
        for fragment in ("--eval-batch must be >= 1", "--steps-scale must be > 0", "--workers must be >= 1",
                         "--max-attempts must be >= 1", "0.5 given twice", "factor 3 must divide the image size",
                         "colorize needs RGB images", "observes no pixel", "needs 100 test images but 'tiny' has 30",
                         "need score models of layers [0, 1] but prior 'tiny' has none"):
            assert fragment in text, fragment
    assert not (tmp_path / "p" / "cells").exists()


def test_ctrl_c_ends_with_a_message_not_a_traceback(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "interrupted"
    # --steps-scale 4 (the last one given wins): long enough that the run is still going when interrupted
    proc = subprocess.Popen([sys.executable, "-m", "bench.sweep", *TINY_ARGS, "--steps-scale", "4", "--out", str(out),
                             "--executor", "debug"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell that started us in the background ignores SIGINT and children inherit that;
                            # restore the default so Python installs its KeyboardInterrupt handler, as in a terminal
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not ((out / "cells").exists() and any((out / "cells").iterdir())):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: finished cells are stored" in err and "Traceback" not in err
    # the store stays sound: every stored record is complete JSON
    for p in (out / "cells").glob("*.json"):
        json.loads(p.read_text())


@pytest.mark.parametrize("make,fragment", [
    (lambda d: (d / "f").write_text("x") and d / "f", "exists and is not a folder"),
    (lambda d: (d / "g").write_text("x") and d / "g" / "sub", "is a file, so no folder can be made"),
])
def test_unusable_out_paths_exit_2_with_a_message(tmp_path, capsys, make, fragment):
    assert main(["--prior", "tiny", "--tasks", "inpaint", "--dry-run", "--out", str(make(tmp_path))]) == 2
    assert fragment in capsys.readouterr().err


def test_corrupt_checkpoint_is_named_before_any_cell(tmp_path, monkeypatch, capsys):
    from PIL import Image

    cache, images = tmp_path / "cache", tmp_path / "ffhq"
    cache.mkdir()
    (cache / "stylegan2-ffhq-config-f.pt").write_bytes(os.urandom(2048))
    for sub, n in (("tune", 8), ("test", 1)):
        (images / sub).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (1024, 1024)).save(images / sub / f"{i:05d}.png")
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(cache))
    monkeypatch.setenv("SGILO_BENCH_FFHQ_DIR", str(images))
    args = ["--prior", "ffhq", "--tasks", "inpaint", "--methods", "csgm", "--n-test", "1", "--executor", "debug",
            "--wandb", "disabled", "--allow-no-lpips", "--out", str(tmp_path / "s")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "stylegan2-ffhq-config-f.pt: cannot read a generator checkpoint" in err and "weights_only" not in err
    assert not (tmp_path / "s" / "cells").exists()


def test_dry_run_says_what_will_be_reported_unavailable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-hub"))
    assert main(TINY_ARGS + ["--dry-run", "--executor", "local", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "optional (the sweep runs without it)" in out and "alexnet-owt-7be5be79.pth" in out
    assert "reported as 'unavailable'" in out


def test_too_few_tuning_images_are_named_before_any_cell(tmp_path, monkeypatch, capsys):
    from PIL import Image

    images = tmp_path / "ffhq"
    for sub, n in (("tune", 3), ("test", 2)):
        (images / sub).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (64, 64)).save(images / sub / f"{i:05d}.png")
    monkeypatch.setenv("SGILO_BENCH_FFHQ_DIR", str(images))
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path / "cache"))
    assert main(["--prior", "ffhq", "--tasks", "inpaint", "--methods", "csgm", "--n-test", "2", "--dry-run",
                 "--executor", "local", "--out", str(tmp_path / "s")]) == 2
    assert "the protocol needs 8 tune images but 'ffhq' has 3" in capsys.readouterr().out


def test_ffhq_dry_run_without_lpips_backbone_exits_2_unless_allowed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-hub"))
    monkeypatch.delenv("SGILO_BENCH_FFHQ_DIR", raising=False)
    args = ["--prior", "ffhq", "--tasks", "inpaint", "--methods", "csgm", "--dry-run", "--executor", "local"]
    assert main(args) == 2
    listed = capsys.readouterr().out.split("missing for prior 'ffhq'")[1]
    assert "alexnet-owt-7be5be79.pth" in listed and "--allow-no-lpips" in listed
    assert main(args + ["--allow-no-lpips"]) == 2  # still 2: the generator and images are missing too
    out = capsys.readouterr().out
    listed = out.split("missing for prior 'ffhq'")[1]
    assert "alexnet" not in listed and "optional (the sweep runs without it)" in out


def test_only_cells_that_loaded_a_reinstalled_score_model_run_again(tmp_path, capsys, monkeypatch):
    """After a score model is re-installed, --rerun-score-cells sets aside the SGILO cells at T > 0 that used the
    old file (each record names the files it was computed with) and keeps CSGM's and SGILO-T0's records byte for
    byte, and any cell already computed with the new file; any other change is still refused."""
    import bench.priors.catalog as catalog
    from bench.harness.runner import Cell, score_layers

    out = tmp_path / "s"
    base = ["--prior", "embedded", "--tasks", "inpaint", "--levels", "inpaint=0.3", "--methods", "csgm,sgilo",
            "--grid", "sgilo.temperature=[0],[0.1]", "--grid", "sgilo.steps=[2,2,2]", "--grid", "csgm.steps=2",
            "--n-test", "2", "--eval-batch", "2", "--wandb", "disabled", "--executor", "debug", "--out", str(out)]
    assert main(base) == 0
    records = {p.name: p.read_bytes() for p in (out / "cells").iterdir()}
    blobs = {name: json.loads(blob) for name, blob in records.items()}
    cells = {name: Cell.from_dict(b["cell"]) for name, b in blobs.items()}
    real = catalog.data_identity("embedded")
    assert all(b["weights"] == real for b in blobs.values())
    used = {name for name, c in cells.items() if score_layers([c])}
    kept = set(records) - used
    assert used and kept and {cells[n].method for n in kept} == {"csgm", "sgilo"}  # SGILO T=0 is kept
    # re-install: every score file the SGILO cells loaded changes; one of those cells already ran with the new one
    new = {**real, **{f"score_layer{k}.pt": "1:new" for k in score_layers(cells[n] for n in used)}}
    monkeypatch.setattr(catalog, "data_identity", lambda name: dict(new))
    early = sorted(used)[0]
    (out / "cells" / early).write_text(json.dumps(dict(blobs[early], weights=new)))
    capsys.readouterr()
    assert main(base) == 2  # refused, with the way out named
    assert "--rerun-score-cells" in capsys.readouterr().err
    assert {p.name for p in (out / "cells").iterdir()} == set(records)
    assert main(base + ["--rerun-score-cells", "--dry-run"]) == 0 and not (out / "superseded").exists()
    assert main(base + ["--rerun-score-cells"]) == 0
    assert {p.name for p in out.glob("superseded/*/cells/*.json")} == used - {early}
    assert all((out / "cells" / n).read_bytes() == records[n] for n in kept)  # untouched
    assert all(json.loads((out / "cells" / n).read_text())["weights"] == new for n in used)  # run with the new file
    assert json.loads((out / "config.json").read_text())["data"] == new
    # a changed generator is another sweep, flag or not
    monkeypatch.setattr(catalog, "data_identity", lambda name: {**new, "embedded-generator": "1:other"})
    assert main(base + ["--rerun-score-cells"]) == 2
    assert "Only the score model" not in capsys.readouterr().err
