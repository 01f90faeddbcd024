"""Samplers for the SGILO score priors, as pure functions of a score function and the SDE.

Spaces: every function taking ``score_fn`` works in the space that score function lives in;
pass ``prior.score_normalized`` to run in the network's normalised space (as the official
code does). The helpers taking a ``prior`` (:func:`hot_delta`, :func:`sgld_prior_term`,
:func:`sample_layer`) accept and return ORIGINAL-space tensors (generator activations) and
do the (de)normalisation themselves.

Randomness: every draw comes from the ``generator`` argument (drawn on the generator's device,
then moved), so a run is reproducible from its seed; ``generator=None`` uses torch's global RNG.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from bench.priors.sde import VPSDE, batch_broadcast

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x [B, ...], t [B]) -> score, same space


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise like ``x``; ``generator`` may also be any object with ``randn_like(x)`` (e.g. the
    methods' per-image RNG, so a batch draws each image's noise from its own stream)."""
    if generator is None:
        return torch.randn_like(x)
    if hasattr(generator, "randn_like"):
        return generator.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)


def _tvec(t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t


def _prior_draw(shape: tuple[int, ...], generator: torch.Generator | None,
                device: torch.device | str | None) -> torch.Tensor:
    """x_T ~ N(0, I) (the VP prior), drawn on the generator's device."""
    gdev = generator.device if generator is not None else "cpu"
    return torch.randn(shape, generator=generator, device=gdev).to(device or "cpu")


def _bb(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return batch_broadcast(v.to(device=x.device, dtype=x.dtype), x)


# ----------------------------------------------------------------------------- single steps
def ald_corrector_step(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, t: torch.Tensor, snr: float,
                       generator: torch.Generator | None = None, z: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """score_sde ``AnnealedLangevinDynamics``: x += eps score + sqrt(2 eps) z, eps = (snr std)^2 2 alpha.
    ``z`` given: that noise instead of a draw (so a compiled step can take its noise as an input)."""
    step = _bb((snr * sde.marginal_std(t)) ** 2 * 2 * sde.discrete_alpha(t), x)
    x_mean = x + step * score_fn(x, t)
    return x_mean + torch.sqrt(2 * step) * (randn_like(x, generator) if z is None else z), x_mean


def langevin_corrector_step(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, t: torch.Tensor, snr: float,
                            generator: torch.Generator | None = None, per_sample: bool = False
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """score_sde ``LangevinCorrector``: eps = 2 alpha (snr ||z|| / ||score||)^2, then x += eps score + sqrt(2 eps) z.

    As in score_sde, both norms are batch means by default. That couples a sample to its batch
    mates but keeps the step (nearly) state-independent, which the plain Langevin update needs
    to leave p_t invariant. ``per_sample=True`` decouples the batch (||score|| per sample,
    ||z|| -> its expectation sqrt(d)); the step then depends on the state, which inflates the
    stationary std by ~7% in 16 dimensions (measured; the bias fades as d grows). Using each
    draw's own ||z|| would add another (d + 2) / d variance inflation, so it is never done.
    """
    grad = score_fn(x, t)
    z = randn_like(x, generator)
    g = grad.flatten(1).norm(dim=1)
    if per_sample:
        ratio = x[0].numel() ** 0.5 / g.clamp_min(1e-12)
    else:
        ratio = (z.flatten(1).norm(dim=1).mean() / g.mean().clamp_min(1e-12)).expand(x.shape[0])
    step = _bb((snr * ratio) ** 2 * 2 * sde.discrete_alpha(t).to(x.device), x)
    x_mean = x + step * grad
    return x_mean + torch.sqrt(2 * step) * z, x_mean


def euler_maruyama_step(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, t: torch.Tensor, dt: float,
                        generator: torch.Generator | None = None, z: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """One reverse-time Euler-Maruyama step of size dt > 0 (from t to t - dt):
    x_mean = x + (1/2 beta x + beta score) dt; x = x_mean + sqrt(beta dt) z (``z`` given: that noise)."""
    beta = _bb(sde.beta(t), x)
    x_mean = x + (0.5 * beta * x + beta * score_fn(x, t)) * dt
    return x_mean + torch.sqrt(beta * dt) * (randn_like(x, generator) if z is None else z), x_mean


def reverse_diffusion_step(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, t: torch.Tensor, dt: float,
                           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """score_sde ``ReverseDiffusionPredictor`` (ancestral VP step) with the step's own beta,
    b = 1 - exp(-int_{t-dt}^t beta), so it holds for any step count (equals beta_i for dt = 1/N)."""
    u_hi, u_lo = sde.int_beta(t), sde.int_beta((t - dt).clamp_min(0))
    b = _bb(-torch.expm1(-(u_hi - u_lo)), x)
    x_mean = (2 - torch.sqrt(1 - b)) * x + b * score_fn(x, t)
    return x_mean + torch.sqrt(b) * randn_like(x, generator), x_mean


def tweedie_denoise(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """E[x_0 | x_t] = (x_t + std^2 score) / exp(c) (exact for the VP marginal)."""
    tv = _tvec(t, x)
    std = _bb(sde.marginal_std(tv), x)
    return (x + std**2 * score_fn(x, tv)) / _bb(sde.mean_coeff(tv), x)


def diffuse(sde: VPSDE, x0: torch.Tensor, t: float | torch.Tensor,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """A draw of x_t ~ p_t(. | x0) (the forward SDE run to time t)."""
    tv = _tvec(t, x0)
    mean, std = sde.marginal_prob(x0, tv)
    return mean + _bb(std, x0) * randn_like(x0, generator)


# ----------------------------------------------------------------------------- (a) the hot sampler
def hot_pc_step(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, t: torch.Tensor, snr: float,
                z_corr: torch.Tensor, z_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the hot sampler with its two noises given: ALD corrector, then an Euler-Maruyama predictor
    with dt = 1/N, both at the fixed time t. Returns (x, x_mean). Pure, so ``score-graphs`` compiles it whole."""
    x, _ = ald_corrector_step(score_fn, sde, x, t, snr, z=z_corr)
    return euler_maruyama_step(score_fn, sde, x, t, 1.0 / sde.N, z=z_pred)


def hot_pc_step_reuse(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, t: torch.Tensor, snr: float,
                      z_corr: torch.Tensor, z_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`hot_pc_step` with ONE score forward: the predictor reuses the score the corrector computed (the
    ``score-reuse`` speed setting, an approximation). The ALD corrector moves x by sqrt(2 eps) z with
    eps = 2 alpha (snr std(t))^2, i.e. by about 1.4 snr std(t) per coordinate: at SGILO's snr 1e-4 that is
    1e-4 of the noise scale at which the score varies, so the reused score is the predictor's own to about
    that fraction (measured: tests/test_acceleration.py). At a large snr (syn_layer3's 5e-3 over 5 steps)
    the error grows with it; the official path, two forwards, stays the default."""
    score = score_fn(x, t)

    def cached(*_: object) -> torch.Tensor:
        return score

    x, _ = ald_corrector_step(cached, sde, x, t, snr, z=z_corr)
    return euler_maruyama_step(cached, sde, x, t, 1.0 / sde.N, z=z_pred)


HotStep = Callable[[torch.Tensor, torch.Tensor, float, torch.Tensor, torch.Tensor],
                   tuple[torch.Tensor, torch.Tensor]]  # (x, t, snr, z_corr, z_pred) -> (x, x_mean)


@torch.no_grad()
def hot_pc_sampler(score_fn: ScoreFn, sde: VPSDE, x: torch.Tensor, *, steps: int = 1, snr: float = 1e-4,
                   t: float = 0.01, generator: torch.Generator | None = None,
                   step_fn: HotStep | None = None) -> torch.Tensor:
    """The official ``hot_pc_sampler`` (the official SGILO code): ``steps`` x (ALD corrector, then an
    Euler-Maruyama predictor with dt = 1/N), all at the FIXED time t; returns the last
    predictor's x_mean (no final noise). Official values: snr 1e-4 and 1 step for
    latent/layer1-3, snr 5e-3 and 5 steps for syn_layer3. ``step_fn`` replaces :func:`hot_pc_step` (e.g. a
    compiled one); the noises are drawn in the same order either way (corrector's, then predictor's)."""
    tv = _tvec(t, x)
    x_mean = x
    step_fn = step_fn or (lambda x_, t_, snr_, z1, z2: hot_pc_step(score_fn, sde, x_, t_, snr_, z1, z2))
    for _ in range(steps):
        z_corr = randn_like(x, generator)
        z_pred = randn_like(x, generator)
        x, x_mean = step_fn(x, tv, snr, z_corr, z_pred)
    return x_mean


@torch.no_grad()
def hot_delta(prior, h: torch.Tensor, *, steps: int = 1, snr: float = 1e-4, t: float = 0.01,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """SGILO's guidance: denorm(hot(norm(h))) - h, in ORIGINAL space (solve_inverse.py step 4/5).
    SGILO then does ``h += temperature * delta + noise_temp * N(0, I)`` after its Adam step."""
    y = prior.normalize(h.detach())
    return prior.denormalize(hot_pc_sampler(prior.score_normalized, prior.sde, y, steps=steps, snr=snr, t=t,
                                            generator=generator, step_fn=getattr(prior, "hot_step", None))
                             ) - h.detach()


# ----------------------------------------------------------------------------- (d) the SGLD score term
@torch.no_grad()
def sgld_prior_term(prior, h: torch.Tensor, t: float = 0.01, temperature: float = 1.0) -> torch.Tensor:
    """grad_h log p(h)^(1/T) ~ score(h, t) / T in ORIGINAL space, at a small diffusion time t
    (the textbook SGLD drift h += lr (-grad loss + this) + sqrt(2 lr) z)."""
    return prior.score(h.detach(), t) / temperature


# ----------------------------------------------------------------------------- (b) full PC sampler
@torch.no_grad()
def pc_sampler(score_fn: ScoreFn, sde: VPSDE, shape: tuple[int, ...], *, n_steps: int | None = None,
               eps: float = 1e-3, predictor: str = "euler_maruyama", corrector: str = "langevin",
               snr: float = 0.16, corrector_steps: int = 1, denoise: bool = True,
               x0: torch.Tensor | None = None, t_start: float | None = None,
               generator: torch.Generator | None = None, device: torch.device | str | None = None,
               progress: bool = False) -> torch.Tensor:
    """Reverse-time predictor-corrector sampling from t_start (default T) down to eps.

    Time grid linspace(t_start, eps, n_steps) (default n_steps = N); a corrector at every grid
    time, a predictor step to the next. With ``denoise`` the result is the Tweedie estimate
    E[x_0 | x_eps] (the official code returns the last predictor's x_mean instead).
    ``x0`` given: start from x0 diffused to t_start ("naturalisation"). Official bug avoided:
    its pc_sampler accepts ``x`` and ``t_index`` but always restarts from the N(0, I) prior.
    """
    n = n_steps or sde.N
    t0 = sde.T if t_start is None else float(t_start)
    if x0 is not None:
        x = diffuse(sde, x0.to(device) if device else x0, t0, generator)
    else:
        x = _prior_draw(shape, generator, device)
    pred = {"euler_maruyama": euler_maruyama_step, "reverse_diffusion": reverse_diffusion_step, "none": None}[predictor]
    corr = {"langevin": langevin_corrector_step, "ald": ald_corrector_step, "none": None}[corrector]
    times = torch.linspace(t0, eps, n, dtype=torch.float64).tolist()
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="pc sampler")
    for i in it:
        tv = _tvec(times[i], x)
        if corr is not None:
            for _ in range(corrector_steps):
                x, _ = corr(score_fn, sde, x, tv, snr, generator)
        if pred is not None and i < n - 1:
            x, _ = pred(score_fn, sde, x, tv, times[i] - times[i + 1], generator)
    return tweedie_denoise(score_fn, sde, x, eps) if denoise else x


# ----------------------------------------------------------------------------- (c) annealed Langevin
@torch.no_grad()
def annealed_langevin(score_fn: ScoreFn, sde: VPSDE, shape: tuple[int, ...], *, n_levels: int = 100,
                      steps_each: int = 5, snr: float = 0.16, t_max: float = 1.0, eps: float = 1e-3,
                      denoise: bool = True, x0: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, device: torch.device | str | None = None,
                      progress: bool = False) -> torch.Tensor:
    """Annealed Langevin dynamics (Song & Ermon 2019; the paper's Figure 4) on the VP marginals.

    Noise levels std(t_i) geometric from std(t_max) to std(eps); at each level ``steps_each``
    Langevin steps x += a score + sqrt(2a) z with a = 2 alpha(t) (snr std(t))^2, i.e. the
    official ALD corrector (Song & Ermon's a_i proportional to sigma_i^2). ``x0`` given: start
    from x0 diffused to t_max (Figure 6 "naturalisation"); else from N(0, I).
    """
    if x0 is not None:
        x = diffuse(sde, x0.to(device) if device else x0, t_max, generator)
    else:
        x = _prior_draw(shape, generator, device)
    hi, lo = sde.marginal_std(t_max), sde.marginal_std(eps)
    stds = torch.exp(torch.linspace(float(torch.log(hi)), float(torch.log(lo)), n_levels))
    times = sde.time_from_std(stds).clamp(eps, sde.T).tolist()
    it = times
    if progress:
        from tqdm import tqdm

        it = tqdm(times, desc="annealed Langevin")
    for t in it:
        tv = _tvec(t, x)
        for _ in range(steps_each):
            x, _ = ald_corrector_step(score_fn, sde, x, tv, snr, generator)
    return tweedie_denoise(score_fn, sde, x, times[-1]) if denoise else x


# ----------------------------------------------------------------------------- convenience
def sample_layer(prior, n: int, *, method: str = "pc", generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, h0: torch.Tensor | None = None,
                 **kwargs) -> torch.Tensor:
    """Unconditional (or, with h0, naturalised) layer activations in ORIGINAL space."""
    shape = (n, *prior.config.shape) if hasattr(prior, "config") else tuple(kwargs.pop("shape"))
    if device is None and hasattr(prior, "model"):
        device = next(prior.model.parameters()).device
    x0 = None if h0 is None else prior.normalize(h0)
    fn = {"pc": pc_sampler, "ald": annealed_langevin}[method]
    y = fn(prior.score_normalized, prior.sde, shape, x0=x0, generator=generator, device=device, **kwargs)
    return prior.denormalize(y)
