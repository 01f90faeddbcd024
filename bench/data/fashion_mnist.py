"""Fashion-MNIST from its idx files (Debian package ``dataset-fashion-mnist`` by default).

Images are padded from 28x28 to 32x32 with the background value and scaled to [-1, 1],
so that the 32x32 StyleGAN-2 sees whole garments.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "FASHION_MNIST_DIR"
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def default_dir() -> Path:
    return Path(os.environ.get(ENV_VAR, DEBIAN_DIR))


def _open(path: Path):
    for p in (path, path.with_name(path.name + ".gz")):
        if p.exists():
            return gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")
    raise FileNotFoundError(
        f"Fashion-MNIST file {path}(.gz) not found. Install it with "
        f"`apt-get install dataset-fashion-mnist` (files go to {DEBIAN_DIR}) or set ${ENV_VAR} to a folder "
        f"holding the idx files."
    )


def read_idx(path: Path) -> np.ndarray:
    """Parse one idx file (images: uint8 [N, 28, 28]; labels: uint8 [N])."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short to be an idx file")
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} values, found {body.size} (truncated file?)")
    return body.reshape(dims)


def load_split(split: str = "train", root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw uint8 images [N, 28, 28] and labels [N] of one split."""
    if split not in _FILES:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(_FILES)}")
    root = Path(root) if root is not None else default_dir()
    img_name, lbl_name = _FILES[split]
    images, labels = read_idx(root / img_name), read_idx(root / lbl_name)
    if len(images) != len(labels):
        raise ValueError(f"{root}: {len(images)} images but {len(labels)} labels in split {split!r}")
    return images, labels


def to_tensor(images: np.ndarray, size: int = 32) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float [N, 1, size, size] in [-1, 1], zero-padded (background -1)."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).float().div_(127.5).sub_(1.0).unsqueeze(1)
    pad = size - x.shape[-1]
    if pad < 0:
        raise ValueError(f"cannot pad {x.shape[-1]}px images to {size}px")
    return torch.nn.functional.pad(x, [pad // 2, pad - pad // 2, pad // 2, pad - pad // 2], value=-1.0)


def load_tensor(split: str = "train", root: str | Path | None = None, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split(split, root)
    return to_tensor(images, size), torch.from_numpy(labels.astype(np.int64))
