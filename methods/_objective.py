"""The measurement objective of the ILO family, ours or the official one (docs/DEVIATIONS.md rows 1, 2, 4, 5).

Ours: the mean squared error over the measurement entries (so a regulariser weight means the same at
every level), no perceptual term, no clamp. The official ILO and SGILO code (../shared/reference/
OFFICIAL_OBJECTIVE.md) differs in three ways, each a setting here:

* ``data_term="official"``: the official normalisation, ``Operator.official_loss_scale`` times ours
  (inpainting: a mean over all n pixel values, k/n of ours; compressed sensing: the operator without
  1/sqrt(m), m times ours);
* ``lpips`` > 0: the LPIPS-VGG "fill" term, LPIPS(x, fill(x, y)) where fill puts the observed values of
  y into x, both bicubic-downsampled to 256 when larger (ILO weight 1.0, SGILO 0.05). It needs the VGG
  backbone file; without it, or for a task with no fill, the term is left out and the run says so in
  every row (``objective_note``);
* ``clamp``: the generated image is clamped to [-1, 1] before the loss (SGILO).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from bench.core.metrics import prepare_for_lpips

DATA_TERMS = ("ours", "official")
OFFICIAL_LPIPS_SIZE = 256  # the official code compares bicubic-downsampled 256x256 images


def data_term(op, y_hat: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-image data term [B]: ours (mean over measurements) or the official normalisation."""
    if mode not in DATA_TERMS:
        raise ValueError(f"data_term must be one of {DATA_TERMS}, got {mode!r}")
    loss = op.loss(y_hat, y)
    return loss * op.official_loss_scale if mode == "official" else loss


def official_lpips_input(x: torch.Tensor) -> torch.Tensor:
    """What the official LPIPS term sees: larger images bicubic-downsampled to 256 (smaller ones are
    upsampled to LPIPS's minimum size, as the reported metric does; grayscale repeated to RGB)."""
    if x.shape[-1] > OFFICIAL_LPIPS_SIZE:
        x = F.interpolate(x, size=(OFFICIAL_LPIPS_SIZE, OFFICIAL_LPIPS_SIZE), mode="bicubic", align_corners=False)
    return prepare_for_lpips(x)


LpipsTerm = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def lpips_fill_term(model: torch.nn.Module, op) -> LpipsTerm:
    """image, y -> per-image LPIPS(image, fill(image, y)) [B], differentiable in the image."""

    def term(image: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        filled = op.fill(image, y)
        return model(official_lpips_input(image), official_lpips_input(filled)).flatten()

    return term


def make_lpips_term(weight: float, op, device: torch.device) -> tuple[LpipsTerm | None, str]:
    """The LPIPS fill term for ``weight`` > 0, or (None, why it is absent); ("" when no term was asked for)."""
    if weight <= 0:
        return None, ""
    if not op.has_fill:
        return None, f"LPIPS term (weight {weight:g}) absent: the official code defines no fill for this task"
    from bench.core.assets import MissingAssetError

    try:
        model = _cached_lpips_vgg(str(device))
    except MissingAssetError as err:
        return None, f"LPIPS term (weight {weight:g}) absent: {str(err).splitlines()[0]}"
    return lpips_fill_term(model, op), f"LPIPS-VGG fill term, weight {weight:g}"


_LPIPS: dict[str, torch.nn.Module] = {}


def _cached_lpips_vgg(device: str) -> torch.nn.Module:
    from bench.core.metrics import load_lpips_model

    if device not in _LPIPS:
        _LPIPS[device] = load_lpips_model("vgg", device)
    return _LPIPS[device]
