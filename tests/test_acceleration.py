"""Each speed setting (bench/priors/acceleration.py) gives the plain path's reconstruction within a stated
tolerance: channels_last and compile reorder or fuse float32 arithmetic (1e-4), bf16 rounds the generator's
forward to 8 mantissa bits (mean |difference| below 0.02 on [-1, 1] images, reference MSE within 25%)."""
from __future__ import annotations

import pytest
import torch

import methods
import tasks
from bench.priors.acceleration import Acceleration
from bench.priors.catalog import load_prior
from methods._core import Problem


def _solve(acceleration: str, method: str = "ilo_unreg", steps=(6, 6)):
    from bench.priors.tiny import tiny_images

    prior = load_prior("tiny", acceleration=acceleration)
    op = tasks.get("inpaint").build(0.3, prior.image_shape, seed=0)
    x, _ = tiny_images("test")
    x = x[:3]
    m = methods.get(method)
    res = m.solve(Problem(op(x), op, [1, 2, 3], reference=x), prior, m.default_params().replace(steps=steps))
    rec = torch.stack([r.reconstruction for r in res])
    return rec, float((rec - x).pow(2).mean())


def test_parse_and_labels():
    assert Acceleration.parse("").plain and Acceleration.parse("bf16,channels_last").label() == "channels_last,bf16"
    assert Acceleration.parse("compile-graphs").compile_mode == "reduce-overhead"
    with pytest.raises(ValueError, match="valid: channels_last"):
        Acceleration.parse("fp8")


def test_channels_last_matches_the_plain_path():
    plain, _ = _solve("")
    fast, _ = _solve("channels_last")
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=0)


def test_bf16_autocast_stays_within_its_tolerance():
    plain, mse_plain = _solve("")
    fast, mse_fast = _solve("bf16")
    assert (fast - plain).abs().mean() < 0.02 and abs(mse_fast - mse_plain) < 0.25 * mse_plain
    assert fast.dtype == torch.float32  # states, images and results stay float32


@pytest.mark.slow  # compiling the tiny generator takes about a minute on 2 CPU cores
def test_compiled_synthesis_matches_the_plain_path():
    plain, _ = _solve("", steps=(3, 3))
    fast, _ = _solve("compile", steps=(3, 3))
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=0)


def test_score_bf16_rounds_only_the_score_network():
    """score-bf16: the installed layer scores change by well under 2% (bf16 keeps 8 mantissa bits), stay
    float32, and the setting leaves the plain prior's score models alone."""
    plain = load_prior("embedded", acceleration="")
    fast = load_prior("embedded", acceleration="score-bf16")
    assert fast.acceleration.score_bf16 and not any(s.bf16 for s in plain.scores.values())
    for k, s in plain.scores.items():
        h = torch.randn(4, *s.config.shape, generator=torch.Generator().manual_seed(k))
        ref, low = s.score(h, 0.05), fast.scores[k].score(h, 0.05)
        assert low.dtype == torch.float32
        assert 0 < float((low - ref).norm() / ref.norm()) < 0.02


def _sgilo_against_plain(acc: str):
    """SGILO (inpainting 30%, 3 x 10 steps, 2 test images) plain and under ``acc`` with the same per-image seeds,
    and plain with other seeds: ((plain, its MSE), (acc, its MSE), mean |plain - plain with other seeds|)."""
    from bench.priors.catalog import load_images_at

    x = load_images_at("embedded", "test", [0, 1])[0]
    out = {}
    for setting, ids in (("", [1, 2]), (acc, [1, 2]), ("", [3, 4])):
        prior = load_prior("embedded", acceleration=setting)
        op = tasks.get("inpaint").build(0.3, prior.image_shape, seed=0)
        m = methods.get("sgilo")
        res = m.solve(Problem(op(x), op, ids, reference=x), prior, m.default_params().replace(steps=(10, 10, 10)))
        rec = torch.stack([r.reconstruction for r in res])
        out[(setting, ids[0])] = (rec, float((rec - x).pow(2).mean()))
    plain = out[("", 1)]
    return plain, out[(acc, 1)], (out[("", 3)][0] - plain[0]).abs().mean()


def test_score_bf16_sgilo_matches_the_plain_path():
    """SGILO's reconstruction with bf16 score networks. SGILO is a sampler whose rounds amplify small changes
    of the score, so the tolerance is its own sampling noise: the bf16 path moves the reconstruction less than
    a change of the per-image seed does, and the reference MSE stays within 25%. (Measured at the default
    300 steps per round on 4 images: |bf16 - plain| 0.042, |seed - seed| 0.074, MSE 0.0446 vs 0.0451.)"""
    (plain, mse_plain), (fast, mse_fast), seed_change = _sgilo_against_plain("score-bf16")
    assert 0 < (fast - plain).abs().mean() < seed_change and abs(mse_fast - mse_plain) < 0.25 * mse_plain


def test_score_bf16_stores_one_bf16_copy_with_a_float32_time_path():
    """The bf16 network is built once and reused (no per-call re-cast), its time path keeps the float32
    weights bit for bit (t = 0.01's Fourier phases would not survive bf16), and it never enters the saved
    state dict."""
    fast = load_prior("embedded", acceleration="score-bf16")
    s = fast.scores[1]
    h = torch.randn(2, *s.config.shape, generator=torch.Generator().manual_seed(0))
    s.score(h, 0.01)
    low = s._bf16_model(h.device)
    s.score(h, 0.01)
    assert s._bf16_model(h.device) is low
    assert low.transformer.layers[0][0].fn.fn.to_qkv.weight.dtype == torch.bfloat16
    assert low.pos_embedding.dtype == torch.bfloat16
    for (name, a), b in zip(low.time_mod.named_parameters(), s.model.time_mod.parameters()):
        assert a.dtype == torch.float32 and torch.equal(a, b), name
    assert all(v.dtype == torch.float32 for v in s.state_dict().values())
    assert set(s.state_dict()) == {f"model.{k}" for k in s.model.state_dict()}


def test_score_graphs_matches_the_plain_score_network():
    """score-graphs (the score networks compiled, mode reduce-overhead: CUDA graphs on a GPU, fusion on a CPU)
    computes the same scores as the plain network: float32 reordering only (1e-4 of the score's scale), and the
    returned score is a copy that a later call does not overwrite."""
    plain = load_prior("embedded", acceleration="")
    fast = load_prior("embedded", acceleration="score-graphs")
    assert fast.acceleration.score_graphs and not any(s.graphs for s in plain.scores.values())
    s, f = plain.scores[1], fast.scores[1]
    h = torch.randn(2, *s.config.shape, generator=torch.Generator().manual_seed(0))
    ref, first = s.score(h, 0.01), f.score(h, 0.01)
    second = f.score(h + 1.0, 0.01)
    torch.testing.assert_close(first, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)
    assert not torch.equal(first, second)
    torch.testing.assert_close(first, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)  # not overwritten


def test_score_graphs_compiles_the_whole_hot_step_with_the_same_noise():
    """Under score-graphs SGILO's hot step (corrector and predictor, both score forwards) runs as one compiled
    graph taking its two noises as inputs; it draws them in the plain path's order, so the guidance delta
    matches the plain one to float32 reordering (1e-4 of its scale), for both layers and two batch sizes."""
    from bench.priors.samplers import hot_delta
    from methods._core import PerImageRNG

    plain = load_prior("embedded", acceleration="")
    fast = load_prior("embedded", acceleration="score-graphs")
    for k, s in plain.scores.items():
        for b in (1, 3):
            h = torch.randn(b, *s.config.shape, generator=torch.Generator().manual_seed(10 * k + b))
            ref = hot_delta(s, h, snr=1e-4, t=0.01, generator=PerImageRNG(range(b), "cpu"))
            out = hot_delta(fast.scores[k], h, snr=1e-4, t=0.01, generator=PerImageRNG(range(b), "cpu"))
            assert ref.abs().max() > 0
            torch.testing.assert_close(out, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)
    assert any(key[0] == "hot_step" for key in fast.scores[1]._compiled)


def test_score_reuse_is_the_hot_step_to_a_ten_thousandth_with_one_forward():
    """score-reuse: the predictor reuses the corrector's score. At SGILO's snr (1e-4) the corrector moves the
    state by ~1e-4 of the noise scale, so the guidance delta matches the plain two-forward step to 1e-3 of its
    scale (it is an approximation: not bit-equal), for both layers and two batch sizes; one score forward is
    made per step instead of two; a large snr (0.5) makes the approximation visibly worse."""
    from bench.priors.samplers import hot_delta
    from methods._core import PerImageRNG

    plain = load_prior("embedded", acceleration="")
    fast = load_prior("embedded", acceleration="score-reuse")
    assert fast.acceleration.label() == "score-reuse" and not any(s.reuse for s in plain.scores.values())
    for k, s in plain.scores.items():
        calls = []
        f = fast.scores[k]
        f.model.register_forward_hook(lambda *_: calls.append(1))
        for b in (1, 3):
            h = torch.randn(b, *s.config.shape, generator=torch.Generator().manual_seed(10 * k + b))
            ref = hot_delta(s, h, snr=1e-4, t=0.01, generator=PerImageRNG(range(b), "cpu"))
            calls.clear()
            out = hot_delta(f, h, snr=1e-4, t=0.01, generator=PerImageRNG(range(b), "cpu"))
            assert len(calls) == 1
            err = float((out - ref).abs().max() / ref.abs().max())
            assert 0 < err < 1e-3, (k, b, err)
            far = hot_delta(s, h, snr=0.5, t=0.01, generator=PerImageRNG(range(b), "cpu"))
            far_reuse = hot_delta(f, h, snr=0.5, t=0.01, generator=PerImageRNG(range(b), "cpu"))
            assert float((far_reuse - far).abs().max() / far.abs().max()) > 10 * err


def test_score_reuse_sgilo_matches_the_plain_path():
    """SGILO's reconstruction with score-reuse moves less than half of what a change of the per-image seed moves
    it, and its MSE stays within 10% of the plain path's. Each hot step differs by ~1e-4 of its scale, but SGILO
    is a sampler whose rounds amplify small changes (measured, 3 x 10 steps: |reuse - plain| 0.017 against a seed
    change of 0.106 in a clean clone; after a 5-step solve in bench.perf, 8.7e-6)."""
    (plain, mse_plain), (fast, mse_fast), seed_change = _sgilo_against_plain("score-reuse")
    assert 0 < (fast - plain).abs().mean() < 0.5 * seed_change and abs(mse_fast - mse_plain) < 0.1 * mse_plain
