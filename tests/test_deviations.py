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


def test_inpainting_data_term_is_n_over_k_times_the_official_one():
    """Row 1: official ILO/SGILO: F.mse_loss(x * mask, y_zero_filled), a mean over all n values."""
    shape = (3, 64, 64)
    op = tasks.get("inpaint").build(0.05, shape, seed=0)
    x, x_true = _pair(shape)
    mask = op.mask.float()[None, None]
    official = F.mse_loss(x * mask, x_true * mask, reduction="none").flatten(1).mean(1)
    ours = op.loss(op(x), op(x_true))
    n, k = math.prod(shape), op.num_measurements
    torch.testing.assert_close(ours, official * n / k, rtol=1e-5, atol=0)


def test_cs_data_term_is_one_over_m_of_the_unscaled_operator():
    """Row 2: official ILO: F.mse_loss over the m values of the partial circulant operator without
    1/sqrt(m); ours divides the operator by sqrt(m), so the official term is m times ours."""
    shape = (3, 64, 64)  # n = 12288 > 4096: the partial circulant operator
    op = tasks.get("cs").build(0.1, shape, seed=0)
    x, x_true = _pair(shape, seed=1)
    m = op.num_measurements
    unscaled = lambda v: op(v) * math.sqrt(m)  # noqa: E731
    official = F.mse_loss(unscaled(x), unscaled(x_true), reduction="none").mean(1)
    torch.testing.assert_close(official, m * op.loss(op(x), op(x_true)), rtol=1e-4, atol=0)


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
