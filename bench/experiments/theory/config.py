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
    # 1. escape from -rho z* (random inits too where n_d <= escape_randn_max_nd: cost)
    escape_settings: tuple[tuple[int, float], ...] = ((5, 2.0), (10, 2.0), (5, 8.0))  # (k, expansion c)
    escape_instances: int = 16
    escape_chains: int = 16
    escape_steps: int = 1000
    escape_eta: float = 0.05
    escape_randn_max_nd: int = 1000
    saddle_jitter: float = 0.02
    # 2. landscape premise: is -rho z* critical, rho = rho_d, and does GD stall there?
    diag_k: int = 5
    diag_expansions: tuple[float, ...] = (1.5, 2.0, 4.0, 8.0, 16.0)
    diag_instances: int = 16
    diag_gd_expansions: tuple[float, ...] = (16.0,)  # GD-stall runs here (the escape runs cover the other c)
    diag_gd_instances: int = 8  # c = 16: ~35 ms per GD step of 4 chains on one instance, ~35 s per instance
    diag_gd_chains: int = 4
    premise_grad_ratio: float = 0.1  # "critical": median ||grad f(-rho z*)|| / typical gradient below this (CI)
    premise_rho_tol: float = 0.05  # "rho = rho_d": CI of the median rho within rho_d +- this
    premise_stay: float = 0.5  # "GD stalls": CI of the fraction of GD runs still in B(-rho z*, r) above this
    # 3. t_eps: first step with W2(law of z_t, mu) <= eps, eta = eps^2, exact W2 on teps_chains samples
    teps_instances: int = 16
    teps_chains: int = 256
    # (k, c, eps values): eps down to ~1.5x the W2 estimator's floor at teps_chains samples
    teps_eps_settings: tuple[tuple[int, float, tuple[float, ...]], ...] = (
        (5, 4.0, (0.5, 0.35, 0.25, 0.18, 0.12, 0.09)), (10, 2.0, (0.5, 0.35, 0.25, 0.18)))
    teps_gd_count: int = 2  # GD control at the smallest this-many eps of each setting
    teps_ks: tuple[int, ...] = (5, 10, 15, 20)  # at expansion c = self.expansion
    teps_k_eps: float = 0.25
    teps_time_cap: float = 30.0  # stop at eta * t = this (Langevin); censored t_eps = inf
    teps_gd_time_cap: float = 10.0
    teps_floor_margin: float = 1.5  # eps counts as resolved where eps >= this x the estimator floor
    ref_eta: float = 0.05  # MALA step of the reference (exact for any eta; this one accepts ~90-95%)
    ref_time: float = 15.0  # continuous time eta * steps of each reference chain
    ref_far: float = 0.5  # the 'far' check chains start at distance ~this from z*

    @classmethod
    def quick(cls) -> Config:
        return cls(escape_settings=((5, 2.0),), escape_instances=4, escape_chains=8, escape_steps=200,
                   diag_expansions=(2.0, 4.0), diag_instances=4, diag_gd_expansions=(4.0,), diag_gd_instances=2,
                   teps_instances=3, teps_chains=48, teps_gd_count=1,
                   teps_eps_settings=((5, 2.0, (0.5, 0.35)),), teps_ks=(5, 8), teps_k_eps=0.5, teps_time_cap=8.0,
                   teps_gd_time_cap=4.0, ref_time=3.0)

    def setting(self, k: int, expansion: float | None = None) -> Setting:
        return Setting(k, self.depth, self.expansion if expansion is None else expansion, self.level)

    def beta(self, k: int, C: float | None = None) -> float:
        return (self.C if C is None else C) * k
