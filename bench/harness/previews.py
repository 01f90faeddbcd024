"""A few reconstructions of every evaluation cell, kept small (uint8, at most 256 pixels a side) in the
store as ``previews/<cell key>.pt``, for the report's reconstruction grids (bench/report/recon_grid.py)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from bench.core.io import atomic_torch_save
from bench.harness.runner import CellResult, image_to_uint8

PREVIEW_IMAGES = 4  # images kept per cell
PREVIEW_SIDE = 256  # larger images are shrunk (area) to this side


def shrink(x: torch.Tensor, side: int = PREVIEW_SIDE) -> torch.Tensor:
    return F.interpolate(x, size=(side, side), mode="area") if x.shape[-1] > side else x


def save_previews(result: CellResult, store_root: str | Path) -> Path | None:
    """Write the cell's first images (reference, measurement view, reconstruction); None when it kept none."""
    if not result.images or result.status != "ok":
        return None
    n = min(PREVIEW_IMAGES, len(result.images["reference"]))
    blob = {"image_ids": [r["image_id"] for r in result.rows[:n]], "format": "uint8: x = u8 / 127.5 - 1",
            **{k: image_to_uint8(shrink(v[:n].float())) for k, v in result.images.items()}}
    return atomic_torch_save(blob, Path(store_root) / "previews" / f"{result.cell.key}.pt")


def load_previews(store_root: str | Path, key: str) -> dict | None:
    path = Path(store_root) / "previews" / f"{key}.pt"
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None
