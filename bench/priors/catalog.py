"""Worlds and priors by name (the world records are in bench/priors/world.py).

Built in: the ``embedded`` world (bench/embedded/world.py), ``ffhq`` with the priors ``ffhq`` and
``ffhq-ada`` (bench/priors/ffhq.py), ``tiny`` for tests (bench/priors/tiny.py), and the
``relu-...`` family of the Theorem 3.1 experiment (bench/priors/relu_net.py, built on first use).
Loaded priors and image sets are cached per process, keyed by (name, device) / (name, set).
"""
from __future__ import annotations

import functools
from typing import Callable, Iterable, Sequence

import torch

import bench.embedded.assets  # noqa: F401 - registers the embedded assets
import bench.priors.official_scores  # noqa: F401 - registers the official SGILO score checkpoints
from bench.core.assets import get_asset
from bench.embedded.world import EMBEDDED_PRIOR, EMBEDDED_WORLD
from bench.priors.ffhq import FFHQ_WORLD, ffhq_priors
from bench.priors.prior import Prior
from bench.priors.relu_net import prior_spec as relu_prior_spec
from bench.priors.tiny import TINY_PRIOR, TINY_WORLD
from bench.priors.world import ImageSet, PriorSpec, World

_WORLDS: dict[str, World] = {}
_SPECS: dict[str, PriorSpec] = {}
_FACTORIES: dict[str, Callable[[str], PriorSpec]] = {}  # name prefix -> spec builder (parametric families)
_FAMILY_SPECS: dict[str, PriorSpec] = {}  # specs built by factories (kept out of prior_names())


def register_world(world: World) -> World:
    if _WORLDS.get(world.name, world) is not world:
        raise ValueError(f"world {world.name!r} is registered twice")
    _WORLDS[world.name] = world
    return world


def register_prior(spec: PriorSpec) -> PriorSpec:
    """Register a prior (and its world, if new)."""
    if _SPECS.get(spec.name, spec) is not spec:
        raise ValueError(f"prior {spec.name!r} is registered twice")
    register_world(spec.world)
    _SPECS[spec.name] = spec
    return spec


def register_prior_factory(prefix: str, factory: Callable[[str], PriorSpec]) -> None:
    """A family of priors named ``prefix...`` (e.g. ``relu-k10-d2-s3``), built on first use.

    ``factory(name)`` returns the PriorSpec or raises KeyError explaining the name pattern.
    """
    _FACTORIES[prefix] = factory


def prior_names() -> list[str]:
    return sorted(_SPECS)


def world_names() -> list[str]:
    return sorted(_WORLDS)


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


def get_world(prior: str) -> World:
    """The world of a prior (``ffhq-ada`` lives in ``ffhq``)."""
    return get_spec(prior).world


def prior_world(name: str) -> str:
    """The name of the world a prior belongs to."""
    return get_world(name).name


@functools.lru_cache(maxsize=4)
def _cached(name: str, device: str, acceleration: str) -> Prior:
    from bench.priors.acceleration import Acceleration

    prior = get_spec(name).load(torch.device(device))
    return prior.accelerate(Acceleration.parse(acceleration)) if acceleration != "plain" else prior


def load_prior(name: str, device: torch.device | str = "cpu", acceleration: str | None = None) -> Prior:
    """The prior on ``device`` with the speed settings ``acceleration`` (default: ``$BENCH_ACCEL``, plain)."""
    from bench.priors.acceleration import Acceleration

    acc = Acceleration.parse(acceleration) if acceleration is not None else Acceleration.from_env()
    return _cached(name, str(torch.device(device)), acc.label())


def clear_cache() -> None:
    """Forget loaded priors and image sets (after their files changed, e.g. an installed score prior)."""
    _cached.cache_clear()
    _cached_images.cache_clear()


@functools.lru_cache(maxsize=8)
def _cached_images(name: str, image_set: str) -> ImageSet:
    return get_world(name).images(image_set)


def load_images(name: str, image_set: str) -> ImageSet:
    """All images of a set of a prior's world ([N, C, H, W] in [-1, 1]) and their stable ids."""
    return _cached_images(name, image_set)


def load_images_at(name: str, image_set: str, indices: Sequence[int]) -> ImageSet:
    """Images at ``indices`` of a set, without loading the whole set when the world can avoid it."""
    world = get_world(name)
    if world.images_at is not None:
        return world.images_at(image_set, list(indices))
    x, ids = load_images(name, image_set)
    idx = list(indices)
    if idx and max(idx) >= len(x):
        raise IndexError(f"image index {max(idx)} out of range for set {image_set!r} ({len(x)} images)")
    return x[idx], [ids[i] for i in idx]


def count_images(name: str, image_set: str) -> int:
    world = get_world(name)
    if world.image_count is not None:
        return world.image_count(image_set)
    return len(load_images(name, image_set)[1])


def data_identity(name: str) -> dict[str, str]:
    """Fingerprints of what a prior's results depend on besides the code: its weights files, the
    score files it would load, and its world's images (bench.core.io.file_fingerprint). A sweep
    stores them and refuses to continue in the same folder when they changed."""
    from bench.core.io import file_fingerprint

    spec = get_spec(name)
    out = {}
    for a in [*spec.required_assets, *spec.score_assets.values()]:
        asset = get_asset(a)
        out[a] = file_fingerprint(asset.path) if asset.exists() else "absent"
    if spec.score_dir is not None:
        for p in sorted(spec.score_dir().glob("score_layer*.pt")):
            out[p.name] = file_fingerprint(p)
    if spec.world.images_fingerprint is not None:
        out["images"] = spec.world.images_fingerprint()
    return out


def missing_assets(name: str, score_layers: Iterable[int] = (), images: bool = True) -> list[str]:
    """Messages for every absent file a run needs (empty: ready to run): the prior's required
    assets, its tune/test image folders (unless ``images`` is False), and the score models of
    ``score_layers`` that the prior takes from the cache (see ``bench.harness.runner.score_layers``:
    the layers SGILO cells need)."""
    spec = get_spec(name)
    wanted = list(spec.required_assets) + [spec.score_assets[k] for k in sorted(set(score_layers))
                                           if k in spec.score_assets]
    out = [get_asset(a).missing_message() for a in wanted if not get_asset(a).exists()]
    return out + (spec.world.missing_images() if images else [])


for _spec in (EMBEDDED_PRIOR, *ffhq_priors(), TINY_PRIOR):
    register_prior(_spec)
for _world in (EMBEDDED_WORLD, FFHQ_WORLD, TINY_WORLD):
    register_world(_world)
register_prior_factory("relu-", relu_prior_spec)
