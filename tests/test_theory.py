"""Random ReLU generators (SGILO Thm 3.1 setting), the langevin method and the theory experiment."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

import methods
import tasks
from bench.experiments.theory import cli
from bench.experiments.theory import verdict as vd
from bench.experiments.theory.config import Setting
from bench.experiments.theory.dynamics import (
    checkpoints,
    distances,
    exact_w2,
    initial,
    make_instances,
    mala,
    random_directions,
    simulate,
    sliced_w2,
    w2_trajectory,
)
from bench.experiments.theory.stats import median_ci, slope_ci, theorem_exponent
from bench.harness.runner import Cell, run_cell
from bench.priors import relu_net as rn
from bench.priors.catalog import get_spec, load_images, load_prior
from methods import langevin
from methods._core import Problem


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny models are dominated by threading overhead (see conftest.one_thread)."""


# ----------------------------------------------------------------------------- generator
@pytest.mark.parametrize("weight_var", [2.0, 1.0])
def test_weight_statistics_match_the_configured_variance(weight_var):
    widths = (10, 47, 400)
    ws = rn.sample_weights(widths, seed=3, weight_var=weight_var)
    assert [tuple(w.shape) for w in ws] == [(47, 10), (400, 47)]
    for w in ws:
        n = w.numel()
        target = weight_var / w.shape[0]  # N(0, weight_var / n_i), n_i = output width
        assert abs(w.mean().item()) < 4 * math.sqrt(target / n)
        assert w.var().item() == pytest.approx(target, rel=4 * math.sqrt(2 / n))


def test_weights_are_seeded():
    a, b, c = (rn.sample_weights((5, 17, 100), s) for s in (7, 7, 8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not any(torch.equal(x, y) for x, y in zip(a, c))


def test_variance_two_over_n_preserves_norms():
    """The appendix's scaling: E||G(z)||^2 = ||z||^2 (and the literal 'relu(2Wz)' would not)."""
    ws = rn.sample_weights(rn.layer_widths(10, 2), seed=0)
    z = torch.randn(500, 10, generator=torch.Generator().manual_seed(0))
    ratio = (rn.generate(ws, z).pow(2).sum(1) / z.pow(2).sum(1)).mean().item()
    assert ratio == pytest.approx(1.0, abs=0.15)


def test_widths_rule_and_expansivity_check():
    assert rn.layer_widths(10, 2) == (10, 47, 400)  # 2*10*ln10 -> 47; 2*47*ln47 = 362 -> 20^2
    assert rn.layer_widths(10, 2, square_output=False) == (10, 47, 362)
    ok = rn.expansivity(rn.layer_widths(10, 2), c=2.0)
    assert ok.ok and all(r >= 2.0 for r in ok.log_ratios) and "(>= 2)" in ok.describe()
    bad = rn.expansivity((10, 20, 40), c=2.0)  # only 2x per layer: below c n log n
    assert not bad.ok and bad.log_ratios[0] == pytest.approx(20 / (10 * math.log(10)))
    for k in (3, 5, 20):
        assert rn.expansivity(rn.layer_widths(k, 3, 1.5), c=1.5).ok


def test_generator_is_positively_homogeneous_and_batched():
    inst = make_instances(Setting(5), 3, tag="unit")
    z = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1))
    gz = rn.generate(inst.weights, z)
    for a in (0.3, 2.5):
        torch.testing.assert_close(rn.generate(inst.weights, a * z), a * gz, rtol=1e-5, atol=1e-6)
    single = rn.generate([w[1] for w in inst.weights], z[1])  # batched == instance alone
    torch.testing.assert_close(gz[1], single, rtol=1e-5, atol=1e-6)


def test_gradient_matches_autograd_and_finite_differences():
    inst = make_instances(Setting(4), 2, tag="unit")
    w64 = [w.double() for w in inst.weights]
    A, y = inst.A.double(), inst.y.double()
    z = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    f, g = rn.loss_and_grad(w64, A, y, z.detach())
    f_auto = (rn.generate(w64, z) @ A.transpose(-1, -2) - y).pow(2).sum(-1)
    (g_auto,) = torch.autograd.grad(f_auto.sum(), z)
    torch.testing.assert_close(f, f_auto.detach())
    torch.testing.assert_close(g, g_auto)
    h, e = 1e-6, torch.zeros_like(z)
    e[0, 1, 2] = 1.0
    fp, _ = rn.loss_and_grad(w64, A, y, z.detach() + h * e)
    fm, _ = rn.loss_and_grad(w64, A, y, z.detach() - h * e)
    assert ((fp - fm)[0, 1] / (2 * h)).item() == pytest.approx(g[0, 1, 2].item(), rel=1e-5, abs=1e-8)


def test_exact_inversion_of_in_range_signals():
    ws = rn.sample_weights(rn.layer_widths(6, 2), seed=4)
    z = torch.randn(3, 6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(rn.invert(ws, rn.generate(ws, z)), z, rtol=1e-4, atol=1e-4)


def test_saddle_constants():
    assert rn.expected_saddle_rho(1) == pytest.approx(0.0, abs=1e-12)  # g(pi) = pi/2
    assert rn.expected_saddle_rho(2) == pytest.approx(1 / math.pi)  # g(pi/2) = arccos(1/pi)
    inst = make_instances(Setting(5), 4, tag="unit")
    u = inst.z_star
    f_at = lambda r: rn.loss_and_grad(inst.weights, inst.A, inst.y, -r.unsqueeze(-1) * u)[0]
    f0 = f_at(inst.rho)
    for d in (-0.05, 0.05):  # rho minimises f on the ray -z*
        assert (f_at(inst.rho + d) >= f0 - 1e-6).all()


def test_langevin_step_is_the_theorems_update():
    z, g, u = torch.ones(3), torch.full((3,), 2.0), torch.full((3,), -1.0)
    torch.testing.assert_close(rn.langevin_step(z, g, 0.1, None, None), z - 0.2)
    torch.testing.assert_close(rn.langevin_step(z, g, 0.1, math.inf, u), z - 0.2)
    torch.testing.assert_close(rn.langevin_step(z, g, 0.1, 50.0, u), z - 0.2 - math.sqrt(0.2 / 50.0))
    assert rn.effective_beta(50.0, 10, per_dim=True) == 500.0 and rn.effective_beta(None, 10, True) is None


def test_sliced_wasserstein():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=gen)
    dirs = random_directions(6, 256, gen)
    assert sliced_w2(x, x, dirs).item() == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([0.6, 0, 0, 0, 0, 0])
    # a shift v moves every projection by <v, theta>: SW^2 = E<v, theta>^2 = ||v||^2 / k
    assert sliced_w2(x + shift, x, dirs).item() == pytest.approx(0.6 / math.sqrt(6), rel=0.15)


# ----------------------------------------------------------------------------- the saddle
def test_langevin_escapes_the_saddle_where_gradient_descent_stays():
    """Instance 29 of (k=5, c=4, tag 'test'): GD started at -rho z* (+0.02 jitter) never leaves
    B(-rho z*, 0.25) in 600 steps; Langevin (beta = 50 k) from the same starts reaches B(z*, 0.25)."""
    inst = make_instances(Setting(5, expansion=4.0), 1, tag="test", first=29)
    z0 = initial(inst, "neg_star", 16, 0.02, torch.Generator().manual_seed(0))
    max_neg = {}
    for name, beta in (("GD", None), ("Langevin", 250.0)):
        far = torch.zeros(1, 16)

        def observe(t: int, z: torch.Tensor) -> None:
            torch.maximum(far, distances(inst, z)["neg"], out=far)

        z = simulate(inst, z0, 600, 0.05, beta, torch.Generator().manual_seed(1), observe)
        max_neg[name] = far
        max_neg[name + "_star"] = (distances(inst, z)["star"] < 0.25).float().mean().item()
    assert (max_neg["GD"] < 0.25).all(), max_neg["GD"]  # GD stays near -rho z* for all 600 steps
    assert max_neg["GD_star"] == 0.0
    assert max_neg["Langevin_star"] >= 0.75, max_neg["Langevin_star"]  # Langevin escapes in most chains


# ----------------------------------------------------------------------------- harness plumbing
def test_catalog_factory_builds_relu_priors_with_in_range_images():
    prior = load_prior("relu-k10-d2-s3")
    assert prior.latent_dim == 10 and prior.image_shape == (1, 20, 20) and prior.widths == (10, 47, 400)
    x, ids = load_images("relu-k10-d2-s3", "tune")
    assert x.shape == (8, 1, 20, 20) and len(set(ids)) == 8
    z = prior.invert(x)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(8), rtol=1e-4, atol=1e-4)  # ||z*|| = 1
    torch.testing.assert_close(prior.generate(z), x, rtol=1e-4, atol=1e-5)
    assert get_spec("relu-k5-d3-s0-c1.5").n_layers == 3
    with pytest.raises(KeyError, match="relu-k<latent dim>"):
        get_spec("relu-kten")
    with pytest.raises(KeyError, match="valid priors"):
        get_spec("nonsense")


def _problem(prior, batch: int, seeds=None):
    x, _ = load_images(prior.name, "test")
    x = x[:batch]
    op = tasks.get("cs").build(0.5, prior.image_shape, seed=1)
    return Problem(op.measure(x), op, seeds or list(range(10, 10 + batch)), reference=x), x


def test_langevin_method_batch_equals_single_and_gd_recovers():
    prior = load_prior("relu-k5-d2-s1")
    m = methods.get("langevin")
    problem, x = _problem(prior, 3)
    p = m.Params(steps=60, eta=0.05, beta=50.0)
    batch = m.solve(problem, prior, p, num_samples=2)
    for i in range(3):
        alone = Problem(problem.y[i:i + 1], problem.operator, [problem.seeds[i]], reference=x[i:i + 1])
        one = m.solve(alone, prior, p, num_samples=2)[0]
        torch.testing.assert_close(batch[i].reconstruction, one.reconstruction, rtol=1e-5, atol=1e-6)
        assert batch[i].samples.shape == (2, 1, 10, 10) and len(batch[i].trace) == 61
    assert m.params_from_dict(p.to_dict()) == p
    gd = m.solve(problem, prior, m.Params(steps=300, eta=0.05, beta=None))
    assert min(r.measurement_loss for r in gd) < 1e-4  # GD reaches the signal on some images
    z0 = langevin._init(m.Params(init="neg_star", scale=0.0), problem, prior, problem.y, torch.zeros(3, 5), 1)
    z_star = prior.invert(x)  # the oracle init sits on the ray -z*, at the exact ray minimiser
    cos = torch.nn.functional.cosine_similarity(z0, -z_star, dim=1)
    assert ((cos > 0.9999) | (z0.norm(dim=1) == 0)).all()
    rho = z0.norm(dim=1) / z_star.norm(dim=1)
    for r in (0.9, 1.1):
        f = (problem.operator.forward(prior.generate(r * z0)) - problem.y).pow(2).sum(1)
        f0 = (problem.operator.forward(prior.generate(z0)) - problem.y).pow(2).sum(1)
        assert (f >= f0 - 1e-6).all() and (rho >= 0).all()


def test_run_cell_with_relu_prior_cs_task_and_langevin():
    cell = Cell("theory", "tune", "relu-k5-d2-s0", "cs", 0.5, "langevin", {"steps": 100, "eta": 0.05, "beta": 50.0},
                "tune", (0, 1), seed=0)
    res = run_cell(cell, device="cpu")
    assert res.status == "ok", res.reason
    assert all(math.isfinite(r["mse"]) for r in res.rows) and len(res.traces[0]["loss"]) == 101
    wrong = run_cell(Cell("theory", "tune", "tiny", "cs", 0.5, "langevin", {"steps": 2}, "tune", (0,)), device="cpu")
    assert wrong.status == "failed" and "latent_dim" in wrong.reason


def test_quick_cli_writes_plots_json_and_report(tmp_path):
    assert cli.main(["--quick", "--out", str(tmp_path)]) == 0
    for name in ("escape.png", "teps.png", "theory.json", "report.md"):
        assert (tmp_path / name).stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "## Verdicts" in report and "checks that can fail" in report and "SANITY, not counted" in report
    assert "nan" not in report.lower().replace("n/a", "")
    # the report is a function of theory.json alone: re-rendering gives the same text
    assert cli.main(["--from-json", str(tmp_path / "theory.json"), "--out", str(tmp_path / "again")]) == 0
    again = (tmp_path / "again" / "report.md").read_text()
    note = "; this text re-rendered from that run's `theory.json` with `--from-json`"
    assert note in again and again.replace(note, "") == report


# ----------------------------------------------------------------------------- exact W2, MALA, t_eps
def test_exact_w2_matches_brute_force_over_permutations():
    gen = torch.Generator().manual_seed(5)
    for n, k in ((2, 1), (4, 2), (6, 3)):
        x, y = torch.randn(n, k, generator=gen), torch.randn(n, k, generator=gen)
        cost = torch.cdist(x.double(), y.double()).pow(2)
        brute = min(sum(cost[i, p[i]].item() for i in range(n)) / n for p in itertools.permutations(range(n)))
        assert exact_w2(x, y) == pytest.approx(math.sqrt(brute), rel=1e-9)
    x = torch.randn(200, 4, generator=gen)
    shift = torch.tensor([0.3, -0.4, 0.0, 0.0])  # translation: W2 = ||v|| exactly
    assert exact_w2(x + shift, x[torch.randperm(200, generator=gen)]) == pytest.approx(0.5, rel=1e-6)
    # the sliced distance is weaker: SW2 = ||v|| / sqrt(k) for a shift
    assert sliced_w2(x + shift, x, random_directions(4, 512, gen)).item() < 0.7 * exact_w2(x + shift, x)


def _quadratic(a: float):
    return lambda z: (0.5 * a * z.pow(2).sum(-1), a * z)


def test_mala_is_unbiased_where_the_unadjusted_chain_is_not():
    """f = a z^2 / 2: mu = N(0, 1/(beta a)). At eta a = 1.5 the unadjusted chain's variance is
    1/(beta a (1 - eta a / 2)) = 4x too large; MALA's accept step removes that bias."""
    a, beta, eta = 1.0, 2.0, 1.5
    gen = torch.Generator().manual_seed(0)
    z, acc = mala(_quadratic(a), torch.zeros(1, 4000, 1, dtype=torch.float64), 200, eta, beta, gen)
    assert 0.2 < acc < 0.95
    assert z.var().item() == pytest.approx(1 / (beta * a), rel=0.12)
    u = torch.zeros(1, 4000, 1, dtype=torch.float64)
    for _ in range(200):
        u = rn.langevin_step(u, a * u, eta, beta, torch.randn(u.shape, generator=gen, dtype=u.dtype))
    assert u.var().item() == pytest.approx(1 / (beta * a * (1 - eta * a / 2)), rel=0.12)


def test_checkpoints_are_geometric_and_end_at_the_cap():
    ts = checkpoints(1000)
    assert ts[:5] == [1, 2, 3, 4, 5] and ts[-1] == 1000 and ts == sorted(set(ts))
    assert max(b / a for a, b in itertools.pairwise(ts[30:])) < 1.07 and len(ts) < 130


def _double_well(h: float):
    """f(z) = h (z^2 - 1)^2 in 1-D: two wells of equal depth at +-1 (mu gives each half its mass)."""
    return lambda z: (h * (z.pow(2) - 1).pow(2).sum(-1), 4 * h * z * (z.pow(2) - 1))


@pytest.mark.parametrize("beta, mixes", [(1.0, True), (25.0, False)])
def test_t_eps_and_its_verdict_flip_on_a_metastable_landscape(beta, mixes):
    """All chains start in the left well. With barrier beta h = 1 they mix and reach W2 <= eps; with
    beta h = 25 they cannot cross in the budget (W2 stays ~ sqrt(1/2 * 4)), so t_eps is censored and
    the mixing verdict says so."""
    gen = torch.Generator().manual_seed(1)
    lg = _double_well(1.0)
    n = 128
    start = torch.cat([-torch.ones(1, n // 2, 1), torch.ones(1, n // 2, 1)], dim=1).double()
    ref, _ = mala(lg, start, 300, 0.05, beta, gen)  # half per well: exact weights by symmetry
    z0 = -torch.ones(1, n, 1, dtype=torch.float64) + 0.1 * torch.randn(1, n, 1, generator=gen, dtype=torch.float64)
    eps = 0.3
    tr = w2_trajectory(lg, z0, ref, eps ** 2, beta, math.ceil(20 / eps ** 2), eps, gen)
    assert math.isfinite(tr["t_eps"][0]) == mixes
    if not mixes:
        assert min(min(w) for w in tr["w2"]) > 1.0
    assert vd.mixing_label([sum(math.isfinite(t) for t in tr["t_eps"])], 1) == (
        "MIXES IN BUDGET" if mixes else "DOES NOT MIX IN BUDGET")


def test_slope_ci_recovers_an_exponent_and_refuses_censored_fits():
    eps = [0.5, 0.35, 0.25, 0.18]
    rng = torch.Generator().manual_seed(2)
    speed = (0.5 + torch.rand(8, generator=rng)).tolist()  # per-instance constant (a slow or fast landscape)
    table = [[e ** -3 * u * (1 + 0.1 * torch.rand(1, generator=rng).item()) for u in speed] for e in eps]
    fit = slope_ci([1 / e for e in eps], table, paired=True)
    assert fit["lo"] <= 3.0 <= fit["hi"] and fit["hi"] - fit["lo"] < 0.6
    steeper = [[e ** -4 * u for u in speed] for e in eps]
    assert slope_ci([1 / e for e in eps], steeper, paired=True)["lo"] > 3.5
    table[0][:5] = [math.inf] * 5  # most instances never mixed at one eps: no exponent to report
    assert slope_ci([1 / e for e in eps], table, paired=True)["lo"] is None
    assert median_ci([1.0, 2.0, math.inf])[0] == 2.0
    assert theorem_exponent(eps) == pytest.approx(math.log((math.log(1 / 0.18) / 0.18 ** 2) / (math.log(2) / 0.25)) / math.log(0.5 / 0.18))


def test_exponent_verdict_flips_on_a_polynomially_slow_chain():
    """t_eps ~ log(1/eps)/eps^2 (the theorem) agrees; t_eps ~ eps^-5 (e.g. W2 decaying like t^(-1/3))
    is significantly steeper than the theorem's exponent and is reported as DOES NOT AGREE."""
    eps = [0.5, 0.35, 0.25, 0.18, 0.12]
    bound = theorem_exponent(eps)
    rng = torch.Generator().manual_seed(3)
    for law, want in ((lambda e: math.log(2 / e) / e ** 2, "AGREES"), (lambda e: e ** -5, "DOES NOT AGREE")):
        table = [[law(e) * (1 + 0.3 * u) for u in torch.rand(8, generator=rng).tolist()] for e in eps]
        assert vd.exponent_label(slope_ci([1 / e for e in eps], table, paired=True), bound) == want
    assert vd.exponent_label({"slope": 1.0, "lo": None, "hi": None}, bound) == "INCONCLUSIVE"


def test_escape_and_premise_verdicts_follow_their_cis():
    assert vd.escape_label({"lo": 0.05, "hi": 0.4}) == "LANGEVIN ESCAPES BETTER"
    assert vd.escape_label({"lo": -0.1, "hi": 0.4}) == "NO RESOLVED DIFFERENCE"
    assert vd.escape_label({"lo": -0.3, "hi": -0.01}) == "GD BETTER"
    from bench.experiments.theory.config import Config

    cfg, rho_d = Config(), rn.expected_saddle_rho(2)
    expected = {"grad_ratio": (0.02, 0.01, 0.04), "rho": (rho_d, rho_d - 0.02, rho_d + 0.02)}
    chk = vd.premise_checks(expected, rho_d, {"lo": 0.8, "hi": 1.0}, cfg)
    assert chk == {"critical": True, "rho": True, "stall": True} and vd.premise_label(chk) == "yes"
    finite = {"grad_ratio": (0.3, 0.2, 0.4), "rho": (0.1, 0.05, 0.2)}  # a narrow network: all three fail
    chk = vd.premise_checks(finite, rho_d, {"lo": 0.0, "hi": 0.1}, cfg)
    assert chk == {"critical": False, "rho": False, "stall": False} and vd.premise_label(chk) == "no"
    straddle = {"grad_ratio": (0.11, 0.09, 0.14), "rho": (0.33, 0.27, 0.375)}  # the c = 8 numbers
    chk = vd.premise_checks(straddle, rho_d, {"lo": 0.0, "hi": 1.0}, cfg)
    assert chk == {"critical": None, "rho": None, "stall": None} and vd.premise_label(chk) == "unresolved"
    assert vd.premise_label(vd.premise_checks(expected, rho_d, None, cfg)) == "unresolved"  # GD stall not measured
