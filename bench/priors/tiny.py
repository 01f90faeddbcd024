"""The ``tiny`` world: a seeded random-weight 16x16 generator whose image sets are its own
samples (in range by construction). For tests and dry runs of the machinery, never results."""
from __future__ import annotations

import torch

from bench.priors.world import FairnessSetting, ImageSet, PriorSpec, World

TINY_CONFIG = dict(size=16, style_dim=8, n_mlp=2, channels={4: 16, 8: 16, 16: 16}, img_channels=1)
TINY_GROUPS = ("tiny-a", "tiny-b")  # pseudo-groups of the fairness set (first/second half): plumbing tests only
_SETS = {"tune": (8, 1), "test": (30, 2), "fairness": (128, 3), "train": (64, 4)}  # name -> (count, seed)


def tiny_generator(seed: int = 0):
    from bench.priors.stylegan2 import Generator

    torch.manual_seed(seed)
    g = Generator(**TINY_CONFIG)
    with torch.no_grad():  # damped modulation: a smooth map (see tests/test_methods.py)
        for n, p in g.named_parameters():
            if n.endswith("modulation.weight"):
                p.mul_(0.3)
    return g.eval().requires_grad_(False)


def tiny_images(image_set: str) -> ImageSet:
    n, seed = _SETS[image_set]
    g = tiny_generator()
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, g.style_dim, generator=gen)
    with torch.no_grad():
        x, _ = g([z], noise=g.make_noise(n, generator=gen))
    return x.clamp(-1, 1), [f"tiny-{image_set}-{i}" for i in range(n)]


def tiny_fairness_groups() -> tuple[list[int], tuple[str, ...]]:
    half = _SETS["fairness"][0] // 2
    return [0] * half + [1] * half, TINY_GROUPS


def _load(device: torch.device):
    from bench.priors.prior import Prior

    return Prior.from_generator(tiny_generator(), name="tiny", n_fit=5000).to(device)


TINY_WORLD = World("tiny", "samples of a seeded random 16x16 generator (tests only)", tiny_images, (1, 16, 16),
                   grid_key="embedded", ilo_paper_steps_scale=0.075,
                   fairness=FairnessSetting((4,), None, tiny_fairness_groups))
TINY_PRIOR = PriorSpec("tiny", "seeded random 16x16 generator and its own samples: for tests and dry runs only, "
                               "never results", _load, TINY_WORLD, n_layers=3, for_results=False)
