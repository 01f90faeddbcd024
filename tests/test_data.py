"""Image-folder loading and the committed Fashion-MNIST evaluation set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import evalset as es
from bench.data import fashion_mnist as fm
from bench.data.image_folder import ImageFolder, ImageLoadError, ImageWarning, list_images, load_folder, load_image


# ----------------------------------------------------------------------------- image folder
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    Image.new("RGB", (40, 40), (255, 255, 255)).save(tmp_path / "b.png")
    Image.new("RGB", (50, 30), (0, 0, 0)).save(tmp_path / "a.JPG", quality=95)  # non-square, upper-case ext
    Image.new("L", (20, 20), 128).save(tmp_path / "c.jpeg")
    Image.new("RGBA", (8, 8), (255, 0, 0, 255)).save(tmp_path / "d.PNG")  # alpha present but fully opaque
    Image.new("RGB", (8, 8)).save(tmp_path / ".hidden.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_order_shape_range(folder: Path):
    ds = ImageFolder(folder, resolution=16)
    assert ds.names() == ["a.JPG", "b.png", "c.jpeg", "d.PNG"]
    x, names = ds.load_all()
    assert names == ds.names()
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x[0], torch.full_like(x[0], -1.0), atol=0.02)  # black jpg
    assert torch.equal(x[1], torch.ones_like(x[1]))  # white png
    assert torch.allclose(x[2], torch.full_like(x[2], 128 / 127.5 - 1), atol=1e-6)  # gray -> RGB
    assert torch.allclose(x[3, 0], torch.ones(16, 16)) and torch.allclose(x[3, 1:], -torch.ones(2, 16, 16))  # opaque alpha dropped


def test_folder_grayscale_and_limit(folder: Path):
    x, names = load_folder(folder, resolution=8, channels=1, limit=2)
    assert x.shape == (2, 1, 8, 8) and names == ["a.JPG", "b.png"]
    with pytest.raises(ValueError, match="4 images, 5 requested"):
        ImageFolder(folder, 8, limit=5)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path):
    arr = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(arr).save(tmp_path / "deep.png")  # a 16-bit grayscale PNG (mode I;16)
    x = load_image(tmp_path / "deep.png", 8, channels=1)[0]
    expected = torch.from_numpy(np.round(arr / 257.0)).float() / 127.5 - 1
    torch.testing.assert_close(x, expected)
    assert (x >= 0.999).float().mean() < 0.05  # clipping at 255 put 97% of the pixels at +1


def test_transparent_image_is_refused_and_odd_images_warn(tmp_path: Path):
    Image.new("RGBA", (8, 8), (255, 0, 0, 10)).save(tmp_path / "see_through.png")
    with pytest.raises(ImageLoadError, match="see_through.png has transparent pixels"):
        load_image(tmp_path / "see_through.png", 8)
    Image.new("RGB", (7, 5)).save(tmp_path / "small.png")
    with pytest.warns(ImageWarning, match=r"small.png: 7x5 image centre-cropped to 5x5"):
        with pytest.warns(ImageWarning, match=r"small.png: 5x5 image upscaled to 16x16"):
            load_image(tmp_path / "small.png", 16)
    Image.new("L", (16, 16), 50).save(tmp_path / "gray.png")
    with pytest.warns(ImageWarning, match="gray.png: grayscale image replicated to 3 channels"):
        assert load_image(tmp_path / "gray.png", 16).shape == (3, 16, 16)


def test_corrupt_file_named(folder: Path):
    bad = folder / "b2.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    ds = ImageFolder(folder, 8)
    with pytest.raises(ImageLoadError, match="b2.png"):
        ds.load_all()
    trunc = folder / "e.png"
    trunc.write_bytes((folder / "b.png").read_bytes()[:60])
    with pytest.raises(ImageLoadError, match="cannot read image .*e.png"):
        ds = ImageFolder(folder, 8)
        ds[ds.names().index("e.png")]


def test_missing_and_empty_folder(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"no images in .*\.png"):
        list_images(tmp_path)
    sub = tmp_path / "00000"
    sub.mkdir()
    Image.new("RGB", (4, 4)).save(sub / "00001.png")
    with pytest.raises(FileNotFoundError, match="recursive=True"):
        list_images(tmp_path)
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["00001.png"]


# ----------------------------------------------------------------------------- evaluation set
def _idx(name: str) -> set[int]:
    return set(es.evalset_indices(name))


def test_evalset_counts_and_disjoint():
    tune, test, fair = _idx("tune"), _idx("test"), _idx("fairness")
    assert (len(tune), len(test), len(fair)) == (8, 30, 128)
    assert not tune & test and not fair & tune and not fair & test
    m = es.load_manifest()
    assert m["source"]["split"] == "test" and m["seed"] == es.SEED
    for name in es.SETS:
        e = m["sets"][name]
        assert all(0 <= i < 10000 for i in e["indices"])  # test split has 10000 images
        assert e["class_names"] == [fm.CLASS_NAMES[c] for c in e["labels"]]


def test_evalset_stratified_and_groups():
    _, y_tune = es.load_evalset("tune")
    _, y_test = es.load_evalset("test")
    assert len(set(y_tune.tolist())) == 8
    assert sorted(torch.bincount(y_test, minlength=10).tolist()) == [3] * 10
    groups = es.load_fairness_groups()
    assert list(groups) == ["Sandal", "Sneaker"]
    assert all(g.shape == (64, 1, 32, 32) for g in groups.values())
    _, y = es.load_evalset("fairness")
    assert y[:64].eq(5).all() and y[64:].eq(7).all()


def test_evalset_tensors():
    x, y = es.load_evalset("test")
    assert x.shape == (30, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1
    assert x[..., :2, :].eq(-1).all() and x[..., :, -2:].eq(-1).all()  # padding is background
    raw, labels, _ = es.load_raw("test")
    assert torch.equal(x, fm.to_tensor(raw)) and torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert sum(p.stat().st_size for p in es.EVALSET_DIR.iterdir()) < 300_000
    with pytest.raises(ValueError, match="unknown evaluation set"):
        es.load_evalset("train")


def test_evalset_tamper_detected(tmp_path: Path):
    import shutil

    shutil.copy(es.EVALSET_DIR / es.NPZ_NAME, tmp_path / es.NPZ_NAME)
    m = es.load_manifest()
    m["sets"]["test"]["indices"][0] += 1
    (tmp_path / es.MANIFEST_NAME).write_text(es._manifest_text(m))
    with pytest.raises(ValueError, match="does not match"):
        es.load_evalset("test", folder=tmp_path)


_HAVE_DEBIAN = (fm.default_dir() / "t10k-images-idx3-ubyte.gz").exists() or (fm.default_dir() / "t10k-images-idx3-ubyte").exists()
needs_debian = pytest.mark.skipif(not _HAVE_DEBIAN, reason=f"Fashion-MNIST idx files not found in {fm.default_dir()} "
                                  "(apt-get install dataset-fashion-mnist, or set $FASHION_MNIST_DIR)")


@needs_debian
def test_evalset_equals_debian_test_split():
    images, labels = fm.load_split("test")
    for name in es.SETS:
        raw, lab, idx = es.load_raw(name)
        assert np.array_equal(raw, images[idx]) and np.array_equal(lab, labels[idx])


@needs_debian
def test_evalset_rebuild_identical(tmp_path: Path):
    es.build(tmp_path)
    for n in (es.MANIFEST_NAME, es.NPZ_NAME):
        assert (tmp_path / n).read_bytes() == (es.EVALSET_DIR / n).read_bytes(), n
