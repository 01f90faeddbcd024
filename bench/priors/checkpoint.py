"""Strict loading of rosinality-format StyleGAN-2 checkpoints.

Every parameter key must be present with the right shape; the deterministic buffers (blur
and upsample kernels, stored noises) are optional because distributed copies differ there
(the rosinality/NVIDIA StyleGAN-2 code). Anything else fails with an error naming the keys: the official ILO
code loads with ``strict=False``, which silently leaves mis-named weights random.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from bench.priors.stylegan2 import Generator

_OPTIONAL_BUFFER = re.compile(r"^(convs\.\d+\.conv\.blur\.kernel|to_rgbs\.\d+\.upsample\.kernel|noises\.noise_\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that does not fit the generator; the message names the keys."""


def _strip_prefix(sd: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def read_checkpoint(path: str | Path, key: str = "g_ema") -> tuple[dict[str, torch.Tensor], dict]:
    """(generator state dict, the other top-level entries) of a checkpoint file.

    Accepts ``{'g_ema': sd, 'latent_avg': ...}`` (rosinality), ``{'generator': sd, ...}``
    (our embedded format) or a bare state dict. Loaded with ``weights_only=True``.
    """
    from bench.core.io import UnreadableFileError, load_tensors

    path = Path(path)
    try:
        obj = load_tensors(path, "a generator checkpoint")
    except UnreadableFileError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
    for k in (key, "generator", "g_ema"):
        if k in obj and isinstance(obj[k], dict):
            rest = {kk: vv for kk, vv in obj.items() if kk != k}
            return _strip_prefix(obj[k]), rest
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefix(obj), {}
    raise CheckpointError(f"{path}: no generator state dict under {key!r} (top-level keys: {sorted(obj)})")


def check_state_dict(g: Generator, sd: dict[str, torch.Tensor]) -> None:
    """Raise CheckpointError naming every missing, unexpected or mis-shaped key."""
    expected = g.state_dict()
    params = {name for name, _ in g.named_parameters()}
    missing = [k for k in expected if k not in sd and (k in params or not _OPTIONAL_BUFFER.match(k))]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in sd and sd[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes)}")
    if problems:
        raise CheckpointError("checkpoint does not fit the generator: " + " | ".join(problems))


def load_state_dict_strict(g: Generator, sd: dict[str, torch.Tensor]) -> Generator:
    check_state_dict(g, sd)
    g.load_state_dict(sd, strict=False)  # only optional buffers can be absent at this point
    return g


def infer_config(sd: dict[str, torch.Tensor]) -> dict:
    """Generator constructor arguments implied by a rosinality-layout state dict."""
    try:
        style_dim = sd["style.1.weight"].shape[0]
        n_mlp = len({k.split(".")[1] for k in sd if k.startswith("style.")})
        n_blocks = len({k.split(".")[1] for k in sd if k.startswith("to_rgbs.")})
        channels = {4: sd["input.input"].shape[1]}
        for j in range(1, n_blocks + 1):
            channels[2 ** (j + 2)] = sd[f"convs.{2 * j - 1}.conv.weight"].shape[1]
        img_channels = sd["to_rgb1.bias"].shape[1]
    except KeyError as err:
        raise CheckpointError(f"cannot infer the generator config: key {err} missing") from err
    return dict(size=2 ** (n_blocks + 2), style_dim=style_dim, n_mlp=n_mlp, channels=channels, img_channels=img_channels)


def load_generator(path: str | Path, config: dict | None = None, key: str = "g_ema") -> tuple[Generator, dict]:
    """A Generator built from (or checked against) ``config`` with the file's weights.

    Returns the generator (eval mode, no grad) and the checkpoint's other entries
    (e.g. ``latent_avg``).
    """
    sd, rest = read_checkpoint(path, key)
    cfg = config or rest.get("generator_config") or infer_config(sd)
    g = Generator(**cfg)
    try:
        load_state_dict_strict(g, sd)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return g.eval().requires_grad_(False), rest
