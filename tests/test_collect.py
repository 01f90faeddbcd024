"""bench.report: statistics by hand, tuning selection, composite ILO, files, edge cases.

A fake ResultStore is written with the real store API from synthetic Cell/CellResult rows and
traces (no method is run), so these tests are fast and check exact numbers.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.harness.runner import Cell, CellResult
from bench.harness.store import ResultStore
from bench.report.collect import collect, main
from bench.report.frames import rows_frame
from bench.report.stats import (
    COMPOSITE_LABEL,
    COMPOSITE_TEST_LABEL,
    bootstrap_ci,
    ilo_composite,
    ilo_composite_test_selected,
    select_best,
    summarize,
)
from bench.report.tables import summary_markdown

N_BOOT = 200  # the statistics are checked against bootstrap_ci with the same n, so any n is exact


def make_cell(stage: str, task: str, level: float, method: str, variant: str, params: dict | None = None,
              n_images: int = 3, seed: int = 0) -> Cell:
    return Cell(sweep="fake", stage=stage, prior="embedded", task=task, level=level, method=method,
                params=params or {"lr": 0.1}, image_set="tune" if stage == "tune" else "test",
                image_indices=tuple(range(n_images)), variant=variant, seed=seed)


def make_result(cell: Cell, mses: list[float], lpips: list[float] | None = None, failed: tuple[int, ...] = (),
                steps: int = 5, seconds: float = 2.0) -> CellResult:
    """Synthetic rows (and traces) as the runner writes them; images in ``failed`` are failed rows."""
    rows, traces = [], []
    for j, i in enumerate(cell.image_indices):
        bad = j in failed
        rows.append({
            "cell": cell.key, "sweep": cell.sweep, "stage": cell.stage, "prior": cell.prior, "task": cell.task,
            "level": cell.level, "method": cell.method, "variant": cell.variant,
            "params": json.dumps(cell.params, sort_keys=True), "image_set": cell.image_set, "image_index": i,
            "image_id": f"img{i}", "seed": cell.seed, "noise_sigma": 0.0, "v_bench": "0.1.0",
            "mse": math.nan if bad else mses[j], "psnr": math.nan if bad else 10 * math.log10(4 / mses[j]),
            "lpips": math.nan if (bad or lpips is None) else lpips[j],
            "lpips_status": "ok" if lpips is not None else "LPIPS weights not found",
            "measurement_loss": 0.01, "nfe_generator": steps, "nfe_score": 0, "seconds": seconds,
            "status": "failed" if bad else "ok", "reason": "non-finite result (diverged: NaN/inf loss or image)" if bad else "",
        })
        traces.append({"image_id": f"img{i}", "steps": list(range(steps)), "loss": [1.0 / (s + 1) for s in range(steps)],
                        "ref_mse": [mses[j] * (steps - s) for s in range(steps)]})
    status = "failed" if failed else "ok"
    return CellResult(cell, rows, traces, status=status, reason="non-finite result in at least one image" if failed else "")


def write(store: ResultStore, res: CellResult) -> None:
    store.record(res, max_attempts=1)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two tasks (inpaint: 2 levels, colorize: 1 level), tune + eval, all five eval variants."""
    root = tmp_path_factory.mktemp("sweep")
    store = ResultStore(root)
    for task, levels in (("inpaint", (0.05, 0.5)), ("colorize", (0.0,))):
        for lv in levels:
            k = 2.0 if lv == 0.05 else 1.0  # the harder inpainting level has larger errors
            for lr, base in ((0.1, 0.02), (0.3, 0.01)):
                for method in ("csgm", "ilo", "sgilo"):
                    write(store, make_result(make_cell("tune", task, lv, method, f"lr{lr}", {"lr": lr}),
                                             [k * base, k * base * 2, k * base * 3], [0.2, 0.3, 0.4]))
            evals = {("csgm", "tuned"): 0.05, ("ilo", "tuned"): 0.03, ("ilo", "ilo_paper"): 0.025 if lv == 0.05 else 0.04,
                     ("ilo_unreg", "tuned"): 0.035, ("sgilo", "tuned"): 0.02}
            for (method, variant), base in evals.items():
                failed = (2,) if (method, variant) == ("sgilo", "tuned") and lv == 0.5 else ()
                write(store, make_result(make_cell("eval", task, lv, method, variant),
                                         [k * base, k * base * 1.5, k * base * 2], [0.1, 0.2, 0.3], failed=failed))
    return root


@pytest.fixture(scope="module")
def collected(sweep):
    import matplotlib

    matplotlib.use("Agg")
    return collect(sweep, n_boot=N_BOOT)


# ----------------------------------------------------------------------------- bootstrap_ci
def test_bootstrap_ci_constant_is_degenerate():
    assert bootstrap_ci([0.1] * 30) == (0.1, 0.1)
    assert bootstrap_ci([0.1] * 30, n=50, seed=3) == (0.1, 0.1)


def test_bootstrap_ci_covers_mean_and_is_deterministic():
    x = np.random.default_rng(1).normal(2.0, 1.0, size=40)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi
    se = x.std(ddof=1) / np.sqrt(x.size)  # the percentile interval is close to mean +- 1.96 se
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)
    assert bootstrap_ci(x) == (lo, hi)  # fixed seed
    assert bootstrap_ci(list(x) + [math.nan]) == (lo, hi)  # NaN-aware


def test_bootstrap_ci_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert all(math.isnan(v) for v in bootstrap_ci([math.nan, math.nan]))
    assert bootstrap_ci([3.5]) == (3.5, 3.5)


# ----------------------------------------------------------------------------- summarize
def test_summary_means_and_cis_by_hand():
    cell = make_cell("eval", "inpaint", 0.05, "csgm", "tuned", n_images=4)
    res = make_result(cell, [0.01, 0.02, 0.03, 999.0], [0.1, 0.3, 0.5, 0.7], failed=(3,))
    s = summarize(rows_frame(res.rows), n_boot=N_BOOT)
    assert len(s) == 1
    r = s.iloc[0]
    assert (r["n_ok"], r["n_failed"]) == (3, 1)  # the failed image is counted, not averaged
    assert r["mse_mean"] == pytest.approx(0.02)
    assert (r["mse_lo"], r["mse_hi"]) == bootstrap_ci([0.01, 0.02, 0.03], n=N_BOOT)
    assert r["lpips_mean"] == pytest.approx(0.3)
    assert (r["lpips_lo"], r["lpips_hi"]) == bootstrap_ci([0.1, 0.3, 0.5], n=N_BOOT)
    psnr = [10 * math.log10(4 / m) for m in (0.01, 0.02, 0.03)]
    assert r["psnr_mean"] == pytest.approx(np.mean(psnr))
    assert r["lpips_note"] == ""


def test_summary_lpips_unavailable():
    cell = make_cell("eval", "inpaint", 0.05, "csgm", "tuned")
    s = summarize(rows_frame(make_result(cell, [0.01, 0.02, 0.03], lpips=None).rows), n_boot=N_BOOT)
    assert math.isnan(s.iloc[0]["lpips_mean"])
    assert s.iloc[0]["lpips_note"].startswith("unavailable")


def test_summary_lines_say_which_seeds_they_pool():
    """Per-seed tuning can give one method's "tuned" variant two parameter sets: each summary line
    names its seeds, and the markdown shows the column only when the lines differ in it."""
    rows = []
    for seed, lr in ((0, 0.1), (1, 0.1), (2, 0.3)):
        rows += make_result(make_cell("eval", "cs", 0.1, "ilo", "tuned", {"lr": lr}, seed=seed), [0.1] * 3).rows
    s = summarize(rows_frame(rows), n_boot=N_BOOT)
    assert sorted(zip(s["seeds"], s["n_ok"])) == [("0,1", 6), ("2", 3)]
    table = summary_markdown(s)
    assert "| seeds |" in table and "| 0,1 |" in table
    one_seed = summarize(rows_frame(rows[:3]), n_boot=N_BOOT)
    assert "seeds" not in summary_markdown(one_seed)


# ----------------------------------------------------------------------------- select_best
def _tune_rows(spec: dict[str, tuple[list[float], list[float] | None, tuple[int, ...]]]) -> pd.DataFrame:
    rows = []
    for variant, (mses, lp, failed) in spec.items():
        cell = make_cell("tune", "cs", 0.1, "ilo", variant, {"lr": variant})
        rows += make_result(cell, mses, lp, failed=failed).rows
    return rows_frame(rows)


def test_select_best_lowest_mse():
    df = _tune_rows({"a": ([0.3, 0.3, 0.3], None, ()), "b": ([0.1, 0.2, 0.3], None, ()), "c": ([0.5] * 3, None, ())})
    best = select_best(df)
    assert len(best) == 1
    assert best.iloc[0]["variant"] == "b"
    assert best.iloc[0]["mse_mean"] == pytest.approx(0.2)
    assert json.loads(best.iloc[0]["params"]) == {"lr": "b"}
    assert best.iloc[0]["n_candidates"] == 3


def test_select_best_breaks_exact_tie_by_lpips():
    df = _tune_rows({"a": ([0.1, 0.2, 0.3], [0.5, 0.5, 0.5], ()), "b": ([0.1, 0.2, 0.3], [0.2, 0.2, 0.2], ()),
                     "c": ([0.4, 0.4, 0.4], [0.0, 0.0, 0.0], ())})
    best = select_best(df).iloc[0]
    assert best["variant"] == "b"
    assert "tie" in best["note"]


def test_select_best_ignores_eval_rows_and_ranks_incomplete_last():
    df = _tune_rows({"a": ([0.2, 0.2, 0.2], None, ()), "b": ([0.01, 0.01, 99.0], None, (2,))})
    ev = rows_frame(make_result(make_cell("eval", "cs", 0.1, "ilo", "tuned"), [1e-6] * 3).rows)
    best = select_best(pd.concat([df, ev], ignore_index=True)).iloc[0]
    assert best["variant"] == "a"  # b's mean is lower only because its diverged image is excluded
    assert "failed" in best["note"]


# ----------------------------------------------------------------------------- composite ILO
def test_composite_ilo_picks_best_variant_per_task_level():
    rows = []
    spec = {(0.05, "ilo", "tuned"): 0.3, (0.05, "ilo", "ilo_paper"): 0.1, (0.05, "ilo_unreg", "tuned"): 0.2,
            (0.5, "ilo", "tuned"): 0.05, (0.5, "ilo", "ilo_paper"): 0.07, (0.5, "ilo_unreg", "tuned"): 0.06,
            (0.5, "sgilo", "tuned"): 0.001, (0.5, "ilo", "other"): 0.0001}  # not candidates
    for (lv, m, v), mse in spec.items():
        rows += make_result(make_cell("eval", "inpaint", lv, m, v), [mse] * 3).rows
    choices, comp = ilo_composite_test_selected(rows_frame(rows))
    winners = dict(zip(choices["level"], choices["winner"]))
    assert winners == {0.05: "ilo/ilo_paper", 0.5: "ilo/tuned"}
    assert set(comp["method"]) == {COMPOSITE_TEST_LABEL}
    assert len(comp) == 6
    assert comp.groupby("level")["mse"].mean().to_dict() == pytest.approx({0.05: 0.1, 0.5: 0.05})


def test_composite_ilo_is_selected_on_the_tuning_images_per_seed():
    """The tune-selected composite follows the tuning images even when the test images disagree, per seed."""
    rows = []
    for seed, tune_best in ((0, "ilo_paper"), (1, "ilo_unreg")):
        tune = {("ilo", "grid0"): 0.3, ("ilo", "grid1"): 0.25, ("ilo", "ilo_paper"): 0.2, ("ilo_unreg", "grid0"): 0.22}
        if tune_best == "ilo_unreg":
            tune[("ilo_unreg", "grid0")] = 0.1
        for (m, v), mse in tune.items():
            rows += make_result(make_cell("tune", "inpaint", 0.05, m, v, {"v": v}, seed=seed), [mse] * 3).rows
        test = {("ilo", "tuned"): 0.1, ("ilo", "ilo_paper"): 0.3, ("ilo_unreg", "tuned"): 0.2}
        for (m, v), mse in test.items():
            rows += make_result(make_cell("eval", "inpaint", 0.05, m, v, seed=seed), [mse + seed] * 3).rows
    df = rows_frame(rows)
    choices, comp = ilo_composite(df[df["stage"] == "eval"], df[df["stage"] == "tune"])
    assert dict(zip(choices["seed"], choices["winner"])) == {0: "ilo/ilo_paper", 1: "ilo_unreg/tuned"}
    assert comp.groupby("seed")["mse"].mean().to_dict() == pytest.approx({0: 0.3, 1: 1.2})  # their test rows
    assert set(comp["method"]) == {COMPOSITE_LABEL}
    test_choices, _ = ilo_composite_test_selected(df)
    assert set(test_choices["winner"]) == {"ilo/tuned"}  # what the test images would have picked


# ----------------------------------------------------------------------------- collect end to end
def test_collect_writes_every_file(sweep, collected):
    out = sweep / "report"
    for name in ("rows.csv", "traces.csv", "summary.csv", "summary.md", "tuning_choices.csv", "ilo_composite.csv",
                 "failures.csv", "figure3_quality.png", "figure3_quality.pdf", "figure9_speed.png", "report.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert all(p.is_file() for p in collected.values())
    report = (out / "report.md").read_text()
    for needle in ("figure3_quality.png", "figure9_speed.png", "How to read", "Tuning choices", COMPOSITE_LABEL,
                   "non-finite result"):
        assert needle in report, needle


def test_collect_tables_content(sweep, collected):
    out = sweep / "report"
    rows = pd.read_csv(out / "rows.csv")
    assert len(rows) == 3 * 2 * 3 * 3 + 3 * 5 * 3  # tune: 3 levels x 2 lr x 3 methods x 3 images; eval: 3 x 5 x 3
    traces = pd.read_csv(out / "traces.csv")
    assert len(traces) == len(rows) * 5  # one row per (cell, image, step)
    first = traces[(traces["step"] == 0)].iloc[0]
    assert first["seconds_elapsed"] == pytest.approx(2.0 / 5) and first["nfe_elapsed"] == pytest.approx(1.0)
    summ = pd.read_csv(out / "summary.csv")
    sg = summ[(summ["stage"] == "eval") & (summ["task"] == "inpaint") & (summ["level"] == 0.5)
              & (summ["method"] == "sgilo")].iloc[0]
    assert (sg["n_ok"], sg["n_failed"]) == (2, 1)
    assert sg["mse_mean"] == pytest.approx((0.02 + 0.03) / 2)  # failed third image not averaged
    comp = pd.read_csv(out / "ilo_composite_test_selected.csv")
    assert dict(zip(comp["level"], comp["winner"])) == {0.5: "ilo/tuned", 0.05: "ilo/ilo_paper", 0.0: "ilo/tuned"}
    comp = pd.read_csv(out / "ilo_composite.csv")  # selected on the tuning images: no ILO-paper tuning rows here
    assert set(comp["winner"]) <= {"ilo/tuned", "ilo_unreg/tuned"} and comp["note"].str.contains("of 3 variants present").all()
    assert (summ["method"] == COMPOSITE_LABEL).sum() == 3 and (summ["method"] == COMPOSITE_TEST_LABEL).sum() == 3
    tune = pd.read_csv(out / "tuning_choices.csv")
    assert len(tune) == 3 * 3 and set(tune["variant"]) == {"lr0.3"}
    fails = pd.read_csv(out / "failures.csv")
    assert fails.iloc[0]["n_cells"] == 1 and fails.iloc[0]["n_rows"] == 1


def test_only_tune_rows_says_eval_pending(tmp_path):
    store = ResultStore(tmp_path)
    for v, base in (("a", 0.1), ("b", 0.2)):
        write(store, make_result(make_cell("tune", "denoise", 0.5, "ilo", v, {"v": v}), [base] * 3, lpips=None))
    paths = collect(tmp_path, tmp_path / "out", n_boot=N_BOOT)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Eval stage pending" in report
    assert pd.read_csv(paths["tuning_choices_csv"]).iloc[0]["variant"] == "a"
    assert not any(k.startswith("figure") for k in paths)


def test_cli_empty_folder_exits_2(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no finished cells" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_lpips_unavailable_and_all_failed_method(tmp_path):
    """No LPIPS anywhere: LPIPS panel omitted with a note; a method whose images all failed is counted."""
    store = ResultStore(tmp_path)
    write(store, make_result(make_cell("eval", "denoise", 0.5, "csgm", "tuned"), [0.1, 0.2, 0.3], lpips=None))
    write(store, make_result(make_cell("eval", "denoise", 0.5, "sgilo", "tuned"), [0.1] * 3, lpips=None,
                             failed=(0, 1, 2)))
    paths = collect(tmp_path, n_boot=N_BOOT)
    assert paths["figure3_png"].is_file()
    report = paths["report_md"].read_text()
    assert "LPIPS panels omitted" in report and "| unavailable |" in report
    summ = pd.read_csv(paths["summary_csv"])
    sg = summ[summ["method"] == "sgilo"].iloc[0]
    assert (sg["n_ok"], sg["n_failed"]) == (0, 3) and math.isnan(sg["mse_mean"])


def test_select_best_group_without_success():
    """Left out by default (the sweep's planner json.loads every params), kept for the report."""
    df = _tune_rows({"a": ([0.1] * 3, None, (0, 1, 2)), "b": ([0.1] * 3, None, (0, 1, 2))})
    assert select_best(df).empty
    kept = select_best(df, include_unsuccessful=True).iloc[0]
    assert kept["variant"] is None and kept["n_failed"] == 6 and "no candidate" in kept["note"]
    for _, r in select_best(_tune_rows({"a": ([0.1] * 3, None, ())})).iterrows():
        assert json.loads(r["params"]) == {"lr": "a"}  # what bench.sweep.plan_eval does with it


def test_bootstrap_ci_depends_only_on_the_values_not_their_order():
    """The same rows read in another order (another --out names the cells differently) give the same CI."""
    x = np.random.default_rng(3).normal(size=30)
    perm = np.random.default_rng(4).permutation(30)
    assert bootstrap_ci(x) == bootstrap_ci(x[perm]) == bootstrap_ci(list(reversed(x.tolist())))


def test_paired_differences_average_seeds_per_image_and_ignore_row_order():
    from bench.report.stats import paired_table, seed_spread

    rows = []
    for seed in (0, 1, 2):
        for m, off in (("ilo", 0.0), ("sgilo", -0.01), ("sgilo_t0", -0.005)):
            vals = [0.1 + 0.02 * i + off + 0.001 * seed for i in range(6)]
            rows += make_result(make_cell("eval", "inpaint", 0.05, m, "tuned", n_images=6, seed=seed), vals).rows
    df = rows_frame(rows)
    t = paired_table(df, n_boot=500)
    vs_ilo = t[(t["reference"] == "ilo") & (t["method"] == "sgilo")].iloc[0]
    assert vs_ilo["n"] == 6 and vs_ilo["seeds"] == 3 and vs_ilo["mean_diff"] == pytest.approx(-0.01)
    vs_t0 = t[(t["reference"] == "sgilo_t0") & (t["method"] == "sgilo")].iloc[0]
    assert vs_t0["mean_diff"] == pytest.approx(-0.005) and vs_t0["win_rate"] == 1.0
    shuffled = paired_table(df.sample(frac=1.0, random_state=3), n_boot=500)
    pd.testing.assert_frame_equal(t.reset_index(drop=True), shuffled.reset_index(drop=True))
    spread = seed_spread(df)
    row = spread[spread["method"] == "ilo"].iloc[0]
    assert row["seeds"] == 3 and row["sd_across_seeds"] == pytest.approx(0.001)


def test_paired_differences_match_hand_computed_values():
    from bench.report.stats import paired_differences

    rows = []
    for i in range(20):
        base = {"stage": "eval", "task": "inpaint", "level": 0.1, "image_set": "test", "image_id": f"im{i}",
                "status": "ok", "prior": "tiny", "noise_sigma": 0.0}
        ilo = 0.1 + 0.01 * i  # images differ a lot; the paired difference does not
        rows += [base | {"method": "ilo", "variant": "tuned", "mse": ilo},
                 base | {"method": "sgilo", "variant": "tuned", "mse": ilo - 0.002 + (0.001 if i % 4 == 0 else 0)},
                 base | {"method": "ilo", "variant": "ilo_paper", "mse": ilo + 1}]  # not a "tuned" variant: left out
    out = paired_differences(pd.DataFrame(rows))
    assert list(out["method"]) == ["sgilo"]
    r = out.iloc[0]
    assert r["n"] == 20 and r["mean_diff"] == pytest.approx(-0.002 + 0.001 * 5 / 20)
    assert r["ci_low"] < r["mean_diff"] < r["ci_high"] < 0  # paired: far tighter than the spread of the images
    assert r["win_rate"] == 1.0


def test_the_report_warns_when_cells_used_different_weight_files():
    from bench.report.collect import weight_lines

    a, b = {"score_layer1.pt": "1:a", "gen": "g"}, {"score_layer1.pt": "1:b", "gen": "g"}
    assert weight_lines([{"weights": a}, {"weights": dict(a)}, {}]) == []  # one set (old records: not counted)
    (line,) = weight_lines([{"weights": a}, {"weights": a}, {"weights": b}])
    assert "2 different sets of weight files" in line and "(cells per set: 2, 1)" in line
