"""What differs between worlds, in one record each: a World (images, protocol sizes, task
levels, grids, SLURM defaults, fairness settings) and the PriorSpecs (generators) that live in it.

A world is resolved once into a sweep's or a fairness run's config (bench/harness/sweep/config.py,
bench/experiments/fairness/config.py); nothing else branches on a world's name. Adding a world
is one ``World`` record plus its ``PriorSpec`` (registered with bench.priors.catalog).
This module imports nothing of the project, so every world definition can import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

ImageSet = tuple[torch.Tensor, list[str]]  # [N, C, H, W] in [-1, 1] and stable ids


@dataclass(frozen=True)
class FairnessSetting:
    """The fairness table's defaults in a world (bench/experiments/fairness/)."""

    factors: tuple[int, ...]  # downsampling factors per side (pixel count shrinks by factor^2)
    classifier: str | None  # attribute classifier name (bench.priors.attributes); None: the user must pass one
    # () -> (group index of every image of the "fairness" set, group names); raises MissingAssetError
    groups: Callable[[], tuple[list[int], tuple[str, ...]]]
    # () -> (labelled training images of the groups, their group index): the measurement-only baseline's
    # training data (never the fairness images); None: the world has none and the baseline is skipped
    train_groups: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None


def _no_missing() -> list[str]:
    return []


@dataclass(frozen=True)
class World:
    """Images, protocol and defaults shared by every prior of a world."""

    name: str
    description: str
    # image set name -> images: "tune", "test", "fairness", and "train" (score-prior data; never evaluated on)
    images: Callable[[str], ImageSet]
    image_shape: tuple[int, int, int]  # (C, H, W) of its images, known without loading them
    tune_count: int = 8  # tuning images (the paper: 8)
    test_count: int = 30  # held-out test images (the paper: 30)
    # levels per task, hardest first; a task missing here falls back to Task.default_levels
    quick_levels: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    paper_levels: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    grid_key: str = "embedded"  # which of each method's built-in tuning grids (Method.grid) to use
    grids: Mapping[str, tuple[dict, ...]] = field(default_factory=dict)  # method -> its grid here (overrides)
    ilo_paper_steps_scale: float = 1.0  # scale of the ILO paper schedule (300, 300, 300, 100)
    ilo_paper_rounds: int | None = None  # rounds of that schedule kept (None: as many as the generator has layers)
    slurm_gpus: int = 0  # default GPUs per SLURM job
    fairness: FairnessSetting | None = None
    # the ILO-family objective a sweep uses by default: "ours" or "official" (Method.official, docs/DEVIATIONS.md)
    objective: str = "ours"
    requires_lpips: bool = False  # a sweep stops (and its dry run exits 2) without the LPIPS backbone file
    missing_images: Callable[[], list[str]] = _no_missing  # messages for absent image folders
    # (image set, positions) -> those images only, for sets too large to load whole (FFHQ's train/);
    # None: load the set and index it
    images_at: Callable[[str, Sequence[int]], ImageSet] | None = None
    # images -> JSON-able quality figures (classifier-space FID vs held-out real images, class shares...)
    quality_stats: Callable[[torch.Tensor], dict] | None = None
    image_count: Callable[[str], int] | None = None
    # () -> a string that changes when the tune/test images change (the sweep refuses to mix two data sources)
    images_fingerprint: Callable[[], str] | None = None  # size of a set without loading it (None: load and count)
    # GPU seconds per image and optimisation step of an ILO inversion (score-data cost estimates in dry runs)
    gpu_seconds_per_image_step: float | None = None
    # the same on 2 CPU cores (sweep cost estimates for the CPU-sized worlds)
    cpu_seconds_per_image_step: float | None = None

    def levels(self, task: str, default: tuple[float, ...], profile: str = "quick") -> tuple[float, ...]:
        """The levels of ``task`` in this world (``default``: the task's own default levels)."""
        table = self.paper_levels if profile == "paper" else self.quick_levels
        if task in table:
            return tuple(table[task])
        return tuple(default) if profile == "paper" else tuple(default)[:3]


@dataclass(frozen=True)
class PriorSpec:
    """A generator (+ mapping proxy and score priors) of a world, loaded on demand."""

    name: str
    description: str
    load: Callable[[torch.device], object]  # device -> bench.priors.prior.Prior
    world: World
    required_assets: tuple[str, ...] = ()
    n_layers: int = 4  # generator layers (ILO rounds can start at layers 0 .. n_layers-1)
    # {generator layer: asset name} of the score models it loads when their files are present;
    # only runs that need a layer's score (SGILO rounds at temperature > 0) require its file
    score_assets: Mapping[int, str] = field(default_factory=dict)
    for_results: bool = True  # False: plumbing only (tests, dry runs); never reported as a result
    # folder where ``python -m bench.scores install`` puts score_layer<k>.pt for this prior to load (None: none)
    score_dir: Callable[[], Path] | None = None
