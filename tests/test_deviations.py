"""docs/DEVIATIONS.md, row by row where the CPU can check it: our objective against the official
formula on fixed inputs, the noise maps each round optimises, and which iterate is returned."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import methods
import tasks
from bench.priors.catalog import load_prior
from methods._rounds import trainable_noise_indices


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, *shape, generator=g) * 2 - 1, torch.rand(2, *shape, generator=g) * 2 - 1


def _official_inpaint_term(op, x, x_true):
    """Official ILO/SGILO inpainting data term: F.mse_loss(x * mask, y * mask), a mean over all n values."""
    mask = op.mask.float()[None, None]
    return F.mse_loss(x * mask, x_true * mask, reduction="none").flatten(1).mean(1)


def _official_cs_term(op, x, x_true):
    """Official ILO CS data term: F.mse_loss over the m values of the operator without 1/sqrt(m)."""
    unscaled = lambda v: op(v) * math.sqrt(op.num_measurements)  # noqa: E731
    return F.mse_loss(unscaled(x), unscaled(x_true), reduction="none").mean(1)


def test_inpainting_data_term_is_n_over_k_times_the_official_one():
    """Row 1: official ILO/SGILO: F.mse_loss(x * mask, y_zero_filled), a mean over all n values."""
    shape = (3, 64, 64)
    op = tasks.get("inpaint").build(0.05, shape, seed=0)
    x, x_true = _pair(shape)
    official = _official_inpaint_term(op, x, x_true)
    ours = op.loss(op(x), op(x_true))
    n, k = math.prod(shape), op.num_measurements
    torch.testing.assert_close(ours, official * n / k, rtol=1e-5, atol=0)


def test_cs_data_term_is_one_over_m_of_the_unscaled_operator():
    """Row 2: official ILO: F.mse_loss over the m values of the partial circulant operator without
    1/sqrt(m); ours divides the operator by sqrt(m), so the official term is m times ours."""
    shape = (3, 64, 64)  # n = 12288 > 4096: the partial circulant operator
    op = tasks.get("cs").build(0.1, shape, seed=0)
    x, x_true = _pair(shape, seed=1)
    official = _official_cs_term(op, x, x_true)
    torch.testing.assert_close(official, op.num_measurements * op.loss(op(x), op(x_true)), rtol=1e-4, atol=0)


def test_trainable_noises_are_ilos_range():
    """Row 6: the round starting at layer k optimises ILO's noise maps range(5 + 2k) (those the
    remaining layers use), not SGILO's lookahead 1 + 2i."""
    g = load_prior("tiny").generator
    for k in range(g.last_layer + 1):
        used = {i for j in range(k, g.last_layer + 1) for i in g.noise_indices(j)}
        assert trainable_noise_indices(g, k) == [i for i in range(min(5 + 2 * k, g.num_layers)) if i in used]
    assert len(trainable_noise_indices(g, 1)) > 1 + 2 * 1 or g.num_layers <= 3  # more than the lookahead would


def test_returned_iterate_is_the_last_rounds_best():
    """Rows 7-8: the reconstruction is the last round's lowest-measurement-loss iterate (ILO's mse_min,
    reset every round), not SGILO's last iterate; its reported loss is that iterate's."""
    prior = load_prior("tiny")
    op = tasks.get("inpaint").build(0.3, prior.image_shape, seed=0)
    from bench.priors.tiny import tiny_images
    from methods._core import Problem

    imgs, _ = tiny_images("test")
    problem = Problem(op(imgs[:2]), op, [1, 2], reference=imgs[:2])
    # a large step and latent noise make the loss go up and down, so the best is not the last iterate
    p = methods.get("sgilo").Params(steps=(6, 8), lr=(0.5,), temperature=(0.0,), noise_temp=0.0,
                                    latent_noise_temp=0.5)
    res = methods.get("sgilo").solve(problem, prior, p)
    for r in res:
        last_round = [loss for step, loss, _ in r.trace if step >= 6]
        assert r.measurement_loss == min(last_round)
    assert any(r.measurement_loss < r.trace[-1][1] for r in res)  # here the best is not the last iterate


# ----------------------------------------------------------------------------- the official mode
def _tiny_problem(task="inpaint", level=0.3, n=2):
    from bench.priors.tiny import tiny_images
    from methods._core import Problem

    prior = load_prior("tiny")
    op = tasks.get(task).build(level, prior.image_shape, seed=0)
    imgs, _ = tiny_images("test")
    return prior, Problem(op(imgs[:n]), op, list(range(1, n + 1)), reference=imgs[:n])


def test_official_data_term_is_the_official_formula():
    """Rows 1-2 and 15 in the official mode: the data term equals the official code's on fixed inputs."""
    from methods._objective import data_term

    shape = (3, 64, 64)
    x, x_true = _pair(shape)
    for task, level, official_term, tol in (("inpaint", 0.05, _official_inpaint_term, 1e-5),
                                            ("inpaint_box", 0.25, _official_inpaint_term, 1e-5),
                                            ("cs", 0.1, _official_cs_term, 1e-4)):
        op = tasks.get(task).build(level, shape, seed=0)
        torch.testing.assert_close(data_term(op, op(x), op(x_true), "official"), official_term(op, x, x_true),
                                   rtol=tol, atol=0)
    # row 15: the other tasks keep our normalisation in the official mode
    for task, level in (("superres", 4), ("denoise", 0.5), ("colorize", 0.0)):
        assert tasks.get(task).build(level, shape, seed=0).official_loss_scale == 1.0, task


def test_fill_puts_the_measurements_in_the_observed_pixels():
    shape = (1, 16, 16)
    op = tasks.get("inpaint").build(0.3, shape, seed=0)
    x, x_true = _pair(shape)
    filled = op.fill(x, op(x_true))
    m = op.mask
    assert torch.equal(filled[..., m], x_true[..., m]) and torch.equal(filled[..., ~m], x[..., ~m])
    assert not tasks.get("cs").build(0.1, shape, seed=0).has_fill


def test_lpips_fill_term_compares_the_image_with_its_filled_copy():
    """The term is LPIPS(x, fill(x, y)) on the official 256 inputs (a stand-in distance here): zero when x
    already agrees with y, differentiable in x."""
    from methods._objective import lpips_fill_term, official_lpips_input

    op = tasks.get("inpaint").build(0.3, (3, 512, 512), seed=0)
    assert official_lpips_input(torch.zeros(1, 3, 512, 512)).shape[-1] == 256
    term = lpips_fill_term(lambda a, b: (a - b).abs().flatten(1).mean(1), op)
    x_true = _pair((3, 512, 512))[0][:1]
    assert float(term(x_true, op(x_true))) < 1e-6
    x = torch.zeros_like(x_true, requires_grad=True)
    val = term(x, op(x_true))
    val.sum().backward()
    assert float(val.detach()) > 0 and x.grad.abs().sum() > 0


def test_lookahead_noise_maps_are_sgilos():
    """Row 6 in the official mode: round r optimises noise maps 0 .. 1 + 2r - 1 (those still used)."""
    g = load_prior("tiny").generator
    for r in range(g.last_layer + 1):
        used = {i for j in range(r, g.last_layer + 1) for i in g.noise_indices(j)}
        assert trainable_noise_indices(g, r, "lookahead", r) == [i for i in range(min(1 + 2 * r, g.num_layers))
                                                                 if i in used]


def test_official_sgilo_returns_its_last_iterate_clamped():
    """Rows 5 and 7 in the official mode: SGILO clamps and returns the image of its last step; the state
    after the last Adam step is never rendered (one generator pass per step)."""
    prior, problem = _tiny_problem()
    sgilo = methods.get("sgilo")
    p = sgilo.official(sgilo.Params(steps=(6, 8), lr=(0.5,), temperature=(0.0,), noise_temp=0.0,
                                    latent_noise_temp=0.5))
    assert p.clamp and p.best_over == "last" and p.noise_maps == "lookahead" and p.data_term == "official"
    res = sgilo.solve(problem, prior, p)
    for r in res:
        assert r.measurement_loss == r.trace[-1][1] and r.nfe_generator == 14
        assert r.reconstruction.abs().max() <= 1.0


def test_data_term_normalisation_matters_only_against_regularisers():
    """Adam is invariant to a constant gradient scale, so without geocross the official normalisation
    gives the same ILO-unregularized run; with geocross the regulariser's relative weight changes."""
    prior, problem = _tiny_problem()
    m = methods.get("ilo_unreg")
    base = m.Params(steps=(10, 10), lr=(0.1,), geocross=0.0)
    ours, official = (m.solve(problem, prior, base.replace(data_term=d)) for d in ("ours", "official"))
    for a, b in zip(ours, official):
        torch.testing.assert_close(a.reconstruction, b.reconstruction, atol=1e-3, rtol=0)
    base = base.replace(geocross=1.0)
    ours, official = (m.solve(problem, prior, base.replace(data_term=d)) for d in ("ours", "official"))
    assert max(float((a.reconstruction - b.reconstruction).abs().max()) for a, b in zip(ours, official)) > 1e-2


def test_an_asked_for_lpips_term_says_whether_it_ran():
    """Row 4: with no VGG backbone file the run goes on without the term and every result says so."""
    from bench.core.metrics import find_backbone

    prior, problem = _tiny_problem()
    m = methods.get("ilo")
    res = m.solve(problem, prior, m.official(m.Params(steps=(2, 2))))
    note = res[0].objective_note
    if find_backbone("vgg")[0] is None:
        assert note.startswith("LPIPS term (weight 1) absent") and "vgg16" in note
    else:
        assert note == "LPIPS-VGG fill term, weight 1"
    assert methods.get("ilo").Params().lpips == 0 and not res[0].objective_note == ""


def test_official_mode_per_method_and_world_default():
    """Method.official sets each method's official settings; FFHQ sweeps default to it, embedded ones do not,
    and --objective overrides the world."""
    from bench.harness.sweep.config import resolve
    from bench.harness.sweep.plan import ilo_paper_params, plan_tune

    assert methods.get("ilo").official(methods.get("ilo").Params()).skip_mode == "official"
    assert methods.get("langevin").official_settings == {}  # no official code: unchanged
    cfg = resolve(("inpaint",), "tiny", methods=("csgm", "ilo", "sgilo"))
    assert cfg.objective == "ours" and all(c.params["data_term"] == "ours" for c in plan_tune(cfg))
    cfg = resolve(("inpaint",), "tiny", methods=("csgm", "ilo", "sgilo"), objective="official")
    cells = plan_tune(cfg)
    assert {c.method: c.params["lpips"] for c in cells} == {"csgm": 1.0, "ilo": 1.0, "sgilo": 0.05}
    assert ilo_paper_params(cfg)["data_term"] == "official"
    from bench.priors.ffhq import FFHQ_WORLD

    assert FFHQ_WORLD.objective == "official"
