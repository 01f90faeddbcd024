"""Tuning grids from the command line and from a TOML file reach the planned cells."""
from __future__ import annotations

import json

import pytest

from bench.harness.cli import UsageError
from bench.harness.grids import parse_grid_specs, split_top_level
from bench.harness.sweep.cli import main

BASE = ["--prior", "tiny", "--tasks", "inpaint", "--levels", "inpaint=0.3", "--methods", "csgm,ilo",
        "--executor", "local", "--wandb", "disabled"]


def _tune_params(out):
    cells = json.loads((out / "plan_tune.json").read_text())["cells"]
    # grid points only: the ILO paper schedule also runs on the tuning images (for the composite ILO)
    return {m: [c["params"] for c in cells if c["method"] == m and c["variant"] != "ilo_paper"] for m in ("csgm", "ilo")}


def test_command_line_grid_reaches_the_cells(tmp_path):
    out = tmp_path / "g"
    assert main(BASE + ["--grid", "ilo.radius_state=[0.02],[0.1,0.2]", "--grid", "ilo.noise_addition=0,0.05",
                        "--out", str(out), "--plan-only", "tune"]) == 0
    params = _tune_params(out)
    got = sorted((tuple(p["radius_state"]), p["noise_addition"]) for p in params["ilo"])
    assert got == [((0.02,), 0), ((0.02,), 0.05), ((0.1, 0.2), 0), ((0.1, 0.2), 0.05)]
    assert all(p["steps"] == [25, 25, 25] for p in params["ilo"])  # the world's schedule is kept
    assert len(params["csgm"]) == 2  # untouched: its built-in grid
    assert len(json.loads((out / "config.json").read_text())["grids"]["ilo"]) == 4


def test_grid_file_and_command_line_merge(tmp_path):
    (tmp_path / "grids.toml").write_text("[csgm]\nlr = [0.01, 0.02, 0.04]\nsteps = [10]\n")
    out = tmp_path / "f"
    assert main(BASE + ["--grid-file", str(tmp_path / "grids.toml"), "--grid", "csgm.lr=0.5",
                        "--out", str(out), "--plan-only", "tune"]) == 0
    assert [(p["lr"], p["steps"]) for p in _tune_params(out)["csgm"]] == [(0.5, 10)]  # the command line wins


@pytest.mark.parametrize("spec,fragment", [("sgilo", "expected METHOD.PARAM=V1,V2"), ("sgilo.lr=[0.1", "JSON"),
                                           ("sgilo.lr=", "lists no value")])
def test_malformed_grids_are_usage_errors(spec, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_grid_specs([spec])


def test_split_keeps_lists_whole():
    assert split_top_level("[0,0,0.3], [0,0,1],0.5") == ["[0,0,0.3]", "[0,0,1]", "0.5"]
