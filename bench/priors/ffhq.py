"""The FFHQ world and its two priors (user-provided files; nothing is downloaded).

- ``ffhq``: rosinality's StyleGAN-2 FFHQ 1024 (``stylegan2-ffhq-config-f.pt``), the file ILO uses.
- ``ffhq-ada``: NVIDIA's stylegan2-ada ``ffhq.pkl`` (the generator SGILO's official code and score
  networks use) read by the restricted unpickler of bench.priors.nvidia (no pickled code runs).
  A separate name, not a fallback, so every stored result says which generator file made it.
Both load the official SGILO score networks present in the cache (``sgilo_layer1/layer2/
syn_layer3.pth`` as scores 0/1/2; absent ones only stop SGILO rounds that need them). Images come
from ``$SGILO_BENCH_FFHQ_DIR/{tune,test,fairness}``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from bench.priors.world import FairnessSetting, ImageSet, PriorSpec, World

FFHQ_DIR_ENV = "SGILO_BENCH_FFHQ_DIR"
FFHQ_CONFIG = dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2)
# The paper-scale levels (hardest first), used by the quick and paper profiles alike.
FFHQ_LEVELS = {"inpaint": (0.0075, 0.02, 0.05, 0.1, 0.2, 0.5), "cs": (0.005, 0.01, 0.05, 0.1, 0.25, 0.5),
               "denoise": (1.0, 0.5, 0.25, 0.1), "superres": (64, 32, 16, 8, 4),
               "inpaint_box": (0.5, 0.35, 0.25, 0.1), "colorize": (0.0,)}


def ffhq_root() -> Path | None:
    root = os.environ.get(FFHQ_DIR_ENV)
    return Path(root) if root else None


def ffhq_images(image_set: str) -> ImageSet:
    from bench.core.assets import MissingAssetError
    from bench.data.image_folder import load_folder

    root = ffhq_root()
    if root is None:
        raise MissingAssetError(f"FFHQ images: set ${FFHQ_DIR_ENV} to a folder with tune/ and test/ subfolders")
    x, names = load_folder(root / image_set, resolution=1024)
    return x, [f"ffhq-{n}" for n in names]


def ffhq_images_at(image_set: str, indices: list[int]) -> ImageSet:
    """Only the images at ``indices`` (by sorted file name) of a folder: FFHQ's train/ has 70,000."""
    from bench.core.assets import MissingAssetError
    from bench.data.image_folder import list_images, load_image

    root = ffhq_root()
    if root is None:
        raise MissingAssetError(f"FFHQ images: set ${FFHQ_DIR_ENV} to a folder with {image_set}/ inside")
    folder = root / image_set
    files = list_images(folder)
    if indices and max(indices) >= len(files):
        raise IndexError(f"image index {max(indices)} out of range for {folder} ({len(files)} images)")
    chosen = [files[i] for i in indices]
    x = torch.stack([load_image(p, 1024) for p in chosen]) if chosen else torch.empty(0, 3, 1024, 1024)
    return x, [f"ffhq-{p.relative_to(folder).as_posix()}" for p in chosen]


def ffhq_image_count(image_set: str) -> int:
    from bench.data.image_folder import list_images

    root = ffhq_root()
    return len(list_images(root / image_set)) if root is not None else 0


def ffhq_images_fingerprint() -> str:
    """The folder and every tune/test file's name and size (hashed): changing $SGILO_BENCH_FFHQ_DIR or a file
    changes it."""
    import hashlib

    from bench.data.image_folder import list_images

    root = ffhq_root()
    if root is None:
        return "unset"
    parts = [str(root.resolve())]
    for name in ("tune", "test"):
        if (root / name).is_dir():
            parts += [f"{p.relative_to(root).as_posix()}:{p.stat().st_size}" for p in list_images(root / name)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def ffhq_missing_images() -> list[str]:
    root = ffhq_root()
    if root is None or not (root / "tune").is_dir() or not (root / "test").is_dir():
        return [f"FFHQ images: set ${FFHQ_DIR_ENV} to a folder with subfolders tune/ (8 images) and "
                f"test/ (30 held-out images), png or jpg (any size; resized to 1024)"]
    return []


def ffhq_fairness_names() -> list[str]:
    """File names of the FFHQ fairness folder, in the order the images are loaded."""
    from bench.core.assets import MissingAssetError
    from bench.data.image_folder import list_images

    root = ffhq_root()
    if root is None:
        raise MissingAssetError(f"FFHQ fairness images: set ${FFHQ_DIR_ENV} to a folder with a fairness/ subfolder of "
                                f"64 + 64 images named <group>_<anything>.png (e.g. man_00012.png, woman_00345.png)")
    folder = root / "fairness"
    return [p.relative_to(folder).as_posix() for p in list_images(folder)]


def ffhq_fairness_groups() -> tuple[list[int], tuple[str, ...]]:
    """Group = the file-name prefix before the first "_" (groups sorted by name)."""
    names = ffhq_fairness_names()
    groups = tuple(sorted({n.split("_", 1)[0] for n in names}))
    return [groups.index(n.split("_", 1)[0]) for n in names], groups


def _ffhq_prior(name: str, g, fit_asset: str, device: torch.device):
    """Generator + Gaussian-fit proxy (cached in ``fit_asset``'s file) + the official scores present."""
    from bench.core.assets import get_asset
    from bench.priors.mapping_proxy import load_or_fit
    from bench.priors.official_scores import load_ffhq_scores
    from bench.priors.prior import Prior

    g = g.to(device)
    proxy = load_or_fit(g, get_asset(fit_asset).path)
    scores, missing = load_ffhq_scores(device)
    return Prior(name, g, proxy, scores, missing_scores=missing)


def _load_ffhq(device: torch.device):
    from bench.core.assets import asset_path
    from bench.priors.checkpoint import load_generator

    g, _ = load_generator(asset_path("ffhq-stylegan2"), config=FFHQ_CONFIG)
    return _ffhq_prior("ffhq", g, "ffhq-gaussian-fit", device)


def _load_ffhq_ada(device: torch.device):
    from bench.core.assets import asset_path
    from bench.priors.checkpoint import CheckpointError
    from bench.priors.nvidia import load_nvidia_generator
    from bench.priors.stylegan2 import Generator, generator_config

    path = asset_path("ffhq-stylegan2-ada-pkl")
    g, extras = load_nvidia_generator(path)
    with torch.device("meta"):
        want = generator_config(Generator(**FFHQ_CONFIG))
    got = extras["generator_config"]
    if {k: v for k, v in got.items() if k != "channel_multiplier"} != \
            {k: v for k, v in want.items() if k != "channel_multiplier"}:
        raise CheckpointError(f"{path}: not an FFHQ 1024 config-f generator: {got} (expected {want})")
    return _ffhq_prior("ffhq-ada", g, "ffhq-ada-gaussian-fit", device)


FFHQ_WORLD = World(
    "ffhq", "FFHQ 1024 images from $SGILO_BENCH_FFHQ_DIR (tune/, test/, fairness/; train/ for score priors)", ffhq_images, (3, 1024, 1024),
    quick_levels=FFHQ_LEVELS, paper_levels=FFHQ_LEVELS, grid_key="ffhq", ilo_paper_steps_scale=1.0, slurm_gpus=1,
    fairness=FairnessSetting((16,), "clip", ffhq_fairness_groups), missing_images=ffhq_missing_images,
    images_at=ffhq_images_at, image_count=ffhq_image_count, images_fingerprint=ffhq_images_fingerprint,
    objective="official",  # the paper's numbers come from the official objective (docs/DEVIATIONS.md)
    requires_lpips=True,  # the paper reports LPIPS on FFHQ: a GPU sweep without it would have to be redone
    # H100, batch 16, 1024 generator forward+backward: 203 ms / 16 images (results/perf/perf.md)
    gpu_seconds_per_image_step=0.0127)


def ffhq_priors() -> list[PriorSpec]:
    from bench.priors.official_scores import ffhq_score_assets

    scores = ffhq_score_assets()
    return [
        PriorSpec("ffhq", "rosinality StyleGAN-2 FFHQ 1024 (user-provided checkpoint) on FFHQ images, official "
                          "SGILO scores", _load_ffhq, FFHQ_WORLD, required_assets=("ffhq-stylegan2",), n_layers=9,
                  score_assets=scores),
        PriorSpec("ffhq-ada", "NVIDIA stylegan2-ada FFHQ 1024 (ffhq.pkl, read without running pickled code) on FFHQ "
                              "images, official SGILO scores", _load_ffhq_ada, FFHQ_WORLD,
                  required_assets=("ffhq-stylegan2-ada-pkl",), n_layers=9, score_assets=scores),
    ]
