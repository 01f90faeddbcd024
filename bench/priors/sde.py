"""The Variance-Preserving SDE of the SGILO score priors (score_sde's ``VPSDE``).

Forward process dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw on t in [0, T], beta linear from
``beta_min`` to ``beta_max``. Its marginal is N(exp(c(t)) x0, (1 - exp(2 c(t))) I) with
c(t) = -1/4 t^2 (b1 - b0) - 1/2 t b0 (the official SGILO code). The discrete betas/alphas exist only
because the official samplers read ``alpha`` at the integer index ``int(t (N-1) / T)``.

Everything is a pure function of the (frozen) dataclass and the tensors passed in; ``t`` is a
float or a tensor broadcastable to the batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

TimeLike = float | torch.Tensor


def _as_tensor(t: TimeLike, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t if like is None else t.to(device=like.device, dtype=like.dtype)
    if like is None:
        return torch.tensor(float(t))
    return torch.tensor(float(t), device=like.device, dtype=like.dtype)


def batch_broadcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample [B] (or scalar) tensor to broadcast against x [B, ...]."""
    if v.ndim == 0:
        return v
    return v.reshape(v.shape[0], *([1] * (x.ndim - 1)))


@dataclass(frozen=True)
class VPSDE:
    """VP-SDE with the official SGILO values (beta 0.1 -> 20, N = 1000, T = 1)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    N: int = 1000
    T: float = 1.0

    # ---------------------------------------------------------------- continuous time
    def beta(self, t: TimeLike) -> torch.Tensor:
        """beta(t) = b0 + t (b1 - b0)."""
        t = _as_tensor(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_mean_coeff(self, t: TimeLike) -> torch.Tensor:
        """c(t) = -1/4 t^2 (b1 - b0) - 1/2 t b0, so that mean = exp(c) x0."""
        t = _as_tensor(t)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def mean_coeff(self, t: TimeLike) -> torch.Tensor:
        return torch.exp(self.log_mean_coeff(t))

    def marginal_std(self, t: TimeLike) -> torch.Tensor:
        """std(t) = sqrt(1 - exp(2c)); -expm1 keeps it accurate at tiny t."""
        return torch.sqrt(-torch.expm1(2.0 * self.log_mean_coeff(t)))

    def marginal_prob(self, x: torch.Tensor, t: TimeLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of p_t(x_t | x_0 = x); std has the shape of t."""
        t = _as_tensor(t, x)
        mean = batch_broadcast(self.mean_coeff(t), x) * x
        return mean, self.marginal_std(t)

    def drift(self, x: torch.Tensor, t: TimeLike) -> torch.Tensor:
        """Forward drift f(x, t) = -1/2 beta(t) x."""
        t = _as_tensor(t, x)
        return -0.5 * batch_broadcast(self.beta(t), x) * x

    def diffusion(self, t: TimeLike) -> torch.Tensor:
        """Forward diffusion g(t) = sqrt(beta(t))."""
        return torch.sqrt(self.beta(t))

    def reverse_drift(self, x: torch.Tensor, t: TimeLike, score: torch.Tensor,
                      probability_flow: bool = False) -> torch.Tensor:
        """Drift of the reverse-time SDE f - g^2 score (factor 1/2 for the probability-flow ODE)."""
        t = _as_tensor(t, x)
        g2 = batch_broadcast(self.beta(t), x)
        return self.drift(x, t) - g2 * score * (0.5 if probability_flow else 1.0)

    def prior_sampling(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
        """x_T ~ N(0, I), drawn on the CPU from ``generator`` for device independence."""
        return torch.randn(shape, generator=generator).to(device or "cpu")

    def time_from_int_beta(self, u: torch.Tensor) -> torch.Tensor:
        """Invert u(t) = b0 t + 1/2 (b1 - b0) t^2 for t."""
        a, b = 0.5 * (self.beta_max - self.beta_min), self.beta_min
        return (-b + torch.sqrt(b * b + 4 * a * u)) / (2 * a) if a > 0 else u / b

    def time_from_std(self, std: TimeLike) -> torch.Tensor:
        """The t at which marginal_std(t) = std (for noise-level grids, e.g. annealed Langevin)."""
        std = _as_tensor(std).double()
        return self.time_from_int_beta(-torch.log1p(-std**2)).float()

    # ---------------------------------------------------------------- discrete (official samplers)
    @property
    def discrete_betas(self) -> torch.Tensor:
        return torch.linspace(self.beta_min / self.N, self.beta_max / self.N, self.N)

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.discrete_betas

    def timestep(self, t: TimeLike) -> torch.Tensor:
        """Official index ``(t * (N - 1) / T).long()`` (truncation, not rounding)."""
        return (_as_tensor(t) * (self.N - 1) / self.T).long()

    def discrete_alpha(self, t: TimeLike) -> torch.Tensor:
        """alpha_i = 1 - beta_i at the official index, as read by the ALD/Langevin correctors."""
        t = _as_tensor(t)
        return self.alphas.to(t.device)[self.timestep(t).to(t.device)]

    def discrete_beta(self, t: TimeLike) -> torch.Tensor:
        t = _as_tensor(t)
        return self.discrete_betas.to(t.device)[self.timestep(t).to(t.device)]

    # ---------------------------------------------------------------- likelihood weighting
    def int_beta(self, t: TimeLike) -> torch.Tensor:
        """u(t) = int_0^t beta = -2 c(t)."""
        return -2.0 * self.log_mean_coeff(t)

    def likelihood_weight(self, t: TimeLike) -> torch.Tensor:
        """lambda(t) = g(t)^2 / std(t)^2, the weight that turns eps-matching into the ELBO weighting."""
        return self.beta(t) / self.marginal_std(t) ** 2

    def importance_cdf_log(self, t: TimeLike) -> torch.Tensor:
        """F(t) = log(expm1(u(t))), an antiderivative of lambda(t) (du / (1 - e^-u) = d log(e^u - 1))."""
        return torch.log(torch.expm1(self.int_beta(t)))

    def sample_importance_time(self, n: int, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """t ~ lambda(t) / Z on [eps, T] by inverting F exactly (u = softplus(F), then the quadratic for t)."""
        lo = self.importance_cdf_log(torch.tensor(eps, dtype=torch.float64))
        hi = self.importance_cdf_log(torch.tensor(self.T, dtype=torch.float64))
        f = lo + torch.rand(n, generator=generator, dtype=torch.float64) * (hi - lo)
        t = self.time_from_int_beta(torch.nn.functional.softplus(f))  # u = log(1 + e^F)
        return t.clamp(eps, self.T).float()

    def importance_norm(self, eps: float) -> float:
        """Z = int_eps^T lambda(t) dt (the constant the importance-sampled loss omits)."""
        lo = self.importance_cdf_log(torch.tensor(eps, dtype=torch.float64))
        hi = self.importance_cdf_log(torch.tensor(self.T, dtype=torch.float64))
        return float(hi - lo)


def check_sde_constants(sde: VPSDE | None = None) -> dict[str, float]:
    """The t = 0.01 numbers the official SGILO code quotes, for quick sanity checks."""
    sde = sde or VPSDE()
    t = 0.01
    return {
        "timestep": int(sde.timestep(t)),
        "alpha": float(sde.discrete_alpha(t)),
        "std": float(sde.marginal_std(t)),
        "beta": float(sde.beta(t)),
        "em_x_coeff": float(0.5 * sde.beta(t) / sde.N),
        "em_score_coeff": float(sde.beta(t) / sde.N),
        "em_noise_std": math.sqrt(float(sde.beta(t)) / sde.N),
    }
