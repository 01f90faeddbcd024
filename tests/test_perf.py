"""The perf machinery measures what it says: marginal step times, NFE bookkeeping, the report."""
from __future__ import annotations

import json

import pytest
import torch

import methods
from bench.experiments.perf import report, sections
from bench.experiments.perf.timing import marginal_step_seconds
from bench.experiments.perf.workloads import bare_step, problem, round_params
from bench.priors.catalog import load_prior


def test_marginal_step_time_removes_setup_cost(monkeypatch):
    """The timing logic on a fake clock (no wall-clock assertion: machines are shared and noisy):
    a run costs 30 ms of set-up plus 4 ms per step, so the marginal step time is exactly 4 ms."""
    import types

    from bench.experiments.perf import timing

    now = [0.0]
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def run(n: int) -> None:
        now[0] += 0.03 + 0.004 * n

    res = marginal_step_seconds(run, 2, 12, torch.device("cpu"), repeats=3)
    assert res["step_seconds"] == pytest.approx(0.004, abs=1e-12)
    assert res["short_seconds"] == pytest.approx(0.038) and res["long_seconds"] == pytest.approx(0.078)
    with pytest.raises(ValueError):
        marginal_step_seconds(run, 5, 5, torch.device("cpu"))


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


def test_report_states_goals_from_the_figures(tmp_path):
    run = {"machine": {"device": "cpu", "cpu": "test cpu", "torch": "x", "torch_threads": 2, "cpu_count": 2},
           "steps": [{"scale": "embedded", "batch": b, "round": 1, "bare_seconds": 0.01 * b ** 0.5,
                      "ilo": 0.0105 * b ** 0.5, "sgilo": 0.02 * b ** 0.5} for b in (1, 8)],
           "sweep": {"command": "c", "returncode": 0, "wall_seconds": 480.0, "peak_rss_mb": 533.0}}
    (tmp_path / "perf_cpu.json").write_text(json.dumps(run))
    text = report.write(tmp_path).read_text()
    assert "ilo step / bare generator forward+backward: worst 1.05x" in text and "goal <= 1.10x: met" in text
    assert "SGILO step / ILO step in rounds with a score model: worst 1.90x" in text and "1.5x: NOT met" in text
    assert "ilo batch-8 / batch-1 throughput: 2.83x" in text
    assert "default sweep: 8.0 min, peak RSS 533 MB" in text


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
