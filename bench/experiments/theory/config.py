"""Sizes of the Theorem 3.1 experiment: one architecture (:class:`Setting`) and a whole run
(:class:`Config`: full sizes by default, :meth:`Config.quick` for a smoke test)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.priors import relu_net as rn

DEFAULT_OUT = Path("results/theory")


@dataclass(frozen=True)
class Setting:
    """One architecture: latent k, depth d, expansion constant c, measurements m = level * n_d."""

    k: int
    depth: int = 2
    expansion: float = rn.DEFAULT_EXPANSION
    level: float = 0.5

    @property
    def widths(self) -> tuple[int, ...]:
        return rn.layer_widths(self.k, self.depth, self.expansion)

    @property
    def m(self) -> int:
        return max(1, round(self.level * self.widths[-1]))

    def label(self) -> str:
        return f"k={self.k}, d={self.depth}, widths={list(self.widths)}, m={self.m}"


@dataclass
class Config:
    radius: float = 0.25  # the balls B(z*, r) and B(-rho z*, r) (||z*|| = 1)
    C: float = 50.0  # beta = C k
    depth: int = 2
    expansion: float = rn.DEFAULT_EXPANSION
    level: float = 0.5
    # 1. escape
    escape_settings: tuple[tuple[int, float], ...] = ((5, 2.0), (5, 4.0), (10, 2.0))  # (k, expansion c)
    escape_instances: int = 16
    escape_chains: int = 32
    escape_steps: int = 2000
    escape_eta: float = 0.05
    saddle_jitter: float = 0.02
    escape_Cs: tuple[float, ...] = (25.0, 50.0, 100.0, 200.0)
    escape_C_setting: tuple[int, float] = (5, 4.0)  # where the temperature sweep runs
    diag_k: int = 5
    diag_expansions: tuple[float, ...] = (1.5, 2.0, 4.0, 8.0)
    diag_instances: int = 32
    # 2. mixing
    mix_k: int = 10
    mix_instances: int = 4
    mix_chains: int = 512
    mix_etas: tuple[float, ...] = (0.2, 0.1, 0.05, 0.02)
    mix_time: float = 40.0  # continuous time eta * t of each test run
    mix_pool: float = 1 / 3  # the last third of each run is pooled as 'after burn-in'
    ref_eta: float = 0.01
    ref_chains: int = 256
    ref_burn: int = 1500
    ref_collect: int = 3000
    ref_thin: int = 50
    projections: int = 64
    # 3. scaling
    eps_ks: tuple[int, ...] = (5, 10, 20)
    eps_values: tuple[float, ...] = (0.4, 0.28, 0.2, 0.14, 0.1)  # eta = eps^2
    k_values: tuple[int, ...] = (5, 10, 15, 20, 30)
    k_eps: float = 0.2
    scale_instances: int = 8
    scale_chains: int = 16
    scale_time_cap: float = 30.0  # stop a run at eta * t = this
    big_k: int = 20  # from this k on, half the instances (cost grows ~ k^2 log^2 k)

    @classmethod
    def quick(cls) -> "Config":
        return cls(escape_settings=((5, 2.0),), escape_instances=4, escape_chains=8, escape_steps=300,
                   escape_Cs=(50.0,), escape_C_setting=(5, 2.0),
                   diag_expansions=(2.0, 4.0), diag_instances=4, mix_instances=1, mix_chains=64,
                   mix_etas=(0.1, 0.05), mix_time=4.0, ref_chains=32, ref_burn=300, ref_collect=300, ref_thin=10,
                   projections=16, eps_ks=(5,), eps_values=(0.3, 0.2), k_values=(5, 8), scale_instances=2,
                   scale_chains=8, scale_time_cap=10.0)

    def setting(self, k: int, expansion: float | None = None) -> Setting:
        return Setting(k, self.depth, self.expansion if expansion is None else expansion, self.level)

    def beta(self, k: int, C: float | None = None) -> float:
        return (self.C if C is None else C) * k
