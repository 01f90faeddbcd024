"""Fashion-MNIST idx reader: parsing, padding, and errors that name the file."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from bench.data.fashion_mnist import load_split, read_idx, to_tensor


def write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def test_reads_gz_and_plain_idx_and_pads(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", imgs)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(5, dtype=np.uint8), gz=False)
    x, y = load_split("train", tmp_path)
    assert np.array_equal(x, imgs) and list(y) == [0, 1, 2, 3, 4]
    t = to_tensor(x)
    assert t.shape == (5, 1, 32, 32) and float(t.min()) >= -1 and float(t.max()) <= 1
    assert (t[:, :, :2] == -1).all() and (t[:, :, :, -2:] == -1).all()  # padding is background
    np.testing.assert_allclose(t[0, 0, 2:30, 2:30].numpy(), imgs[0] / 127.5 - 1, atol=1e-6)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_split("train", tmp_path)
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        read_idx(bad)
    trunc = tmp_path / "trunc"
    trunc.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="truncated"):
        read_idx(trunc)
    with pytest.raises(ValueError, match="valid"):
        load_split("validation", tmp_path)
