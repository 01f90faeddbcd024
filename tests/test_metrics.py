"""MSE/PSNR on known inputs; LPIPS plumbing (unavailable path, and a FAKE random backbone).

The fake-backbone numbers only prove the wiring (lookup, key mapping, shapes, 0 for
identical images); they are meaningless as LPIPS values and must never be reported.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from bench.core import metrics
from bench.core.assets import CACHE_ENV, get_asset


def test_mse_psnr_known_values():
    x = torch.zeros(3, 1, 4, 4)
    y = x + 0.1
    assert torch.allclose(metrics.mse(x, y), torch.full((3,), 0.01, dtype=torch.float64))
    expected = 10 * math.log10(4 / 0.01)  # = 10 log10(1 / 0.05**2) on the [0, 1] scale
    assert torch.allclose(metrics.psnr(x, y), torch.full((3,), expected, dtype=torch.float64))
    assert abs(expected - 26.0206) < 1e-4
    assert metrics.psnr(torch.full((1, 1, 2, 2), -1.0), torch.ones(1, 1, 2, 2)).item() == pytest.approx(0.0)  # max error
    assert metrics.psnr(x, x).isinf().all()


def test_metrics_per_image():
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[1] += 0.2
    assert metrics.mse(x, y).tolist() == pytest.approx([0.0, 0.04])
    with pytest.raises(ValueError, match="same shape"):
        metrics.mse(x, y[:1])


@pytest.fixture
def empty_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(CACHE_ENV, str(cache))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path


@pytest.mark.parametrize("net,fname", [("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth")])
def test_lpips_unavailable_gives_no_number(empty_places: Path, net: str, fname: str):
    m = metrics.LpipsMetric(net)
    assert not m.available
    assert m(torch.zeros(2, 1, 32, 32), torch.ones(2, 1, 32, 32)) is None
    assert fname in m.reason and str(empty_places / "cache") in m.reason
    assert str(empty_places / "hub" / "checkpoints" / fname) in m.reason
    assert get_asset(metrics.LPIPS_ASSETS[net]).missing_message() in m.reason
    out = metrics.compute_metrics(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4), m)
    assert out["lpips"] is None and out["lpips_reason"] == m.reason
    assert metrics.nan_if_none(out["lpips"], 2).isnan().all()
    with pytest.raises(FileNotFoundError, match=fname):
        metrics.load_lpips_model(net)


def _fake_alexnet_state() -> dict[str, torch.Tensor]:
    """Random weights in torchvision's AlexNet key layout (features only + a tiny classifier stub)."""
    import torchvision

    g = torch.Generator().manual_seed(0)
    shapes = {k: v.shape for k, v in torchvision.models.alexnet().features.state_dict().items()}
    sd = {f"features.{k}": torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}
    sd["classifier.1.weight"] = torch.zeros(2, 2)  # ignored by the loader, as the real file's head is
    return sd


@pytest.fixture(scope="module")
def fake_state() -> dict[str, torch.Tensor]:
    return _fake_alexnet_state()


def test_lpips_fake_backbone_plumbing(empty_places: Path, fake_state):
    torch.save(fake_state, empty_places / "cache" / "alexnet-owt-7be5be79.pth")
    m = metrics.LpipsMetric("alex")
    assert m.available and m.reason == ""
    # the backbone really is the file's weights, not torchvision's random init
    assert torch.equal(m.model().net.slice2._modules["3"].weight, fake_state["features.3.weight"])
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 32, 32, generator=g) * 2 - 1  # grayscale, 32 px: repeated and upsampled
    y = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    same = m(x, x)
    diff = m(x, y)
    assert same.shape == (3,) and same.abs().max() < 1e-6
    assert (diff > 0).all()
    assert torch.allclose(m(x[1:2], y[1:2]), diff[1:2], atol=1e-6)  # per image, batch-independent
    assert m(x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)).shape == (3,)  # RGB input works too


def test_lpips_found_in_torch_hub_checkpoints(empty_places: Path, fake_state):
    hub = empty_places / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(fake_state, hub / "alexnet-owt-7be5be79.pth")
    m = metrics.LpipsMetric("alex")
    assert m.available and m.path == hub / "alexnet-owt-7be5be79.pth"


def test_lpips_key_mismatch_fails_loudly(empty_places: Path, fake_state):
    bad = {k: v for k, v in fake_state.items() if k != "features.8.bias"}
    torch.save(bad, empty_places / "cache" / "alexnet-owt-7be5be79.pth")
    with pytest.raises(ValueError, match=r"missing \['features.8.bias'\]"):
        metrics.load_lpips_model("alex")


def test_prepare_for_lpips():
    x = torch.zeros(2, 1, 32, 32)
    assert metrics.prepare_for_lpips(x).shape == (2, 3, 64, 64)
    assert metrics.prepare_for_lpips(torch.zeros(1, 3, 128, 128)).shape == (1, 3, 128, 128)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        metrics.prepare_for_lpips(torch.zeros(1, 2, 64, 64))
