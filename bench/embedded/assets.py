"""The embedded world's committed files, registered by name and loaded as a Prior.

``generator.pt`` holds the EMA generator's state dict, its constructor config and the
Gaussian fit of its mapping network (the proxy); ``score_layer{k}.pt`` files hold score
priors of the state after generator layer k (see bench.priors.score_prior).
"""
from __future__ import annotations

from pathlib import Path

import torch

from bench.core.assets import EMBEDDED_DIR, Asset, asset_path, register_asset
from bench.priors.checkpoint import load_state_dict_strict, read_checkpoint
from bench.priors.mapping_proxy import MappingProxy
from bench.priors.prior import Prior
from bench.priors.stylegan2 import Generator

GENERATOR_FILE = "generator.pt"
SCORE_FILE = "score_layer{layer}.pt"

register_asset(Asset(
    "embedded-generator", GENERATOR_FILE, "Fashion-MNIST 32x32 StyleGAN-2 (EMA weights + mapping Gaussian fit)",
    "python -m bench.embedded train --stage gan (see bench/embedded/weights/generator.md)", embedded=True))


def save_generator(g: Generator, fit: dict[str, torch.Tensor], path: Path, meta: dict | None = None) -> Path:
    from bench.priors.stylegan2 import generator_config

    tmp = path.with_suffix(".tmp")
    torch.save({"generator": g.state_dict(), "generator_config": generator_config(g),
                "gaussian_fit": {k: v.float().cpu() for k, v in fit.items()}, "meta": meta or {}}, tmp)
    tmp.replace(path)
    return path


def load_embedded_generator(path: Path | None = None) -> tuple[Generator, MappingProxy, dict]:
    path = Path(path) if path is not None else asset_path("embedded-generator")
    sd, rest = read_checkpoint(path, key="generator")
    g = Generator(**rest["generator_config"])
    load_state_dict_strict(g, sd)
    fit = rest["gaussian_fit"]
    return g.eval().requires_grad_(False), MappingProxy(fit["mean"], fit["std"]), rest.get("meta", {})


def score_paths(folder: Path = EMBEDDED_DIR) -> dict[int, Path]:
    out = {}
    for p in sorted(folder.glob("score_layer*.pt")):
        out[int(p.stem.removeprefix("score_layer"))] = p
    return out


def load_embedded_prior(device: torch.device | str = "cpu") -> Prior:
    from bench.priors.score_prior import ScorePrior

    g, proxy, _ = load_embedded_generator()
    scores = {k: ScorePrior.load(p) for k, p in score_paths().items()}
    return Prior("embedded", g, proxy, scores).to(device)
