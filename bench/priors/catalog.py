"""Priors by name, with the image sets the protocol uses for each.

- ``embedded``: the committed Fashion-MNIST StyleGAN-2 (+ score priors) and the committed
  evaluation set (8 tuning, 30 test, 64+64 fairness images from the Fashion-MNIST test split).
- ``ffhq``: rosinality's StyleGAN-2 FFHQ 1024 (``stylegan2-ffhq-config-f.pt``) from the asset
  cache, images from ``$SGILO_BENCH_FFHQ_DIR/{tune,test}`` (any FFHQ-style folders), and the
  official SGILO score networks that are in the cache (``sgilo_layer1/layer2/syn_layer3.pth``,
  as ``scores`` 0/1/2; absent ones only stop SGILO rounds that need them).
- ``ffhq-ada``: the same world with NVIDIA's stylegan2-ada ``ffhq.pkl`` (the generator SGILO's
  official code and score networks use) read by the restricted unpickler of
  :mod:`bench.priors.nvidia` (no pickled code runs), same images and score networks. A separate
  name, not a fallback of ``ffhq``, so every stored result says which generator file made it.
- ``tiny``: a seeded random-weight 16x16 generator whose image sets are its own samples (in
  range by construction). It exists for tests and dry runs of the machinery, never for results.
Loaded priors are cached per process, keyed by (name, device).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

import bench.embedded.assets  # noqa: F401 - registers the embedded assets
import bench.priors.official_scores  # noqa: F401 - registers the official SGILO score checkpoints
from bench.core.assets import MissingAssetError, asset_path, get_asset
from bench.priors.official_scores import ffhq_score_assets
from bench.priors.prior import Prior

FFHQ_DIR_ENV = "SGILO_BENCH_FFHQ_DIR"


@dataclass(frozen=True)
class PriorSpec:
    name: str
    description: str
    load: Callable[[torch.device], Prior]
    images: Callable[[str], tuple[torch.Tensor, list[str]]]  # set name -> ([N,C,H,W] in [-1,1], ids)
    required_assets: tuple[str, ...] = ()
    grid_scale: str = "embedded"  # which method grids to use ("embedded" or "ffhq")
    n_layers: int = 4  # generator layers (ILO rounds can start at layers 0 .. n_layers-1)
    # the world whose image sets, task levels and fairness settings it shares ("": its own name)
    world: str = ""
    # {generator layer: asset name} of the score models it loads when their files are present;
    # only runs that need a layer's score (SGILO rounds at temperature > 0) require its file
    score_assets: dict[int, str] = field(default_factory=dict)


_SPECS: dict[str, PriorSpec] = {}
_FACTORIES: dict[str, Callable[[str], PriorSpec]] = {}  # name prefix -> spec builder (parametric families)
_FAMILY_SPECS: dict[str, PriorSpec] = {}  # specs built by factories (kept out of prior_names())


def register_prior(spec: PriorSpec) -> PriorSpec:
    _SPECS[spec.name] = spec
    return spec


def register_prior_factory(prefix: str, factory: Callable[[str], PriorSpec]) -> None:
    """A family of priors named ``prefix...`` (e.g. ``relu-k10-d2-s3``), built on first use.

    ``factory(name)`` returns the PriorSpec or raises KeyError explaining the name pattern.
    """
    _FACTORIES[prefix] = factory


def prior_names() -> list[str]:
    return sorted(_SPECS)


def get_spec(name: str) -> PriorSpec:
    if name in _SPECS:
        return _SPECS[name]
    if name in _FAMILY_SPECS:
        return _FAMILY_SPECS[name]
    for prefix, factory in _FACTORIES.items():
        if name.startswith(prefix):
            return _FAMILY_SPECS.setdefault(name, factory(name))
    families = "".join(f", {p}..." for p in sorted(_FACTORIES))
    raise KeyError(f"unknown prior {name!r}; valid priors: {', '.join(prior_names())}{families}")


@functools.lru_cache(maxsize=4)
def _cached(name: str, device: str) -> Prior:
    return get_spec(name).load(torch.device(device))


def load_prior(name: str, device: torch.device | str = "cpu") -> Prior:
    return _cached(name, str(torch.device(device)))


@functools.lru_cache(maxsize=8)
def _cached_images(name: str, image_set: str) -> tuple[torch.Tensor, list[str]]:
    return get_spec(name).images(image_set)


def load_images(name: str, image_set: str) -> tuple[torch.Tensor, list[str]]:
    """All images of a set ([N, C, H, W] in [-1, 1]) and their stable ids."""
    return _cached_images(name, image_set)


def prior_world(name: str) -> str:
    """The world a prior belongs to (``ffhq`` for ``ffhq`` and ``ffhq-ada``): its images, task
    levels and fairness settings."""
    return get_spec(name).world or name


def missing_assets(name: str, score_layers: Iterable[int] = ()) -> list[str]:
    """Messages for every absent file a run needs (empty: ready to run): the prior's required
    assets, its image folders, and the score models of ``score_layers`` that the prior takes
    from the cache (see ``bench.runner.score_layers``: the layers SGILO cells need)."""
    spec = get_spec(name)
    out = []
    wanted = list(spec.required_assets) + [spec.score_assets[k] for k in sorted(set(score_layers))
                                           if k in spec.score_assets]
    for a in wanted:
        asset = get_asset(a)
        if not asset.exists():
            out.append(asset.missing_message())
    if prior_world(name) == "ffhq":
        root = Path(os.environ.get(FFHQ_DIR_ENV, "")) if os.environ.get(FFHQ_DIR_ENV) else None
        if root is None or not (root / "tune").is_dir() or not (root / "test").is_dir():
            out.append(f"FFHQ images: set ${FFHQ_DIR_ENV} to a folder with subfolders tune/ (8 images) and "
                       f"test/ (30 held-out images), png or jpg (any size; resized to 1024)")
    return out


# ----------------------------------------------------------------------------- embedded
def _load_embedded(device: torch.device) -> Prior:
    from bench.embedded.assets import load_embedded_prior

    return load_embedded_prior(device)


def _embedded_images(image_set: str) -> tuple[torch.Tensor, list[str]]:
    from bench.data.evalset import load_evalset, load_manifest

    x, _ = load_evalset(image_set)
    manifest = load_manifest()
    key = {"tune": "tune", "test": "test", "fairness": "fairness"}[image_set]
    ids = _manifest_ids(manifest, key, len(x))
    return x, ids


def _manifest_ids(manifest: dict, key: str, n: int) -> list[str]:
    entry = manifest.get("sets", {}).get(key) or manifest.get(key)
    idx = None
    if isinstance(entry, dict):
        idx = entry.get("indices")
    elif isinstance(entry, list):
        idx = entry
    if idx is None or len(idx) != n:
        return [f"{key}{i:03d}" for i in range(n)]
    return [f"fmnist-test-{int(i)}" for i in idx]


register_prior(PriorSpec(
    "embedded", "Fashion-MNIST 32x32 StyleGAN-2 trained by this project (committed), with its score priors",
    _load_embedded, _embedded_images, required_assets=("embedded-generator",), grid_scale="embedded"))


# ----------------------------------------------------------------------------- ffhq
FFHQ_CONFIG = dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2)


def _ffhq_prior(name: str, g, fit_asset: str, device: torch.device) -> Prior:
    """Generator + Gaussian-fit proxy (cached in ``fit_asset``'s file) + the official scores present."""
    from bench.priors.mapping_proxy import load_or_fit
    from bench.priors.official_scores import load_ffhq_scores

    g = g.to(device)
    proxy = load_or_fit(g, get_asset(fit_asset).path)
    scores, missing = load_ffhq_scores(device)
    return Prior(name, g, proxy, scores, missing_scores=missing)


def _load_ffhq(device: torch.device) -> Prior:
    from bench.priors.checkpoint import load_generator

    g, _ = load_generator(asset_path("ffhq-stylegan2"), config=FFHQ_CONFIG)
    return _ffhq_prior("ffhq", g, "ffhq-gaussian-fit", device)


def _load_ffhq_ada(device: torch.device) -> Prior:
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
        raise CheckpointError(f"{path}: not an FFHQ 1024 config-f generator: {got} "
                              f"(expected {want})")
    return _ffhq_prior("ffhq-ada", g, "ffhq-ada-gaussian-fit", device)


def _ffhq_images(image_set: str) -> tuple[torch.Tensor, list[str]]:
    from bench.data.image_folder import load_folder

    root = os.environ.get(FFHQ_DIR_ENV)
    if not root:
        raise MissingAssetError(f"FFHQ images: set ${FFHQ_DIR_ENV} to a folder with tune/ and test/ subfolders")
    x, names = load_folder(Path(root) / image_set, resolution=1024)
    return x, [f"ffhq-{n}" for n in names]


register_prior(PriorSpec(
    "ffhq", "rosinality StyleGAN-2 FFHQ 1024 (user-provided checkpoint) on FFHQ images, official SGILO scores",
    _load_ffhq, _ffhq_images, required_assets=("ffhq-stylegan2",), grid_scale="ffhq", n_layers=9,
    world="ffhq", score_assets=ffhq_score_assets()))
register_prior(PriorSpec(
    "ffhq-ada", "NVIDIA stylegan2-ada FFHQ 1024 (ffhq.pkl, read without running pickled code) on FFHQ images, "
                "official SGILO scores",
    _load_ffhq_ada, _ffhq_images, required_assets=("ffhq-stylegan2-ada-pkl",), grid_scale="ffhq", n_layers=9,
    world="ffhq", score_assets=ffhq_score_assets()))


# ----------------------------------------------------------------------------- tiny (tests)
TINY_CONFIG = dict(size=16, style_dim=8, n_mlp=2, channels={4: 16, 8: 16, 16: 16}, img_channels=1)


def tiny_generator(seed: int = 0):
    from bench.priors.stylegan2 import Generator

    torch.manual_seed(seed)
    g = Generator(**TINY_CONFIG)
    with torch.no_grad():  # damped modulation: a smooth map (see tests/test_methods.py)
        for n, p in g.named_parameters():
            if n.endswith("modulation.weight"):
                p.mul_(0.3)
    return g.eval().requires_grad_(False)


def _load_tiny(device: torch.device) -> Prior:
    return Prior.from_generator(tiny_generator(), name="tiny", n_fit=5000).to(device)


def _tiny_images(image_set: str) -> tuple[torch.Tensor, list[str]]:
    n = {"tune": 8, "test": 30, "fairness": 128}[image_set]
    seed = {"tune": 1, "test": 2, "fairness": 3}[image_set]
    g = tiny_generator()
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, g.style_dim, generator=gen)
    with torch.no_grad():
        x, _ = g([z], noise=g.make_noise(n, generator=gen))
    return x.clamp(-1, 1), [f"tiny-{image_set}-{i}" for i in range(n)]


register_prior(PriorSpec(
    "tiny", "seeded random 16x16 generator and its own samples: for tests and dry runs only, never results",
    _load_tiny, _tiny_images, grid_scale="embedded", n_layers=3))


# ----------------------------------------------------------------------------- relu-... (theory)
def _relu_factory(name: str) -> PriorSpec:
    from bench.priors.relu_net import prior_spec

    return prior_spec(name)


register_prior_factory("relu-", _relu_factory)
