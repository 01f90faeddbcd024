"""StyleGAN-2 generator: rosinality state-dict layout, exact splits, strict loading."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench.priors.checkpoint import CheckpointError, infer_config, load_generator
from bench.priors.mapping_proxy import fit_gaussian, load_or_fit
from bench.priors.ops import make_kernel, upfirdn2d
from bench.priors.stylegan2 import Generator

REF = Path(__file__).resolve().parent / "reference"  # copies of ../shared/reference facts
MANIFESTS = {
    "rosinality_g_ema_1024_manifest.json": dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2),
    "rosinality_g_ema_64_sd512_mlp8_cm2_manifest.json": dict(size=64, style_dim=512, n_mlp=8, channel_multiplier=2),
    "rosinality_g_ema_32_sd128_mlp4_cm1_manifest.json": dict(size=32, style_dim=128, n_mlp=4, channel_multiplier=1),
}
SMALL = dict(size=32, style_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8}, img_channels=3)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def small_generator(seed: int = 0, **over) -> Generator:
    torch.manual_seed(seed)
    g = Generator(**{**SMALL, **over})
    with torch.no_grad():  # non-zero noise strengths and biases so every path matters
        for name, p in g.named_parameters():
            if name.endswith("noise.weight") or name.endswith("activate.bias") or name.endswith(".bias"):
                p.normal_(0, 0.2)
    return g


@pytest.mark.parametrize("manifest", sorted(MANIFESTS))
def test_state_dict_matches_rosinality_manifest(manifest):
    if not (REF / manifest).exists():
        pytest.skip(f"reference manifest {REF / manifest} not available")
    ref = json.loads((REF / manifest).read_text())
    g = Generator(**MANIFESTS[manifest])
    ours = [(k, list(v.shape), "parameter" if k in dict(g.named_parameters()) else "buffer") for k, v in g.state_dict().items()]
    assert ours == [(e["key"], e["shape"], e["kind"]) for e in ref]


def test_modulated_conv_equals_grouped_reference():
    g = small_generator()
    for conv in [g.conv1.conv, g.convs[0].conv, g.convs[1].conv, g.to_rgbs[1].conv]:
        x = torch.randn(3, conv.in_channel, 8, 8)
        s = torch.randn(3, g.style_dim)
        torch.testing.assert_close(conv(x, s), conv.grouped_reference(x, s), rtol=1e-5, atol=1e-5)


def test_upfirdn2d_against_direct_formula():
    x = torch.randn(1, 2, 5, 5)
    k = make_kernel([1, 3, 3, 1]) * 4
    out = upfirdn2d(x, k, up=2, pad=(2, 1))
    assert out.shape == (1, 2, 10, 10)
    # direct: zero-insert, pad, correlate with the flipped kernel
    z = torch.zeros(1, 2, 10, 10)
    z[:, :, ::2, ::2] = x
    z = F.pad(z, [2, 1, 2, 1])
    ref = torch.zeros(1, 2, 10, 10)
    kf = torch.flip(k, [0, 1])
    for i in range(10):
        for j in range(10):
            ref[:, :, i, j] = (z[:, :, i : i + 4, j : j + 4] * kf).sum((-1, -2))
    torch.testing.assert_close(out, ref)
    # upsampling a constant keeps it constant away from the border
    const = upfirdn2d(torch.ones(1, 1, 6, 6), k, up=2, pad=(2, 1))
    torch.testing.assert_close(const[..., 2:-2, 2:-2], torch.ones_like(const[..., 2:-2, 2:-2]))


@pytest.mark.parametrize("device", DEVICES)
def test_split_reproduces_full_forward_for_every_layer(device):
    g = small_generator().to(device)
    w = torch.randn(2, g.n_latent, g.style_dim, device=device)
    noises = g.make_noise(2, generator=torch.Generator().manual_seed(1), device=device)
    image = g.synthesis(w, noises).skip
    assert image.shape == (2, 3, 32, 32)
    for k in range(g.last_layer + 1):
        state = g.split(w, noises, k)
        assert state.features.shape[1:] == g.layer_shape(k)
        assert torch.equal(g.resume(state, w, noises), image), f"split at layer {k} is not exact"


def test_official_skip_mode_drops_exactly_the_earlier_rgb_sum():
    g = small_generator()
    w = torch.randn(2, g.n_latent, g.style_dim)
    noises = g.make_noise(2)
    image = g.synthesis(w, noises).skip
    for k in range(g.last_layer):
        state = g.split(w, noises, k)
        official = g.resume(state, w, noises, skip_mode="official")
        dropped = state.skip
        for j in range(k + 1, g.last_layer + 1):  # carry layer k's RGB sum up to full size
            dropped = g.to_rgbs[j - 1].upsample(dropped)
        assert (official - image).abs().max() > 1e-3
        torch.testing.assert_close(official + dropped, image, rtol=1e-5, atol=1e-5)


def test_rosinality_style_forward_matches_synthesis():
    g = small_generator()
    z = torch.randn(2, g.style_dim)
    noises = g.make_noise(2)
    img, latent = g([z], noise=noises, return_latents=True)
    torch.testing.assert_close(img, g.synthesis(latent, noises).skip)
    w = g.get_latent(z)
    torch.testing.assert_close(latent[:, 5], w)


def test_checkpoint_roundtrip_and_strict_errors(tmp_path):
    g = small_generator(img_channels=1)
    sd = g.state_dict()
    path = tmp_path / "ckpt.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(g.style_dim)}, path)
    g2, rest = load_generator(path)
    assert "latent_avg" in rest
    assert infer_config(sd)["channels"] == SMALL["channels"]
    w = torch.randn(1, g.n_latent, g.style_dim)
    n = g.make_noise(1)
    torch.testing.assert_close(g2.synthesis(w, n).skip, g.synthesis(w, n).skip)

    # buffers (kernels, stored noises) are optional
    no_buffers = {k: v for k, v in sd.items() if "kernel" not in k and not k.startswith("noises.")}
    torch.save({"g_ema": no_buffers}, path)
    load_generator(path, config={**SMALL, "img_channels": 1})

    # a missing parameter is named
    broken = dict(sd)
    del broken["convs.1.conv.modulation.weight"]
    torch.save({"g_ema": broken}, path)
    with pytest.raises(CheckpointError, match=r"convs\.1\.conv\.modulation\.weight"):
        load_generator(path, config={**SMALL, "img_channels": 1})

    # a mis-shaped parameter is named with both shapes
    broken = dict(sd)
    broken["to_rgb1.bias"] = torch.zeros(1, 3, 1, 1)
    torch.save({"g_ema": broken}, path)
    with pytest.raises(CheckpointError, match=r"to_rgb1\.bias: checkpoint \(1, 3, 1, 1\)"):
        load_generator(path, config={**SMALL, "img_channels": 1})

    # a pickle with arbitrary objects is refused (weights_only=True)
    import argparse

    torch.save({"g_ema": sd, "obj": argparse.Namespace(x=1)}, path)
    with pytest.raises(CheckpointError, match=r"ckpt.pt: not a plain tensor file .*argparse.Namespace"):
        load_generator(path)


def test_mapping_proxy_fit_and_inverse(tmp_path):
    g = small_generator()
    fit = fit_gaussian(g, n=4000, seed=0)
    assert fit["mean"].shape == (g.style_dim,) and (fit["std"] > 0).all()
    proxy = load_or_fit(g, tmp_path / "fit.pt", n=4000)
    assert (tmp_path / "fit.pt").exists()
    again = load_or_fit(g, tmp_path / "fit.pt")
    torch.testing.assert_close(again.mean, proxy.mean)
    z = torch.randn(5, 3, g.style_dim)
    torch.testing.assert_close(proxy.invert(proxy(z)), z, rtol=1e-4, atol=1e-4)
    # proxy(z) for Gaussian z has the mapping's first two moments after the lrelu_5 unfolding
    zs = torch.randn(4000, g.style_dim, generator=torch.Generator().manual_seed(3))
    v = F.leaky_relu(proxy(zs), 5.0)
    torch.testing.assert_close(v.mean(0), fit["mean"], atol=0.1, rtol=0)


def test_ffhq_1024_architecture_shapes_and_one_step():
    """The real 1024 config: one forward from a split state and one gradient step (CPU)."""
    torch.manual_seed(0)
    g = Generator(1024, 512, 8, 2)
    assert sum(p.numel() for p in g.parameters()) == 30_370_060
    w = torch.randn(1, 18, 512)
    noises = g.make_noise(1)
    with torch.no_grad():
        state = g.split(w, noises, 3)
    assert state.features.shape == (1, 512, 32, 32) and state.skip.shape == (1, 3, 32, 32)
    h = state.features.clone().requires_grad_(True)
    img = g.resume(type(state)(h, state.skip, 3), w, noises)
    assert img.shape == (1, 3, 1024, 1024)
    img.square().mean().backward()
    assert h.grad is not None and torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0
