"""The perf machinery measures what it says: marginal step times, NFE bookkeeping, the report."""
from __future__ import annotations

import json

import pytest
import torch

import methods
from bench.experiments.perf import report, sections
from bench.experiments.perf.timing import interleaved_marginals, judge, ratio_ci
from bench.experiments.perf.workloads import bare_step, problem, round_params
from bench.priors.catalog import load_prior


def _fake(costs: dict[str, tuple[float, float]], drift=None):
    """Runners on a fake clock: run ``name`` with n steps costs setup + per_step * n, times a slow-machine factor
    ``drift(call index)`` when given."""
    now, calls, order = [0.0], [0], []

    def runner(name):
        def run(n: int) -> None:
            setup, per = costs[name]
            factor = drift(calls[0]) if drift else 1.0
            calls[0] += 1
            order.append(name)
            now[0] += (setup + per * n) * factor
        return run

    return {k: runner(k) for k in costs}, (lambda: now[0]), order


def test_interleaved_marginals_remove_setup_cost_and_keep_every_repeat():
    """The timing logic on a fake clock (no wall-clock assertion: machines are shared and noisy): set-up
    cancels, every repeat is kept, and the order reverses every repeat (ABBA)."""
    runners, clock, order = _fake({"bare": (0.03, 0.004), "ilo": (0.05, 0.0046)})
    reps = interleaved_marginals(runners, 2, 32, 4, torch.device("cpu"), clock=clock)
    assert reps["bare"] == pytest.approx([0.004] * 4, abs=1e-12) and reps["ilo"] == pytest.approx([0.0046] * 4)
    assert order[2:] == ["bare"] * 2 + ["ilo"] * 4 + ["bare"] * 4 + ["ilo"] * 4 + ["bare"] * 2  # after warm-up
    with pytest.raises(ValueError, match="30"):
        interleaved_marginals(runners, 5, 20, 2, torch.device("cpu"), clock=clock)


def test_ratio_ci_is_paired_and_failed_measurements_are_not_clipped():
    """A machine slowing down between repeats moves both runners alike: the paired ratio stays exact; a
    negative marginal is reported as a failed measurement, never as zero."""
    # calls 0-1 warm up; repeat k is calls 2 + 4k .. 5 + 4k: the machine is 1.5x slower from repeat 3 on
    runners, clock, _ = _fake({"bare": (0.0, 0.004), "ilo": (0.0, 0.0044)}, drift=lambda c: 1.5 if c >= 14 else 1.0)
    reps = interleaved_marginals(runners, 2, 32, 6, torch.device("cpu"), clock=clock)
    r = ratio_ci(reps["ilo"], reps["bare"])
    assert r["ratio"] == pytest.approx(1.1) and r["ci"][0] <= 1.1 <= r["ci"][1]
    assert judge(r, 1.2) == "met" and judge(r, 1.05) == "NOT met"
    assert judge({"ratio": 1.1, "ci": [1.0, 1.3]}, 1.2) == "undecided (CI spans the limit)"
    bad = ratio_ci([-0.001, -0.002, 0.001], [0.004, 0.004, 0.004])
    assert bad["ratio"] is None and "non-positive" in bad["failed"] and judge(bad, 1.1).startswith("not measured")


def test_round_params_shape_the_measured_round():
    ilo = methods.get("ilo").default_params()
    assert round_params(ilo, "ilo", 2, 9).steps == (1, 1, 9)
    assert round_params(methods.get("csgm").default_params(), "csgm", 0, 7).steps == 7


@pytest.mark.parametrize("method", ["csgm", "ilo", "sgilo"])
def test_nfe_bookkeeping_matches_the_solver(method, one_thread):
    """The per-step NFE curve used for 'NFE to reach an MSE' ends at the solver's own counts."""
    prior = load_prior("embedded")
    x = torch.zeros(2, *prior.image_shape)
    prob = problem(prior, x)
    m = methods.get(method)
    p = m.default_params()
    p = p.replace(steps=4) if method == "csgm" else p.replace(steps=(3, 2, 2))
    res = m.solve(prob, prior, p)
    nfe_g, nfe_s, cost = sections._per_step_counts(method, p, [], batch=2)
    assert len(nfe_g) == len(res[0].trace) == len(cost)
    assert (nfe_g[-1], nfe_s[-1]) == (res[0].nfe_generator, res[0].nfe_score)
    if method == "sgilo":
        assert nfe_s[-1] > 0


def test_bare_step_gives_gradients_to_the_optimised_variables(one_thread):
    prior = load_prior("embedded")
    prob = problem(prior, torch.zeros(2, *prior.image_shape))
    step = bare_step(prior, prob, layer=1)
    step()
    cells = step.__closure__
    tensors = [c.cell_contents for c in cells if isinstance(c.cell_contents, torch.Tensor)]
    assert any(t.requires_grad and t.grad is not None and t.grad.abs().sum() > 0 for t in tensors)


def test_report_judges_goals_on_the_confidence_intervals(tmp_path):
    ok, spans = {"ratio": 1.04, "ci": [1.0, 1.08], "failed": ""}, {"ratio": 1.06, "ci": [0.98, 1.15], "failed": ""}
    failed = {"ratio": None, "ci": None, "failed": "non-positive marginal time"}
    run = {"machine": {"device": "cpu", "cpu": "test cpu", "torch": "x", "torch_threads": 2, "cpu_count": 2},
           "steps": [{"scale": "embedded", "batch": 1, "round": 1, "bare_seconds": 0.01, "ilo": 0.0104, "csgm": 0.01,
                      "sgilo": 0.012, "ratios": {"ilo": ok, "csgm": failed, "sgilo/ilo": ok}},
                     {"scale": "embedded", "batch": 8, "round": 1, "bare_seconds": 0.02, "ilo": 0.0212,
                      "sgilo": 0.03, "ratios": {"ilo": spans, "sgilo/ilo": ok}}]}
    (tmp_path / "perf_cpu.json").write_text(json.dumps(run))
    text = report.write(tmp_path).read_text()
    assert "ilo step / bare generator forward+backward: worst 1.06x (0.98-1.15) (B=8, round 1); goal <= 1.10x on the " \
           "95% CI: undecided" in text
    assert "csgm step / bare generator forward+backward: every measurement failed; 1 failed measurement(s)" in text
    assert "SGILO step / ILO step in rounds with a score model: worst 1.04x (1.00-1.08)" in text and \
           "(2/2 settings met)" in text
    assert "failed: non-positive marginal time" in text  # in the table, not a zero


def test_report_states_goals_from_the_figures(tmp_path):
    run = {"machine": {"device": "cpu", "cpu": "test cpu", "torch": "x", "torch_threads": 2, "cpu_count": 2},
           "steps": [{"scale": "embedded", "batch": b, "round": 1, "bare_seconds": 0.01 * b ** 0.5,
                      "ilo": 0.0105 * b ** 0.5, "sgilo": 0.02 * b ** 0.5} for b in (1, 8)],
           "sweep": {"command": "c", "returncode": 0, "wall_seconds": 480.0, "peak_rss_mb": 533.0}}
    (tmp_path / "perf_cpu.json").write_text(json.dumps(run))
    text = report.write(tmp_path).read_text()
    assert "ilo step / bare generator forward+backward: worst 1.05x" in text and "goal <= 1.10x: met" in text
    assert "SGILO step / ILO step in rounds with a score model: worst 1.90x" in text and "1.50x: NOT met" in text
    assert "ilo batch-8 / batch-1 throughput: 2.83x" in text
    assert "default sweep: 8.0 min, peak RSS 533 MB" in text


def test_report_states_the_gpu_goals_and_what_no_run_measured(tmp_path):
    """The issue's GPU goals stand at the top of the report: "not measured" with no GPU run; judged on the CIs
    (SGILO/ILO at B = 1 under 1.2x; the optimised 1024 path at B = 8 at least 2x the plain one) when there is."""
    cpu = {"machine": {"device": "cpu", "cpu": "test cpu", "torch": "x", "torch_threads": 2, "cpu_count": 2},
           "steps": [{"scale": "embedded", "batch": 1, "round": 1, "bare_seconds": 0.01, "ilo": 0.011,
                      "sgilo": 0.013}]}
    (tmp_path / "perf_cpu.json").write_text(json.dumps(cpu))
    text = report.write(tmp_path).read_text()
    assert "- embedded, B = 1: SGILO step / ILO step <= 1.2x: not measured" in text
    assert "- 1024, B = 8: image-steps/s of the optimised settings / plain >= 2x (reconstructions within " \
           "tolerance): not measured" in text
    assert "fraction of the memory-bandwidth limit >= 70%: not measured" in text
    gpu = {"machine": {"device": "cuda", "cpu": "c", "gpu": "test gpu", "torch": "x", "torch_threads": 2,
                       "cpu_count": 2},
           "steps": [{"scale": "ffhq-arch", "batch": 1, "round": 2, "bare_seconds": 0.02, "ilo": 0.021,
                      "sgilo": 0.024, "ratios": {"sgilo/ilo": {"ratio": 1.14, "ci": [1.1, 1.18], "failed": ""}}},
                     {"scale": "ffhq-arch", "batch": 8, "round": 2, "bare_seconds": 0.1, "ilo": 0.11,
                      "sgilo": 0.12, "ratios": {"sgilo/ilo": {"ratio": 1.09, "ci": [1.05, 1.3], "failed": ""}}}],
           "acceleration": [{"scale": "ffhq-arch", "batch": 8, "method": "ilo", "round": 2, "setting": "bf16,compile",
                             "step_seconds": 0.05, "speedup": {"ratio": 2.2, "ci": [1.9, 2.4], "failed": ""},
                             "recon_mean_abs_diff": 3e-3, "reference_mse": 0.01}]}
    (tmp_path / "perf_gpu.json").write_text(json.dumps(gpu))
    text = report.write(tmp_path).read_text()
    assert "- ffhq-arch, B = 1: SGILO step / ILO step <= 1.2x: gpu: plain: worst 1.14x (1.10-1.18) (B=1, round 2)" \
           in text and "(1/1 settings met)" in text  # the B = 8 row is not judged by the B = 1 goal
    assert "best 2.20x (1.90-2.40) (bf16,compile, gpu, reconstruction difference 3.0e-03): undecided" in text


def test_glibc_malloc_tuning_is_applied_and_can_be_turned_off(monkeypatch):
    import sys

    from bench.core.malloc import tune_glibc_malloc

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc tuning is Linux-only")
    assert tune_glibc_malloc() is True
    monkeypatch.setenv("BENCH_MALLOC_TUNING", "0")
    assert tune_glibc_malloc() is False
    monkeypatch.delenv("BENCH_MALLOC_TUNING")
    monkeypatch.setenv("MALLOC_TOP_PAD_", "1")
    assert tune_glibc_malloc() is False  # the user's own MALLOC_* settings win


def test_roofline_counts_match_the_architecture():
    """~150 GFLOP per 1024 forward (the transposed convs counted per input pixel); the embedded counts from the
    same formula; fractions are achieved / peak."""
    from bench.experiments.perf.roofline import BACKWARD_FACTOR, limit_fractions, step_counts
    from bench.priors.ffhq import FFHQ_CONFIG
    from bench.priors.stylegan2 import Generator

    with torch.device("meta"):
        g = Generator(**FFHQ_CONFIG)
    c = step_counts(g, 0)
    assert 140e9 < c["flops"] / BACKWARD_FACTOR < 160e9 and step_counts(g, 2)["flops"] < c["flops"]
    tiny = load_prior("tiny").generator
    k = tiny.last_layer
    ch, h, w = tiny.layer_shape(k)
    cin = tiny.layer_shape(k - 1)[0]
    fwd = 2 * cin * ch * 9 * (h // 2) * (w // 2) + 2 * ch * ch * 9 * h * w + 2 * ch * tiny.img_channels * h * w
    assert step_counts(tiny, k)["flops"] == BACKWARD_FACTOR * fwd
    f = limit_fractions({"flops": 1e9, "bytes": 1e8}, 100.0, {"flops_per_s": 1e12, "bytes_per_s": 1e11})
    assert f["flops_fraction"] == pytest.approx(0.1) and f["bytes_fraction"] == pytest.approx(0.1)
    assert limit_fractions({"flops": 1, "bytes": 1}, 1.0, {"flops_per_s": None})["flops_fraction"] is None


def test_median_and_range_of_any_values():
    assert sections.median_and_range([3, 1, 2]) == (2.0, [1, 3])
    assert sections.median_and_range([4, 1, 3, 2]) == (2.5, [1, 4])


def test_default_sweeps_clear_the_folder_and_report_median_and_range(tmp_path, monkeypatch):
    """Each timed run starts from an empty folder (a kept one would resume and finish at once); the
    report gives the median and the range, and judges the goal on the median."""
    from bench.experiments.perf import sections

    out = tmp_path / "sweep"
    fake_runs = [{"command": "c", "returncode": 0, "wall_seconds": w, "peak_rss_mb": 500.0}
                 for w in (400.0, 520.0, 450.0)]  # what the fake runner reports: no clock is read
    runs = iter(fake_runs)
    seen_empty = []

    def fake_sweep(folder, log=print):
        seen_empty.append(not (tmp_path / "sweep").exists())
        (tmp_path / "sweep").mkdir()
        (tmp_path / "sweep" / "results.jsonl").write_text("{}\n")
        return next(runs)

    monkeypatch.setattr(sections, "default_sweep", fake_sweep)
    res = sections.default_sweeps(str(out), 3, log=lambda *_: None)
    assert seen_empty == [True, True, True]
    assert res == sections.summarise_sweeps(fake_runs) and res["runs"] == fake_runs  # every run kept
    run = {"machine": {"device": "cpu", "cpu": "t", "torch": "x", "torch_threads": 2, "cpu_count": 2}, "steps": [],
           "sweep": res}
    (tmp_path / "perf_cpu.json").write_text(json.dumps(run))
    text = report.write(tmp_path).read_text()
    assert "default sweep: 7.5 min (median of 3 runs, 6.7-8.7)" in text and "8 min (median) and <= 3 GiB: met" in text
    res["wall_seconds"] = 500.0
    (tmp_path / "perf_cpu.json").write_text(json.dumps(run))
    assert "3 GiB: NOT met" in report.write(tmp_path).read_text()


def test_sgilo_speed_settings_are_timed_beside_the_plain_methods_and_judged(tmp_path, one_thread):
    """--sgilo-settings adds SGILO under each speed setting to the same interleaving (rounds with a score model
    only) and the report judges a SGILO / ILO goal line per setting; keys and verdicts only, no time asserted."""
    plan = sections.StepPlan((1,), (0, 1), 1, 2, 1)
    rows = sections.step_times("embedded", torch.device("cpu"), plan, sgilo_settings=("score-bf16",),
                               log=lambda *_: None)
    assert sections.SGILO_SCORE_BF16 not in rows[0] and sections.SGILO_SCORE_BF16 in rows[1]
    assert "sgilo[score-bf16]/ilo" in rows[1]["ratios"] and "sgilo/ilo" in rows[1]["ratios"]
    fake_ci = {"ratio": 1.3, "ci": [1.2, 1.4], "failed": ""}  # made-up figures for the report, not measured
    for r in rows:
        r["ratios"] = {k: fake_ci for k in r["ratios"]}
    run = {"machine": {"device": "cpu", "cpu": "test cpu", "torch": "x", "torch_threads": 1, "cpu_count": 2},
           "steps": rows}
    (tmp_path / "perf_cpu.json").write_text(json.dumps(run))
    text = report.write(tmp_path).read_text()
    assert "with the score-bf16 setting (off by default; bench/priors/acceleration.py): worst 1.30x (1.20-1.40)" in text
    assert "sgilo[score-bf16] ms" in text


def test_score_flops_match_torch_flop_counter():
    """The hand count of a score ViT forward agrees with torch's FLOP counter (which also sees the time MLP, run
    once per batch, so a batch of 8 keeps that under 1%; the math attention kernel, because the counter does not
    see the fused CPU one); the floor is 1 + 2 score forwards / generator step."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from bench.experiments.perf.roofline import score_forward_flops, sgilo_flop_floor
    from bench.priors.score_vit import ScoreViT, ScoreViTConfig

    for cond in ("adaln", "official"):
        cfg = ScoreViTConfig(channels=8, height=8, width=8, dim=64, depth=2, heads=2, dim_head=16,
                             time_conditioning=cond)
        net = ScoreViT(cfg)
        with torch.no_grad(), FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            net(torch.randn(8, *cfg.shape), torch.full((8,), 0.3))
        assert counter.get_total_flops() / 8 == pytest.approx(score_forward_flops(cfg), rel=0.01)
    assert sgilo_flop_floor(100.0, 10.0) == pytest.approx(1.2) and sgilo_flop_floor(100.0, 10.0, 4) == pytest.approx(1.4)


def test_sgilo_settings_flag_parses_and_rejects_unknown_settings():
    """--score-bf16 is shorthand for --sgilo-settings score-bf16; an unknown setting stops the run before any
    timing, naming the valid ones."""
    from bench.experiments.perf.cli import _sgilo_settings, parse

    assert _sgilo_settings(parse(["--score-bf16", "--sgilo-settings", "score-graphs;score-bf16,score-graphs"])) == (
        "score-bf16", "score-graphs", "score-bf16,score-graphs")
    with pytest.raises(ValueError, match="valid: .*score-graphs"):
        _sgilo_settings(parse(["--sgilo-settings", "turbo"]))
