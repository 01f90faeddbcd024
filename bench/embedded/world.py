"""The embedded world: the committed Fashion-MNIST StyleGAN-2 (+ score priors) and the
committed evaluation set (8 tuning, 30 test, 64 Sandal + 64 Sneaker fairness images, all from
the Fashion-MNIST test split; bench/data/evalset/)."""
from __future__ import annotations

import functools

import torch

from bench.priors.world import FairnessSetting, ImageSet, PriorSpec, World

# Three levels per task, so the default sweep fits 10 minutes on 2 cores. The scarcest inpainting and CS
# levels keep m = 64 measurements: m/p = 0.125 for the 512-value state after layer 1 (the paper's hardest
# FFHQ case, 0.75% inpainting, has m/p ~ 0.7 for its 8x8 state; `python -m bench.report.regime`).
QUICK_LEVELS = {"inpaint": (0.0625, 0.2, 0.5), "cs": (0.0625, 0.125, 0.25), "denoise": (1.0, 0.5, 0.25),
                "superres": (8, 4, 2), "inpaint_box": (0.5, 0.25, 0.1), "colorize": (0.0,)}


def embedded_images(image_set: str) -> ImageSet:
    """The committed evaluation sets (tune, test, fairness: from the test split) or ``train``: the
    60,000 Fashion-MNIST training images (Debian package), for score-prior data only."""
    from bench.data.evalset import load_evalset, load_manifest

    if image_set == "train":
        from bench.data.fashion_mnist import load_tensor

        x, _ = load_tensor("train")
        return x, [f"fmnist-train-{i}" for i in range(len(x))]
    x, _ = load_evalset(image_set)
    return x, manifest_ids(load_manifest(), image_set, len(x))


def manifest_ids(manifest: dict, key: str, n: int) -> list[str]:
    """Stable ids ``fmnist-test-<index in the test split>`` from the evalset manifest."""
    entry = manifest.get("sets", {}).get(key) or manifest.get(key)
    idx = entry.get("indices") if isinstance(entry, dict) else entry if isinstance(entry, list) else None
    if idx is None or len(idx) != n:
        return [f"{key}{i:03d}" for i in range(n)]
    return [f"fmnist-test-{int(i)}" for i in idx]


def evalset_fingerprint() -> str:
    from bench.core.io import file_fingerprint
    from bench.data.evalset import EVALSET_DIR

    return file_fingerprint(EVALSET_DIR / "evalset.npz")


def embedded_fairness_groups() -> tuple[list[int], tuple[str, ...]]:
    """The manifest's Sandal/Sneaker labels of the fairness set."""
    from bench.data.evalset import FAIRNESS_GROUPS, load_evalset

    _, y = load_evalset("fairness")
    lab_to_group = {lab: i for i, lab in enumerate(FAIRNESS_GROUPS.values())}
    return [lab_to_group[int(v)] for v in y.tolist()], tuple(FAIRNESS_GROUPS)


def embedded_train_groups() -> tuple[torch.Tensor, torch.Tensor]:
    """The Fashion-MNIST training images of the fairness groups (Sandal, Sneaker) and their group index."""
    from bench.data.evalset import FAIRNESS_GROUPS
    from bench.data.fashion_mnist import load_tensor

    x, y = load_tensor("train")
    classes = list(FAIRNESS_GROUPS.values())
    keep = torch.isin(y, torch.tensor(classes))
    return x[keep], torch.tensor([classes.index(int(v)) for v in y[keep]])


def embedded_quality(images: torch.Tensor) -> dict:
    """Classifier-space statistics of ``images`` against the 10,000 Fashion-MNIST test images
    (bench/embedded/quality.py; the classifier's features, not Inception)."""
    from bench.embedded.quality import feature_stats, stats_dict

    return stats_dict(feature_stats(images), _test_reference())


@functools.lru_cache(maxsize=1)
def _test_reference():
    from bench.data.fashion_mnist import load_tensor
    from bench.embedded.quality import feature_stats

    return feature_stats(load_tensor("test")[0])


def _load(device: torch.device):
    from bench.embedded.assets import load_embedded_prior

    return load_embedded_prior(device)


EMBEDDED_WORLD = World(
    "embedded", "Fashion-MNIST 32x32 (committed evaluation set from the test split)", embedded_images, (1, 32, 32),
    quick_levels=QUICK_LEVELS, paper_levels=QUICK_LEVELS, grid_key="embedded",
    ilo_paper_steps_scale=0.075,  # (300, 300, 300) -> (22, 22, 22): the quick budget of the other methods
    # rounds 0-2 optimise z and the states after layers 0 and 1 (p = 256, 512 <= n/2); a fourth round would
    # optimise the 128x16x16 state after layer 2 (p = 32768 = 32 n), outside the regime ILO presupposes
    ilo_paper_rounds=3,
    slurm_gpus=0, fairness=FairnessSetting((4, 8), "embedded", embedded_fairness_groups, embedded_train_groups),
    quality_stats=embedded_quality, images_fingerprint=evalset_fingerprint,
    # the default sweep on 2 CPU cores (2 worker processes, nothing else running), 2026-11-29: 97,848 image-steps
    # in 186 s of cell execution (results/embedded/README.md)
    cpu_seconds_per_image_step=0.0019)

def _score_dir():
    from bench.core.assets import EMBEDDED_DIR

    return EMBEDDED_DIR


EMBEDDED_PRIOR = PriorSpec(
    "embedded", "Fashion-MNIST 32x32 StyleGAN-2 trained by this project (committed), with its score priors",
    _load, EMBEDDED_WORLD, required_assets=("embedded-generator",), n_layers=4, score_dir=_score_dir)
