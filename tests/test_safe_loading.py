"""Weights files a user supplies are read without running code, and a bad one is named with what was wrong
(never torch's advice to disable safe loading)."""
from __future__ import annotations

import os

import pytest
import torch

from bench.core.io import UnreadableFileError, load_tensors
from bench.priors.checkpoint import CheckpointError, read_checkpoint
from bench.priors.mapping_proxy import MappingProxy, load_fit, load_or_fit
from bench.priors.score_prior import ScorePrior
from bench.priors.tiny import tiny_generator


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/should-never-exist",))


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "random.pth").write_bytes(os.urandom(4096))
    (tmp_path / "zeros.pth").write_bytes(b"\x00" * 1000)
    torch.save({"x": _Evil()}, tmp_path / "evil.pth")
    return tmp_path


@pytest.mark.parametrize("load", [
    lambda p: ScorePrior.from_official_file(p, "layer1", 0.0, 1.0),
    lambda p: ScorePrior.load(p),
    lambda p: load_fit(p),
    lambda p: load_tensors(p, "anything"),
])
def test_bad_files_are_named_and_never_suggest_unsafe_loading(bad_files, load):
    for name, fragment in (("random.pth", "not a tensor file"), ("zeros.pth", "not a tensor file"),
                           ("evil.pth", "can run code")):
        with pytest.raises(UnreadableFileError) as info:
            load(bad_files / name)
        msg = str(info.value)
        assert name in msg and fragment in msg and "weights_only" not in msg and "Traceback" not in msg
    assert not os.path.exists("/tmp/should-never-exist")


def test_generator_checkpoint_errors_name_the_file(bad_files):
    with pytest.raises(CheckpointError, match="random.pth: cannot read a generator checkpoint"):
        read_checkpoint(bad_files / "random.pth")


def test_gaussian_fit_std_shape_is_checked(tmp_path):
    g = tiny_generator()
    torch.save({"mean": torch.zeros(g.style_dim), "std": torch.ones(3)}, tmp_path / "fit.pt")
    with pytest.raises(ValueError, match=r"the Gaussian fit's std has shape \(3,\)"):
        load_or_fit(g, tmp_path / "fit.pt")
    torch.save({"mean": torch.zeros(g.style_dim), "std": torch.ones(g.style_dim)}, tmp_path / "fit.pt")
    assert isinstance(load_or_fit(g, tmp_path / "fit.pt"), MappingProxy)
