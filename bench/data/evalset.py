"""The committed evaluation set of the embedded (Fashion-MNIST) benchmark.

Why committed: the paper tunes on 8 images and reports on 30 held-out ones; which images
those are must be fixed, recorded and identical on every machine, and a run must not need
the Debian data package. So the images (uint8 28x28, from the TEST split only: the
embedded GAN is trained on the train split) live in ``bench/data/evalset/evalset.npz``
and ``manifest.json`` records their test-split indices, labels, class names, the seed and
the selection rule. ``python -m bench.data.evalset build`` regenerates both files
byte-for-byte from the idx files; ``check`` compares a rebuild with the committed files.

Selection (seeded, and independent of numpy's RNG so it cannot drift across versions):
every test index ``i`` gets the key ``sha256(f"{SALT}:{seed}:{i}")``; inside each class
indices are taken in key order, skipping exact pixel duplicates of an image already taken.

* ``tune`` (8): one image from each of 8 classes (10 classes cannot all fit in 8; the 8
  classes are the first 8 in key order of ``sha256(f"{SALT}:{seed}:class:{c}")``).
* ``test`` (30): the next 3 images of every class (3 x 10, fully stratified).
* ``fairness`` (64 + 64): the next 64 Sandal (label 5) and 64 Sneaker (label 7) images,
  the analogue of the paper's 64 men + 64 women. Both are low footwear whose silhouettes
  nearly coincide once the 32x32 image is downsampled x16 or x64 in pixel count (8x8 or
  4x4); they differ in fine detail (open straps vs a closed upper) that such a measurement
  destroys, so the prior has to fill it in (like gender from a heavily downsampled face),
  while a classifier separates them reliably at full resolution (see ``SEPARABILITY``).

The three sets are pairwise disjoint. Within a set (and within each fairness group,
Sandal first) images are stored in increasing test-index order.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from bench.data import fashion_mnist as fm

EVALSET_DIR = Path(__file__).resolve().parent / "evalset"
MANIFEST_NAME, NPZ_NAME = "manifest.json", "evalset.npz"
SALT, SEED = "sgilo-bench-evalset", 2022
N_TUNE, N_TEST_PER_CLASS, N_FAIR_PER_GROUP = 8, 3, 64
FAIRNESS_GROUPS = {"Sandal": 5, "Sneaker": 7}
SETS = ("tune", "test", "fairness")

# Measured once with separability_check() (logistic regression, train split -> test split,
# Sandal vs Sneaker, images padded to 32x32 and average-pooled); re-run it to verify.
SEPARABILITY = {
    "method": "bench.data.evalset.separability_check(): L2-regularised logistic regression on the pixels, "
              "fit on all train-split Sandal/Sneaker images, accuracy on all 2000 test-split ones",
    "test_accuracy": {"32x32": 0.961, "8x8": 0.9185, "4x4": 0.83},
    "note": "a linear model is a weak classifier (a CNN does better at 32x32); the low-resolution numbers show the "
            "groups are NOT indistinguishable at 8x8/4x4 (coarse cues such as the amount of material survive), "
            "only the fine detail is gone, so the fairness measurement is about which group the prior favours "
            "when that detail must be filled in",
}


def _key(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in (SALT,) + parts).encode()).digest()


def select_indices(images: np.ndarray, labels: np.ndarray, seed: int = SEED) -> dict[str, dict[int, list[int]]]:
    """Test-split indices per set and class: ``{set: {label: [indices]}}`` (the rule above)."""
    classes = sorted(int(c) for c in np.unique(labels))
    queues = {c: sorted((int(i) for i in np.flatnonzero(labels == c)), key=lambda i: _key(seed, i))
              for c in classes}
    taken_pixels: set[bytes] = set()

    def take(c: int, n: int) -> list[int]:
        out = []
        while len(out) < n:
            if not queues[c]:
                raise ValueError(f"class {c} has too few distinct images for the evaluation set")
            i = queues[c].pop(0)
            px = images[i].tobytes()
            if px not in taken_pixels:
                taken_pixels.add(px)
                out.append(i)
        return out

    tune_classes = sorted(classes, key=lambda c: _key(seed, "class", c))[:N_TUNE]
    sel: dict[str, dict[int, list[int]]] = {
        "tune": {c: take(c, 1) for c in sorted(tune_classes)},
        "test": {c: take(c, N_TEST_PER_CLASS) for c in classes},
        "fairness": {lab: take(lab, N_FAIR_PER_GROUP) for lab in FAIRNESS_GROUPS.values()},
    }
    return sel


def _ordered(sel_set: dict[int, list[int]], group_order: list[int] | None = None) -> list[int]:
    if group_order is None:  # whole set in index order
        return sorted(i for idx in sel_set.values() for i in idx)
    return [i for lab in group_order for i in sorted(sel_set[lab])]


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz with fixed timestamps, so a rebuild is byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, _npy_bytes(arrays[name]))


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def build_contents(root: str | Path | None = None, seed: int = SEED) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays) of the evaluation set, from the Fashion-MNIST test split."""
    images, labels = fm.load_split("test", root)
    sel = select_indices(images, labels, seed)
    orders = {"tune": _ordered(sel["tune"]), "test": _ordered(sel["test"]),
              "fairness": _ordered(sel["fairness"], list(FAIRNESS_GROUPS.values()))}
    arrays: dict[str, np.ndarray] = {}
    sets = {}
    for name in SETS:
        idx = np.asarray(orders[name], dtype=np.int64)
        arrays[f"{name}_images"] = images[idx].astype(np.uint8)
        arrays[f"{name}_labels"] = labels[idx].astype(np.uint8)
        arrays[f"{name}_indices"] = idx
        lab = [int(v) for v in labels[idx]]
        sets[name] = {
            "count": len(idx),
            "indices": [int(i) for i in idx],
            "labels": lab,
            "class_names": [fm.CLASS_NAMES[v] for v in lab],
            "images_sha256": _sha256(arrays[f"{name}_images"]),
        }
    sets["tune"]["rule"] = (f"one image from each of {N_TUNE} classes; classes ranked by sha256(salt:seed:class:c), "
                            "image = first in its class's key order")
    sets["test"]["rule"] = f"the next {N_TEST_PER_CLASS} images of every class in key order (disjoint from tune)"
    sets["fairness"]["rule"] = (f"the next {N_FAIR_PER_GROUP} images of each group's class in key order "
                                "(disjoint from tune and test); stored group by group, Sandal first")
    sets["fairness"]["groups"] = {g: {"label": lab, "count": N_FAIR_PER_GROUP,
                                      "indices": sorted(sel["fairness"][lab])}
                                  for g, lab in FAIRNESS_GROUPS.items()}
    sets["fairness"]["why_these_classes"] = (
        "Sandal and Sneaker are both low footwear with nearly the same silhouette once the 32x32 image is "
        "downsampled x16 or x64 in pixel count (8x8 or 4x4); they differ only in fine detail (open straps vs a "
        "closed upper), which the low-resolution measurement destroys, so the prior must fill it in: the analogue "
        "of gender from a heavily downsampled face. A classifier separates them reliably at full resolution "
        "(see separability).")
    sets["fairness"]["separability"] = SEPARABILITY
    manifest = {
        "name": "sgilo-bench embedded evaluation set",
        "source": {
            "dataset": "Fashion-MNIST",
            "split": "test",
            "files": list(fm._FILES["test"]),
            "note": "test split only; the embedded GAN is trained on the train split",
            "test_images_sha256": _sha256(images),
            "test_labels_sha256": _sha256(labels),
        },
        "seed": seed,
        "selection": {
            "salt": SALT,
            "key": "sha256(f'{salt}:{seed}:{index}') per test index; within each class indices are taken in "
                   "increasing key order, skipping exact pixel duplicates of an image already taken",
            "order_in_files": "increasing test index within each set (fairness: within each group)",
        },
        "class_names": list(fm.CLASS_NAMES),
        "image_format": "uint8 28x28 as in the idx file; loaders pad to 32x32 with background -1 and scale to [-1, 1] "
                        "(bench.data.fashion_mnist.to_tensor)",
        "npz": NPZ_NAME,
        "sets": sets,
    }
    return manifest, arrays


def _manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=1) + "\n"


def build(out_dir: str | Path = EVALSET_DIR, root: str | Path | None = None, seed: int = SEED) -> tuple[Path, Path]:
    """Write manifest.json and evalset.npz into ``out_dir`` (deterministic)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest, arrays = build_contents(root, seed)
    (out / MANIFEST_NAME).write_text(_manifest_text(manifest))
    _write_npz(out / NPZ_NAME, arrays)
    _load_arrays.cache_clear()
    return out / MANIFEST_NAME, out / NPZ_NAME


def load_manifest(folder: str | Path = EVALSET_DIR) -> dict:
    return json.loads((Path(folder) / MANIFEST_NAME).read_text())


@lru_cache(maxsize=4)
def _load_arrays(folder: str) -> dict[str, np.ndarray]:
    manifest = load_manifest(folder)
    with np.load(Path(folder) / NPZ_NAME, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for name in SETS:  # the npz must be what the manifest describes
        entry = manifest["sets"][name]
        if (arrays[f"{name}_indices"].tolist() != entry["indices"]
                or arrays[f"{name}_labels"].tolist() != entry["labels"]
                or _sha256(arrays[f"{name}_images"]) != entry["images_sha256"]):
            raise ValueError(f"{folder}/{NPZ_NAME} does not match {MANIFEST_NAME} for set {name!r}; "
                             f"rebuild with `python -m bench.data.evalset build`")
    return arrays


def load_raw(name: str, folder: str | Path = EVALSET_DIR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28], labels [N] and test-split indices [N] of one set."""
    if name not in SETS:
        raise ValueError(f"unknown evaluation set {name!r}; valid: {', '.join(SETS)}")
    a = _load_arrays(str(Path(folder).resolve()))
    return a[f"{name}_images"].copy(), a[f"{name}_labels"].copy(), a[f"{name}_indices"].copy()



def load_evalset(name: str, size: int = 32, folder: str | Path = EVALSET_DIR) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [N, 1, size, size] in [-1, 1] (padded like the training data) and int64 labels [N]."""
    images, labels, _ = load_raw(name, folder)
    return fm.to_tensor(images, size), torch.from_numpy(labels.astype(np.int64))


def evalset_indices(name: str, folder: str | Path = EVALSET_DIR) -> list[int]:
    """Fashion-MNIST test-split indices of one set, in stored order."""
    return load_raw(name, folder)[2].tolist()


def load_fairness_groups(size: int = 32, folder: str | Path = EVALSET_DIR) -> dict[str, torch.Tensor]:
    """``{"Sandal": [64, 1, size, size], "Sneaker": [64, 1, size, size]}`` in [-1, 1]."""
    x, y = load_evalset("fairness", size, folder)
    return {g: x[y == lab] for g, lab in FAIRNESS_GROUPS.items()}


def separability_check(root: str | Path | None = None, steps: int = 200) -> dict[str, float]:
    """Test accuracy of a logistic regression Sandal-vs-Sneaker at 32x32, 8x8 and 4x4."""
    from bench.core.linear import fit_logistic, predict_logistic

    out = {}
    data = {s: fm.load_tensor(s, root) for s in ("train", "test")}
    for res in (32, 8, 4):
        xy = {}
        for s, (x, y) in data.items():
            keep = (y == 5) | (y == 7)
            xs = torch.nn.functional.avg_pool2d(x[keep], 32 // res).flatten(1).double()
            xy[s] = (xs, (y[keep] == 7).double())
        w, b = fit_logistic(*xy["train"], steps=steps)
        with torch.no_grad():
            pred = predict_logistic(xy["test"][0], w, b)
            out[f"{res}x{res}"] = round(float((pred.double() == xy["test"][1]).double().mean()), 4)
    return out


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.data.evalset", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="regenerate manifest.json and evalset.npz from the idx files")
    b.add_argument("--root", default=None, help=f"folder of the idx files (default ${fm.ENV_VAR} or {fm.DEBIAN_DIR})")
    b.add_argument("--out", default=str(EVALSET_DIR))
    c = sub.add_parser("check", help="rebuild in memory and compare with the committed files")
    c.add_argument("--root", default=None)
    sub.add_parser("show", help="summarise the committed set")
    s = sub.add_parser("separability", help="re-measure the Sandal/Sneaker separability numbers")
    s.add_argument("--root", default=None)
    args = p.parse_args(argv)
    if args.cmd == "build":
        for path in build(args.out, args.root):
            print(f"wrote {path} ({path.stat().st_size} bytes)")
    elif args.cmd == "check":
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            build(tmp, args.root)
            bad = [n for n in (MANIFEST_NAME, NPZ_NAME)
                   if (Path(tmp) / n).read_bytes() != (EVALSET_DIR / n).read_bytes()]
        print("committed evaluation set matches a rebuild" if not bad else f"differs from a rebuild: {bad}")
        return 1 if bad else 0
    elif args.cmd == "show":
        m = load_manifest()
        for name in SETS:
            e = m["sets"][name]
            counts = {c: e["class_names"].count(c) for c in dict.fromkeys(e["class_names"])}
            print(f"{name}: {e['count']} images, {counts}")
    elif args.cmd == "separability":
        print(json.dumps(separability_check(args.root)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
