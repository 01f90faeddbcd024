"""The embedded attribute classifier and the quality metrics built on it."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from bench.core.assets import get_asset
from bench.data.fashion_mnist import DEBIAN_DIR, load_tensor
from bench.embedded import quality
from bench.embedded.classifier import augment, build_classifier, load_classifier, predict

METHODS = ["eigh"] + (["scipy"] if importlib.util.find_spec("scipy") else [])


@pytest.fixture(scope="module")
def test_subset() -> tuple[torch.Tensor, torch.Tensor]:
    if not (DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").exists() and not (DEBIAN_DIR / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"Fashion-MNIST not installed at {DEBIAN_DIR}")
    x, y = load_tensor("test", DEBIAN_DIR)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:2000]
    return x[idx], y[idx]


def test_committed_classifier_accuracy(test_subset):
    torch.set_num_threads(2)
    assert get_asset("fmnist-classifier").embedded and get_asset("fmnist-classifier").exists()
    model = load_classifier("cpu")
    x, y = test_subset
    acc = (predict(model, x).argmax(1) == y).float().mean().item()
    assert acc >= 0.90, acc
    assert model.features(x[:4]).shape == (4, 128)
    assert torch.load(get_asset("fmnist-classifier").path, weights_only=True)["config"]["num_classes"] == 10


def test_architecture_is_small_and_augment_keeps_shape():
    assert sum(p.numel() for p in build_classifier().parameters()) < 500_000
    x = torch.rand(8, 1, 32, 32) * 2 - 1
    out = augment(x, torch.Generator().manual_seed(0), shift=2, flip=True)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("method", METHODS)
def test_frechet_identical_is_zero(method):
    rng = np.random.default_rng(0)
    mu, sigma = quality.gaussian_stats(rng.normal(size=(500, 16)))
    assert quality.frechet_distance(mu, sigma, mu, sigma, method) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_frechet_closed_form_1d_and_diagonal(method):
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    d = quality.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]), method)
    assert d == pytest.approx(9.0 + (2.0 - 3.0) ** 2)
    # diagonal: sum over coordinates of the 1-D formula
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    want = ((m1 - m2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert quality.frechet_distance(m1, np.diag(v1), m2, np.diag(v2), method) == pytest.approx(want)


@pytest.mark.parametrize("method", METHODS)
def test_frechet_symmetric(method):
    rng = np.random.default_rng(1)
    a = quality.gaussian_stats(rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)))
    b = quality.gaussian_stats(rng.normal(size=(300, 8)) + 0.5)
    ab, ba = quality.frechet_distance(*a, *b, method), quality.frechet_distance(*b, *a, method)
    assert ab > 0 and ab == pytest.approx(ba, rel=1e-8)


def test_methods_agree():
    if "scipy" not in METHODS:
        pytest.skip("scipy not installed")
    rng = np.random.default_rng(2)
    a = quality.gaussian_stats(rng.normal(size=(400, 32)))
    b = quality.gaussian_stats(rng.normal(size=(400, 32)) * 1.3)
    assert quality.frechet_distance(*a, *b, "eigh") == pytest.approx(quality.frechet_distance(*a, *b, "scipy"), rel=1e-6)


def test_class_shares_and_confidence_on_known_logits():
    logits = torch.full((4, 3), -1e4)
    logits[[0, 1, 2, 3], [2, 2, 0, 2]] = 0.0  # predictions 2, 2, 0, 2 with certainty
    assert quality.class_histogram(logits).tolist() == [1, 0, 3]
    assert quality.class_shares(logits, 5).tolist() == [0.25, 0.0, 0.75, 0.0, 0.0]
    assert quality.mean_max_softmax(logits) == pytest.approx(1.0)
    assert quality.mean_max_softmax(torch.zeros(2, 4)) == pytest.approx(0.25)


def test_feature_stats_runs_classifier(test_subset):
    model = build_classifier().eval()
    stats = quality.feature_stats(test_subset[0][:64], model, batch=20)
    assert stats.n == 64 and stats.mu.shape == (128,) and stats.sigma.shape == (128, 128)
    assert stats.shares.sum() == pytest.approx(1.0) and 0.1 <= stats.confidence <= 1.0
    assert quality.fid_between(stats, stats) == pytest.approx(0.0, abs=1e-6)
