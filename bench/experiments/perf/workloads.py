"""What the benchmarks run: priors at two scales, a fixed problem, the bare generator step and
one method round of a chosen length."""
from __future__ import annotations

from typing import Callable

import torch

import methods
import tasks
from bench.priors.prior import Prior
from methods._core import Hyper, Problem
from methods._rounds import render_from_layer, trainable_noise_indices

TASK, LEVEL = "inpaint", 0.05  # the fixed problem: inpainting with 5% of the pixels observed
FFHQ_ARCH = dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2)
SCALES = ("embedded", "ffhq-arch")


def build_prior(scale: str, device: torch.device, acceleration: str = "") -> Prior:
    """``embedded``: the committed Fashion-MNIST world. ``ffhq-arch``: the 1024 FFHQ architecture
    and official-size score networks with seeded RANDOM weights (speed only, never quality). ``acceleration``:
    speed settings (bench/priors/acceleration.py; "" = plain)."""
    if scale == "embedded":
        from bench.priors.catalog import load_prior

        return load_prior("embedded", device, acceleration=acceleration)
    if scale == "ffhq-arch":
        from bench.priors.score_prior import ScorePrior
        from bench.priors.score_vit import ScoreViT, ScoreViTConfig
        from bench.priors.stylegan2 import Generator

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            g = Generator(**FFHQ_ARCH).to(device)
            scores = {k: ScorePrior(ScoreViT(ScoreViTConfig(channels=512, height=4 * 2**k, width=4 * 2**k)), layer=k)
                      for k in (0, 1)}  # official layer1/layer2 shapes (512x4x4, 512x8x8), default ViT size
        prior = Prior.from_generator(g, name="ffhq-arch-random", n_fit=2000, scores=scores).to(device)
        from bench.priors.acceleration import Acceleration

        return prior.accelerate(Acceleration.parse(acceleration)) if acceleration else prior
    raise ValueError(f"unknown scale {scale!r}; choose from {SCALES}")


def images(prior: Prior, n: int, scale: str) -> torch.Tensor:
    """Real test images for the embedded world; the generator's own samples for random weights."""
    if scale == "embedded":
        from bench.priors.catalog import load_images

        x, _ = load_images("embedded", "test")
        return x[torch.arange(n) % len(x)].to(prior.device)
    with torch.no_grad():
        z = torch.randn(n, prior.generator.style_dim, generator=torch.Generator().manual_seed(1)).to(prior.device)
        img, _ = prior.generator(z, noise=prior.generator.make_noise(n, device=prior.device))
    return img.clamp(-1, 1)


def problem(prior: Prior, x: torch.Tensor) -> Problem:
    op = tasks.get(TASK).build(LEVEL, prior.image_shape, seed=0, device=prior.device)
    return Problem(op(x), op, list(range(len(x))), reference=x)


def bare_step(prior: Prior, prob: Problem, layer: int) -> Callable[[], None]:
    """The physical floor of one optimisation step at ``layer``: the generator's forward from the
    optimised variables (z latent through the proxy, trainable noises, the state after layer-1)
    plus the measurement loss and its backward pass; no optimiser, no projections, no traces."""
    g, proxy = prior.generator, prior.proxy
    dev, B = prior.device, prob.batch
    gen = torch.Generator().manual_seed(0)
    latent = torch.randn(B, g.n_latent, g.style_dim, generator=gen).to(dev).requires_grad_(True)
    trainable = trainable_noise_indices(g, layer)
    noises = [n.expand(B, -1, -1, -1).clone().requires_grad_(i in trainable)
              for i, n in enumerate(g.make_noise(1, generator=gen, device=dev))]
    state, h = None, None
    if layer >= 1:
        with torch.no_grad():
            state = g.synthesis(proxy(latent), noises, start=0, end=layer - 1)
        h = state.features.clone().requires_grad_(True)
    variables = [latent, h] + [noises[i] for i in trainable]
    op, y = prob.operator, prob.y

    def step() -> None:
        image = render_from_layer(g, proxy, latent, noises, state, h, layer, prior.skip_mode)
        loss = op.loss(op(image), y).sum()
        for v in variables:
            if v is not None:
                v.grad = None
        loss.backward()

    return step


def round_params(params: Hyper, method: str, r: int, n: int) -> Hyper:
    """``params`` with round ``r`` made ``n`` steps long and the rounds before it one step each
    (their fixed cost cancels in the marginal per-step time); CSGM has a single round."""
    if method == "csgm":
        return params.replace(steps=n)
    return params.replace(steps=(1,) * r + (n,))


def round_runner(method: str, params: Hyper, r: int, prior: Prior, prob: Problem) -> Callable[[int], object]:
    m = methods.get(method)
    return lambda n: m.solve(prob, prior, round_params(params, method, r, n))
