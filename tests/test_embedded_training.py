"""The embedded world: GAN training resumes exactly after a kill; the committed assets load by name."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.core.assets import EMBEDDED_DIR
from bench.embedded import train_gan
from bench.embedded.train_gan import GanConfig

TINY_G = dict(size=32, style_dim=16, n_mlp=1, channels={4: 16, 8: 16, 16: 8, 32: 8}, img_channels=1)
BATCH, ITERS = 4, 6


@pytest.fixture
def fake_data(monkeypatch):
    """A small random 'training split' instead of Fashion-MNIST (no Debian data needed)."""
    x = torch.rand(64, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    monkeypatch.setattr(train_gan, "load_tensor", lambda split: (x, torch.zeros(len(x), dtype=torch.long)))


def _cfg(out: Path) -> GanConfig:
    return GanConfig(out=str(out), max_kimg=ITERS * BATCH / 1000, batch=BATCH, ckpt_every=2, sample_every=10**6,
                     r1_every=2, threads=1, device="cpu", generator=dict(TINY_G))


def _kill_during_iteration(monkeypatch, n: int) -> None:
    """Raise (like a SIGKILL would stop it) inside iteration ``n`` (1-based): each iteration draws latents twice."""
    real, calls = train_gan._mixing_latents, [0]

    def draw(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2 * (n - 1) + 2:  # the generator step's draw of iteration n
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_gan, "_mixing_latents", draw)


def _state(path: Path) -> dict:
    return torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=False)


def _assert_same(a: dict, b: dict) -> None:
    assert a["iter"] == b["iter"] == ITERS
    for key in ("g", "d", "g_ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for key in ("opt_g", "opt_d"):
        for i, s in a[key]["state"].items():
            for name, v in s.items():
                assert torch.equal(v, b[key]["state"][i][name]), f"{key} state {i}.{name} differs"
    assert torch.equal(a["rng"], b["rng"]) and torch.equal(a["torch_rng"], b["torch_rng"])


def test_gan_killed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, fake_data, one_thread):
    train_gan.train(_cfg(tmp_path / "straight"))
    with monkeypatch.context() as m:
        _kill_during_iteration(m, 5)  # after the checkpoint of iteration 4: iteration 5's work is lost
        with pytest.raises(KeyboardInterrupt):
            train_gan.train(_cfg(tmp_path / "resumed"))
    assert _state(tmp_path / "resumed")["iter"] == 4
    train_gan.train(_cfg(tmp_path / "resumed"))
    _assert_same(_state(tmp_path / "straight"), _state(tmp_path / "resumed"))


@pytest.mark.skipif(not (EMBEDDED_DIR / "generator.pt").exists(), reason="embedded generator not committed")
def test_committed_embedded_world_loads_through_the_catalog():
    from bench.embedded.assets import load_embedded_generator
    from bench.priors.catalog import load_prior

    prior = load_prior("embedded")
    assert sorted(prior.scores) == [0, 1]
    for k, sp in prior.scores.items():
        assert sp.layer == k and tuple(sp.config.shape) == tuple(prior.generator.layer_shape(k))
        assert sp.metadata["source"] == "ilo" and sp.metadata["eval_on"] == "held-out states"
    _, _, meta = load_embedded_generator()
    # v2 as installed 2026-11-30: 762 kimg, mostly on 2 CPU cores with 4 min on an H200; the card states the same
    assert meta["kimg"] == 761.6 and meta["iterations"] == 23800 and "H200" in meta["history"]
    assert f"{meta['kimg']} kimg ({meta['iterations']} iterations" in (EMBEDDED_DIR / "generator.md").read_text()


def test_a_training_checkpoint_is_measured_without_installing_it(tmp_path, monkeypatch, fake_data, one_thread):
    """`figures --checkpoint` reads the EMA generator and the training progress from a checkpoint; the stats
    separate a real reference from itself (FID ~ 0) and from the barely trained generator (FID clearly > 0)."""
    from bench.embedded import figures

    train_gan.train(_cfg(tmp_path / "gan"))
    x = train_gan.load_tensor("train")[0]
    monkeypatch.setattr(figures, "load_tensor", lambda split: (x, None))
    res = figures.measure_checkpoint(tmp_path / "gan" / "checkpoint.pt", n=64)
    assert res["iterations"] == ITERS and res["kimg"] == pytest.approx(ITERS * BATCH / 1000)
    assert res["device"] == "cpu" and res["samples"]["n"] == 64
    assert res["samples"]["fid_vs_test"] > 1.0
    same = figures.stats_dict(figures.feature_stats(x), figures.feature_stats(x))
    assert same["fid_vs_test"] < 1e-3
