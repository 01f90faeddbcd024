"""A generative prior as the methods see it: generator, mapping proxy, score models."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from bench.priors.acceleration import Acceleration, autocast
from bench.priors.acceleration import apply as apply_acceleration
from bench.priors.mapping_proxy import MappingProxy, fit_gaussian
from bench.priors.stylegan2 import Generator, SkipMode


@dataclass
class Prior:
    """Everything a method needs from the prior.

    ``scores`` maps a generator layer index k to a score model of the state *after* layer k
    (the tensor ILO/SGILO optimise in round k+1). The official SGILO checkpoints are named by
    round: their ``layer1``/``layer2``/``layer3`` model our states after layers 0/1/2.
    ``missing_scores`` maps a layer whose score model this prior would use but could not load
    (its file is absent) to the message saying which file to provide; SGILO quotes it when a
    round needs that layer.
    """

    name: str
    generator: Generator
    proxy: MappingProxy
    scores: dict[int, Any] = field(default_factory=dict)
    skip_mode: SkipMode = "exact"
    missing_scores: dict[int, str] = field(default_factory=dict)
    acceleration: Acceleration = field(default_factory=Acceleration)  # speed settings (bench/priors/acceleration.py)

    def accelerate(self, acc: Acceleration) -> "Prior":
        """Use the speed settings ``acc`` from now on (the generator is set up in place)."""
        apply_acceleration(self.generator, acc)
        for s in self.scores.values():
            if hasattr(s, "bf16"):
                s.bf16 = acc.score_bf16
                s.graphs = acc.score_graphs
                s.reuse = acc.score_reuse
        self.acceleration = acc
        return self

    def autocast(self):
        """The context every generator forward of a method runs in."""
        return autocast(self.acceleration, self.device)

    @property
    def device(self) -> torch.device:
        return self.generator.input.input.device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        g = self.generator
        return (g.img_channels, g.size, g.size)

    def to(self, device: torch.device | str) -> "Prior":
        self.generator.to(device)
        self.proxy.to(device)
        for s in self.scores.values():
            s.to(device)
        return self

    @classmethod
    def from_generator(cls, g: Generator, name: str = "custom", n_fit: int = 20_000, seed: int = 0,
                       scores: dict[int, Any] | None = None) -> "Prior":
        """Wrap a bare generator (tests, random-weight checks): fits the mapping proxy now."""
        g = g.eval().requires_grad_(False)
        fit = fit_gaussian(g, n=n_fit, seed=seed)
        return cls(name, g, MappingProxy(fit["mean"], fit["std"]).to(next(g.parameters()).device), scores or {})
