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
