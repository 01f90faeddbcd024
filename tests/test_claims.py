"""The claim table: SGILO vs each reference at the two scarcest levels of each task, verdict from the CI."""
from __future__ import annotations

import pandas as pd
import pytest

from bench.report.claims import claim_counts, claim_table, scarcest_levels, verdict


def test_verdict_follows_the_ci_and_can_go_either_way():
    assert verdict(-0.03, -0.01) == "SGILO better"
    assert verdict(0.01, 0.02) == "SGILO worse"
    assert verdict(-0.01, 0.02).startswith("not resolved")


@pytest.mark.parametrize("task,levels,expected", [
    ("cs", [0.25, 0.0625, 0.125], [0.0625, 0.125]),  # fewer measurements = harder
    ("inpaint", [0.5, 0.2, 0.0625], [0.0625, 0.2]),
    ("superres", [2, 8, 4], [8.0, 4.0]),  # larger factor = harder
    ("denoise", [0.25, 1.0, 0.5], [1.0, 0.5]),  # more noise = harder
])
def test_scarcest_levels_use_each_tasks_direction(task, levels, expected):
    assert scarcest_levels(levels, task) == expected


def _paired(task: str, level: float, ref: str, lo: float, hi: float, method: str = "sgilo") -> dict:
    return {"task": task, "level": level, "method": method, "reference": ref, "n": 30, "seeds": 3,
            "mean_diff": (lo + hi) / 2, "ci_low": lo, "ci_high": hi, "win_rate": 0.5}


def test_claim_table_keeps_only_sgilo_at_the_scarce_levels():
    rows = [_paired("cs", lv, ref, -0.02 + i * 0.015, -0.01 + i * 0.02)
            for lv in (0.0625, 0.125, 0.25) for i, ref in enumerate(("ilo", "csgm", "sgilo_t0"))]
    rows.append(_paired("cs", 0.0625, "ilo", -1, 1, method="csgm"))  # another method: ignored
    claims = claim_table(pd.DataFrame(rows))
    assert sorted(claims["level"].unique()) == [0.0625, 0.125] and len(claims) == 6
    by_ref = claims[claims["level"] == 0.0625].set_index("reference")["verdict"]
    assert by_ref["ilo"] == "SGILO better" and by_ref["csgm"].startswith("not resolved")
    assert by_ref["sgilo_t0"] == "SGILO worse"
    assert claim_counts(claims)["ilo"] == {"SGILO better": 2}
    assert list(claims["reference"].unique()) == ["ilo", "csgm", "sgilo_t0"]  # the references' order


def test_claim_table_of_nothing_is_empty():
    assert claim_table(pd.DataFrame(columns=["task", "level", "method", "reference"])).empty


def test_claims_of_several_reports_combine_into_one_answer(tmp_path, capsys):
    from bench.report.claims import main

    a, b = tmp_path / "paper-superres", tmp_path / "paper-others"
    for d, rows in ((a, [_paired("superres", 8, "ilo", 0.006, 0.038)]),
                    (b, [_paired("inpaint", 0.0625, "ilo", -0.02, -0.01), _paired("cs", 0.0625, "csgm", -0.01, 0.02)])):
        d.mkdir()
        claim_table(pd.DataFrame(rows)).to_csv(d / "claims.csv", index=False)
    out = tmp_path / "claims" / "paper-claims.md"
    assert main([str(a), str(b), "--out", str(out)]) == 0
    md = out.read_text()
    assert "against ilo: SGILO better: 1, SGILO worse: 1 (of 2 cells)" in md and "| superres | 8 | ilo |" in md
    combined = pd.read_csv(out.with_suffix(".csv"))
    assert combined.set_index("task")["report"].to_dict() == {"superres": "paper-superres", "inpaint": "paper-others",
                                                                  "cs": "paper-others"}
    # the same cell answered twice, or a folder without claims.csv: a clear error, nothing written
    assert main([str(a), str(a), "--out", str(tmp_path / "x.md")]) == 2
    assert "more than one report: superres 8 (paper-superres)" in capsys.readouterr().err
    assert main([str(tmp_path), "--out", str(tmp_path / "y.md")]) == 2
    assert "no claims.csv" in capsys.readouterr().err and not (tmp_path / "y.md").exists()
