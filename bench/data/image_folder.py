"""Images from a folder (FFHQ-style), as generator-ready tensors.

Files are ``*.png``, ``*.jpg`` and ``*.jpeg`` (any case), taken in sorted order of their
path relative to the root so that "the first 8 images" means the same images on every
machine. Hidden files (``.name``, e.g. macOS ``._x.png``) are skipped. Each image is
center-cropped to a square (FFHQ is already square, so this is a no-op there), resized to
the generator resolution with PIL's bicubic filter (PIL widens the filter when shrinking,
i.e. it antialiases), converted to RGB (or grayscale for ``channels=1``) and scaled from its
full range to [-1, 1]. A file that cannot be decoded raises :class:`ImageLoadError` naming the
file, so a bad image is never silently skipped (which would shift which images are "the 30
test images").

Rules for files that are not plain 8-bit square images (none changes values silently):
- 16-bit images (PIL modes I;16*, I) are scaled from [0, 65535], not clipped at 255;
- an alpha channel that is fully opaque is dropped; one with any transparent pixel is refused
  (what lies behind it is unknown), naming the file;
- a non-square image is centre-cropped and an image smaller than the resolution is upscaled,
  each with an :class:`ImageWarning` naming the file;
- a grayscale file loaded as RGB (``channels=3``) is replicated to three channels with a warning
  (colourisation of it would be meaningless).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg")


class ImageLoadError(OSError):
    """An image file that exists but cannot be decoded or used; the message names the file."""


class ImageWarning(UserWarning):
    """An image was changed by a stated rule (crop, upscale, gray to RGB)."""


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_8bit_mode(im: Image.Image, path: Path, channels: int) -> Image.Image:
    """Apply the module's rules for bit depth, alpha and grayscale; returns an "L" or "RGB" image."""
    if im.mode in SIXTEEN_BIT_MODES:  # 16-bit grayscale: scale, do not clip (convert("L") clips at 255)
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), mode="L")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        if np.asarray(rgba)[..., 3].min() < 255:
            raise ImageLoadError(f"image {path} has transparent pixels (alpha channel): what lies behind them is "
                                 f"unknown; flatten it onto a background first")
        im = rgba.convert("RGB")
    if channels == 3 and im.mode in ("L", "1"):
        warnings.warn(f"{path}: grayscale image replicated to 3 channels (R = G = B)", ImageWarning, stacklevel=3)
    return im.convert("L" if channels == 1 else "RGB")


def list_images(root: str | Path, recursive: bool = False) -> list[Path]:
    """Sorted image paths under ``root``; a clear error if the folder is missing or has none."""
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist (expected a folder of "
                                f"{'/'.join(EXTENSIONS)} files, e.g. FFHQ images)")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder (expected a folder of {'/'.join(EXTENSIONS)} files)")
    candidates = root.rglob("*") if recursive else root.iterdir()
    paths = sorted(
        (p for p in candidates
         if p.is_file() and p.suffix.lower() in EXTENSIONS
         and not any(part.startswith(".") for part in p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not paths:
        hint = ""
        if not recursive and any(p.is_dir() for p in root.iterdir()):
            hint = " (it has subfolders: pass recursive=True to search them, as for FFHQ's 00000/ ... 69000/)"
        raise FileNotFoundError(f"no images in {root}: expected files ending in "
                                f"{', '.join(EXTENSIONS)} (any case){hint}")
    return paths


def load_image(path: str | Path, resolution: int, channels: int = 3) -> torch.Tensor:
    """One image as float [channels, resolution, resolution] in [-1, 1]."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            raw = im.copy()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, EOFError... for bad files
        raise ImageLoadError(f"cannot read image {path}: {err}") from err
    im = _to_8bit_mode(raw, path, channels)
    w, h = im.size
    if w != h:  # center crop, so faces/garments are not stretched
        warnings.warn(f"{path}: {w}x{h} image centre-cropped to {min(w, h)}x{min(w, h)}", ImageWarning, stacklevel=2)
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    if im.size[0] < resolution:
        warnings.warn(f"{path}: {im.size[0]}x{im.size[0]} image upscaled to {resolution}x{resolution}", ImageWarning,
                      stacklevel=2)
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.uint8)
    x = torch.from_numpy(arr.copy()).float().div_(127.5).sub_(1.0)
    return x.unsqueeze(0) if channels == 1 else x.permute(2, 0, 1).contiguous()


class ImageFolder(torch.utils.data.Dataset):
    """Dataset of ``(image [C, R, R] in [-1, 1], file name relative to root)``, sorted by name."""

    def __init__(self, root: str | Path, resolution: int, channels: int = 3,
                 recursive: bool = False, limit: int | None = None):
        if resolution < 1:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.root = Path(root).expanduser()
        self.resolution, self.channels = int(resolution), int(channels)
        self.paths = list_images(self.root, recursive=recursive)
        if limit is not None:
            if len(self.paths) < limit:
                raise ValueError(f"{self.root} has {len(self.paths)} images, {limit} requested")
            self.paths = self.paths[:limit]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        p = self.paths[i]
        return load_image(p, self.resolution, self.channels), p.relative_to(self.root).as_posix()

    def names(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.paths]

    def load_all(self) -> tuple[torch.Tensor, list[str]]:
        """All images stacked [N, C, R, R] with their names (small sets: 8 tuning / 30 test)."""
        items = [self[i] for i in range(len(self))]
        return torch.stack([x for x, _ in items]), [n for _, n in items]


def load_folder(root: str | Path, resolution: int, channels: int = 3, recursive: bool = False,
                limit: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """Shortcut: the first ``limit`` (default all) images of a folder, stacked, with names."""
    return ImageFolder(root, resolution, channels, recursive, limit).load_all()
