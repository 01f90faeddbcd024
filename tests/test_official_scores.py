"""Official SGILO score checkpoints: registered with metadata; a file in the official layout loads."""
from __future__ import annotations

import pytest
import torch

from bench.core.assets import MissingAssetError, get_asset
from bench.priors.official_scores import OFFICIAL_SCORES, load_official_score
from bench.priors.score_vit import build_official, load_official_state_dict


def test_every_official_checkpoint_is_registered_with_metadata():
    for name, meta in OFFICIAL_SCORES.items():
        a = get_asset(f"sgilo-score-{name}")
        assert a.meta["shape"] == meta["shape"] and a.meta["sde"]["beta_max"] == 20.0
        assert f"{name}.pth" in a.missing_message()
    assert OFFICIAL_SCORES["layer1"]["our_layer"] == 0 and OFFICIAL_SCORES["syn_layer3"]["hot_steps"] == 5


def test_missing_official_checkpoint_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path))
    with pytest.raises(MissingAssetError, match="sgilo_layer1.pth"):
        load_official_score("layer1")


def test_official_layout_file_loads_with_metadata(tmp_path, monkeypatch):
    """A random-weight layer1 network saved as the official code saves it (a DataParallel state dict)."""
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path))
    torch.manual_seed(0)
    ref = build_official("layer1")
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, tmp_path / "sgilo_layer1.pth")
    prior = load_official_score("layer1")
    assert prior.layer == 0 and prior.metadata["shape"] == [512, 4, 4] and prior.metadata["hot_steps"] == 1
    assert prior.norm_min == pytest.approx(-1.4007) and prior.norm_max == pytest.approx(2.3453)
    x, t = torch.rand(2, 512, 4, 4), torch.tensor([0.3, 0.7])
    by_hand = build_official("layer1")
    load_official_state_dict(by_hand, {f"module.{k}": v for k, v in ref.state_dict().items()})
    torch.testing.assert_close(prior.model(x, t), by_hand.eval()(x, t))


def test_a_broken_score_file_stops_only_what_needs_it(tmp_path, monkeypatch):
    """A damaged sgilo_layer1.pth: the FFHQ scores still load (layer 1's is fine), layer 0 is 'missing'
    with the file and the reason, so CSGM/ILO cells are unaffected and a SGILO round on layer 0 names it."""
    from bench.priors.official_scores import load_ffhq_scores

    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path))
    (tmp_path / "sgilo_layer1.pth").write_bytes(b"\x00" * 1000)
    torch.save(build_official("layer2").state_dict(), tmp_path / "sgilo_layer2.pth")
    scores, missing = load_ffhq_scores()
    assert sorted(scores) == [1]
    assert "sgilo_layer1.pth cannot be used" in missing[0] and "not a tensor file" in missing[0]
    assert "sgilo_syn_layer3.pth" in missing[2]  # absent: the usual missing-file message
