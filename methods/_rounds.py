"""The ILO round machinery shared by CSGM, ILO, ILO-unregularized and SGILO.

Round r starts at generator layer k = start_layer + r. Round 0 optimises the z-space latent
(through the Gaussian-fit mapping proxy) and the noise maps; round k >= 1 also optimises the
state after layer k-1 (``h``), which then replaces everything before it. Per step: Adam on
the measurement loss (+ geocross), then the method's hook (SGILO's score update), the
spherical projection of latent rows and noise maps to their radii at round start, then the
hook again (ILO's l1-ball projection of the deviations). The methods differ only in the hook.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.core.projections import geocross, project_to_radii, sphere_norms
from bench.core.seeds import derive_seed
from bench.priors.prior import Prior
from bench.priors.stylegan2 import LayerState
from methods._core import BestTracker, Hyper, ImageResult, PerImageRNG, Problem, StepTrace, finish, reference_mse
from methods._objective import make_lpips_term


@dataclass
class RoundParams(Hyper):
    """Hyperparameters every ILO-family method has (defaults: the official ILO config)."""

    steps: tuple[int, ...] = (50, 50, 25, 25)  # per round; round r starts at layer start_layer + r
    lr: tuple[float, ...] = (0.1,)  # per round; the last value repeats
    lr_schedule: str = "cosine"  # "cosine": ILO's warm-up + cosine ramp; "constant": SGILO's
    geocross: float = 0.01
    project_sphere: bool = True
    init: str = "randn"  # initial z: "randn" (ILO) or "ones" (SGILO)
    start_layer: int = 0
    best_over: str = "last_round"  # ILO's rule; "all": best over every round; "last": SGILO's last iterate
    # the objective (methods/_objective.py): ours by default, the official code's with Method.official()
    data_term: str = "ours"  # "official": the official normalisation of the data term
    lpips: float = 0.0  # weight of the official LPIPS-VGG fill term (ILO 1.0, SGILO 0.05)
    clamp: bool = False  # clamp the generated image to [-1, 1] before the loss (SGILO)
    noise_maps: str = "ilo"  # "ilo": range(5 + 2k) in the round at layer k; "lookahead": SGILO's 1 + 2r in round r
    skip_mode: str = "prior"  # the skip sum at the optimised layer: the prior's setting, "exact" or "official"


CHOICES = {"best_over": ("last_round", "all", "last"), "data_term": ("ours", "official"),
           "noise_maps": ("ilo", "lookahead"), "skip_mode": ("prior", "exact", "official"),
           "lr_schedule": ("cosine", "constant"), "init": ("randn", "ones")}


def check_round_params(p: RoundParams) -> None:
    """A clear error for a misspelt choice (before any work)."""
    for name, valid in CHOICES.items():
        if getattr(p, name) not in valid:
            raise ValueError(f"{name}={getattr(p, name)!r} is not one of {', '.join(valid)}")
    if p.lpips < 0:
        raise ValueError(f"lpips weight must be >= 0, got {p.lpips}")


def lr_at(step: int, steps: int, lr0: float, schedule: str) -> float:
    """ILO's schedule: 0 at step 0, linear warm-up over 5%, cosine decay over the last 75%."""
    if schedule == "constant":
        return lr0
    t = step / steps
    ramp = min(1.0, (1 - t) / 0.75)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr0 * ramp * min(1.0, t / 0.05)


class RoundContext:
    """What a hook can see and change during a round."""

    def __init__(self, prior: Prior, params: Any, rng: PerImageRNG, layer: int, round_index: int, steps: int):
        self.prior, self.params, self.rng = prior, params, rng
        self.layer, self.round_index, self.steps = layer, round_index, steps
        self.step = 0
        self.latent: torch.Tensor | None = None
        self.noises: list[torch.Tensor] = []
        self.trainable_noises: list[int] = []
        self.h: torch.Tensor | None = None  # optimised state features (rounds >= 1)
        self.optimizer: torch.optim.Optimizer | None = None
        self.nfe_score = 0
        self.measurements = 0  # measurements per image (for likelihood scaling)


class RoundHook:
    """No regulariser: ILO-unregularized (and the base of the others)."""

    adam_on_state = True  # SGILO's textbook SGLD mode updates h itself

    def begin_round(self, ctx: RoundContext) -> None: ...

    def latent_for_forward(self, ctx: RoundContext, latent: torch.Tensor) -> torch.Tensor:
        return latent

    def extra_loss(self, ctx: RoundContext) -> torch.Tensor | None:
        return None

    def before_update(self, ctx: RoundContext) -> None: ...

    def after_update(self, ctx: RoundContext) -> None: ...

    def after_projection(self, ctx: RoundContext) -> None: ...


NOISE_LOOKAHEAD = 1  # SGILO's noises_lookahead


def trainable_noise_indices(g, layer: int, rule: str = "ilo", round_index: int | None = None) -> list[int]:
    """Noises optimised in the round starting at ``layer``, restricted to those the layers >= k actually use
    (the others get no gradient anyway): ILO's range(5 + 2k), or SGILO's ``lookahead + 2 r`` in round r."""
    used = {i for j in range(layer, g.last_layer + 1) for i in g.noise_indices(j)}
    if rule == "ilo":
        count = 5 + 2 * layer
    elif rule == "lookahead":
        count = NOISE_LOOKAHEAD + 2 * (layer if round_index is None else round_index)
    else:
        raise ValueError(f"noise_maps must be 'ilo' or 'lookahead', got {rule!r}")
    return [i for i in range(min(count, g.num_layers)) if i in used]


@dataclass
class _RunState:
    """What persists across the rounds of one ``run_rounds`` call."""

    prior: Prior
    p: RoundParams
    hook: RoundHook
    g: Any  # the prior's generator
    proxy: Any  # the prior's mapping proxy
    op: Any  # the problem's measurement operator
    y: torch.Tensor  # measurements, repeated per chain
    ref: torch.Tensor | None  # reference images, repeated per chain
    rng: PerImageRNG
    num_samples: int
    latent: torch.Tensor
    noises: list[torch.Tensor]
    state: LayerState | None = None  # the state after the previous round's layer
    best: BestTracker = field(default_factory=BestTracker)
    trace: StepTrace = field(default_factory=StepTrace)
    nfe_g: int = 0
    nfe_s: int = 0
    step_global: int = 0
    kept: dict[int, torch.Tensor] = field(default_factory=dict)
    skip_mode: str = "exact"  # resolved from the params and the prior
    lpips_term: Any = None  # methods/_objective.py's LPIPS fill term, when asked for and available
    objective_note: str = ""  # what the objective had beyond the data term (or why it lacked it)


@dataclass
class _Round:
    """One round's optimiser and the radii its projections keep."""

    ctx: RoundContext
    opt: torch.optim.Optimizer
    lr0: float
    radii_latent: torch.Tensor
    radii_noises: dict[int, torch.Tensor]


def run_rounds(problem: Problem, prior: Prior, p: RoundParams, hook: RoundHook, num_samples: int = 1,
               salt: int = 0, keep_states: bool = False) -> list[ImageResult]:
    """Solve a batch; with ``num_samples`` S > 1, S independent chains per image.

    ``keep_states`` stores in each result's ``states`` the optimised intermediate states: for every round
    r >= 1, its final state after layer r - 1 (ILO inversions of real images as training data for the
    score priors, which model exactly what SGILO's rounds optimise).
    """
    t0 = time.perf_counter()
    check_round_params(p)
    keep_states = keep_states or problem.keep_states
    run = _start_run(problem, prior, p, hook, num_samples, salt)
    for r, steps in enumerate(p.steps):
        rnd = _begin_round(run, r, steps)
        for i in range(steps):
            _optimisation_step(run, rnd, i)
        _end_round(run, rnd, keep_states)
    if p.best_over != "last":  # the official SGILO returns the image of its last step, never the state after it
        _score_last_iterate(run)
    return _results(problem, run, t0)


def _start_run(problem: Problem, prior: Prior, p: RoundParams, hook: RoundHook, S: int, salt: int) -> _RunState:
    """Batch the measurements per chain, seed the per-chain RNGs and draw the initial latent and noises."""
    g, proxy, op = prior.generator, prior.proxy, problem.operator
    device = prior.device
    y = problem.y.to(device).repeat_interleave(S, 0)
    ref = None if problem.reference is None else problem.reference.to(device).repeat_interleave(S, 0)
    # chain 0 of an image uses the image's seed, so one sample equals the single-sample run
    seeds = [seed if s == 0 else derive_seed("chain", seed, s) for seed in problem.seeds for s in range(S)]
    rng = PerImageRNG(seeds, device, salt=salt)
    B = len(seeds)
    if p.init == "ones":
        latent = torch.ones(B, g.n_latent, g.style_dim, device=device)
    else:
        latent = rng.randn(g.n_latent, g.style_dim)
    noises = [rng.randn(*n.shape[1:]) for n in g.make_noise(1, device=device)]
    lpips_term, note = make_lpips_term(p.lpips, op, device)
    skip_mode = prior.skip_mode if p.skip_mode == "prior" else p.skip_mode
    return _RunState(prior, p, hook, g, proxy, op, y, ref, rng, S, latent, noises, skip_mode=skip_mode,
                     lpips_term=lpips_term, objective_note=note)


def _begin_round(run: _RunState, r: int, steps: int) -> _Round:
    """Set up round ``r``: its context, trainable variables, Adam and the projection radii."""
    p, hook = run.p, run.hook
    k = p.start_layer + r
    if k > run.g.last_layer:
        raise ValueError(f"round {r} would start at layer {k} but the generator's last layer is {run.g.last_layer}")
    ctx = RoundContext(run.prior, p, run.rng, k, r, steps)
    ctx.measurements = run.op.num_measurements
    variables = _round_variables(run, ctx)
    lrs = list(p.lr)
    lr0 = lrs[min(r, len(lrs) - 1)]
    opt = torch.optim.Adam(variables, lr=lr0)
    ctx.optimizer = opt
    radii_latent = sphere_norms(run.latent.detach())
    radii_noises = {i: sphere_norms(run.noises[i].detach()) for i in ctx.trainable_noises}
    hook.begin_round(ctx)
    if p.best_over == "last_round":
        run.best.reset()
    return _Round(ctx, opt, lr0, radii_latent, radii_noises)


def _round_variables(run: _RunState, ctx: RoundContext) -> list[torch.Tensor]:
    """Make the round's latent, trainable noises and (rounds >= 1) state ``h`` leaves; return Adam's variables."""
    run.latent = run.latent.detach().requires_grad_(True)
    ctx.trainable_noises = trainable_noise_indices(run.g, ctx.layer, run.p.noise_maps, ctx.round_index)
    noises = run.noises
    for i in range(len(noises)):
        noises[i] = noises[i].detach().requires_grad_(i in ctx.trainable_noises)
    ctx.latent, ctx.noises = run.latent, noises
    variables = [run.latent] + [noises[i] for i in ctx.trainable_noises]
    if ctx.layer >= 1:
        ctx.h = run.state.features.detach().clone().requires_grad_(True)
        if run.hook.adam_on_state:
            variables.append(ctx.h)
    return variables


def _optimisation_step(run: _RunState, rnd: _Round, i: int) -> None:
    """Step ``i`` of a round: loss, tracking, hooks, Adam, then the spherical projection."""
    p, hook, ctx, opt = run.p, run.hook, rnd.ctx, rnd.opt
    k = ctx.layer
    ctx.step = i
    for group in opt.param_groups:
        group["lr"] = lr_at(i, ctx.steps, rnd.lr0, p.lr_schedule)
    latent_fw = hook.latent_for_forward(ctx, run.latent)
    with run.prior.autocast():
        image = render_from_layer(run.g, run.proxy, latent_fw, run.noises, run.state, ctx.h, k, run.skip_mode)
    image = _maybe_clamp(image.float(), p)
    run.nfe_g += 1
    per_image = run.op.loss(run.op(image), run.y)  # ours: what selection and the reports see in every mode
    total = per_image.sum() * (run.op.official_loss_scale if p.data_term == "official" else 1.0)
    if run.lpips_term is not None:
        total = total + p.lpips * run.lpips_term(image, run.y).sum()
    if p.geocross > 0:
        total = total + p.geocross * geocross(run.latent[:, 2 * k :]).sum()
    extra = hook.extra_loss(ctx)
    if extra is not None:
        total = total + extra
    _record_iterate(run, per_image, image)
    run.step_global += 1
    hook.before_update(ctx)
    opt.zero_grad(set_to_none=True)
    total.backward()
    opt.step()
    with torch.no_grad():
        hook.after_update(ctx)
        if p.project_sphere:
            _project_to_round_radii(run, rnd)
        hook.after_projection(ctx)


def _project_to_round_radii(run: _RunState, rnd: _Round) -> None:
    """Project the latent rows and the trainable noise maps back to their radii at round start."""
    run.latent.copy_(project_to_radii(run.latent, rnd.radii_latent))
    for j in rnd.ctx.trainable_noises:
        run.noises[j].copy_(project_to_radii(run.noises[j], rnd.radii_noises[j]))


def _maybe_clamp(image: torch.Tensor, p: RoundParams) -> torch.Tensor:
    return image.clamp(-1, 1) if p.clamp else image


def _record_iterate(run: _RunState, per_image: torch.Tensor, image: torch.Tensor) -> None:
    """Add an iterate's losses to the trace and let it compete for the best reconstruction (with
    ``best_over="last"`` every iterate replaces the previous one: SGILO returns its last iterate)."""
    run.trace.add(run.step_global, per_image, reference_mse(image, run.ref))
    if run.p.best_over == "last":
        run.best.reset()
    run.best.update(per_image, image)


@torch.no_grad()
def _end_round(run: _RunState, rnd: _Round, keep_states: bool) -> None:
    """The state after the round's layer k, from the round's final variables."""
    run.nfe_s += rnd.ctx.nfe_score
    k = rnd.ctx.layer
    w = run.proxy(run.latent)
    prev = None if k == 0 else LayerState(rnd.ctx.h, run.state.skip, k - 1)
    with run.prior.autocast():
        state = run.g.synthesis(w, run.noises, start=k, end=k, state=prev, skip_mode=run.skip_mode)
    run.state = LayerState(state.features.detach().float(), None if state.skip is None else state.skip.detach().float(),
                           state.layer)
    if keep_states and rnd.ctx.h is not None:
        # the round's optimised variable itself; the state derived from it for the next round (after layer k)
        # is a function of it and was never optimised (until 2026-11-29 that derived state was kept instead,
        # so a layer-k training set held G_k(optimised state k-1), not what round k+1 optimises)
        run.kept[k - 1] = rnd.ctx.h.detach().cpu()


@torch.no_grad()
def _score_last_iterate(run: _RunState) -> None:
    """Render the last iterate so that it competes for "best" too."""
    with run.prior.autocast():
        image = run.g.resume(run.state, run.proxy(run.latent), run.noises, skip_mode=run.skip_mode)
    image = _maybe_clamp(image.float(), run.p)
    run.nfe_g += 1
    per_image = run.op.loss(run.op(image), run.y)
    _record_iterate(run, per_image, image)


def _results(problem: Problem, run: _RunState, t0: float) -> list[ImageResult]:
    S = run.num_samples
    results = finish(problem, run.best, run.trace, run.nfe_g, run.nfe_s, t0) if S == 1 else \
        _finish_samples(problem, run.best, run.trace, run.nfe_g, run.nfe_s, t0, S)
    for i, r in enumerate(results):
        r.states = {k: v[i * S] for k, v in run.kept.items()}
        r.objective_note = run.objective_note
    return results


def render_from_layer(g, proxy, latent, noises, state, h, k, skip_mode) -> torch.Tensor:
    w = proxy(latent)
    if k == 0:
        return g.synthesis(w, noises).skip
    return g.resume(LayerState(h, state.skip, k - 1), w, noises, skip_mode=skip_mode)


def _finish_samples(problem: Problem, best: BestTracker, trace: StepTrace, nfe_g: int, nfe_s: int, t0: float,
                    S: int) -> list[ImageResult]:
    """S chains per image: chain 0 gives the reconstruction (so S=1 and S>1 agree)."""
    B = problem.batch
    imgs = best.image.reshape(B, S, *best.image.shape[1:])
    loss = best.loss.reshape(B, S)
    sub = BestTracker()
    sub.image, sub.loss = imgs[:, 0], loss[:, 0]
    per_chain = trace.per_image(B * S)
    res = finish(problem, sub, StepTrace(), nfe_g, nfe_s, t0, samples=imgs)
    for i, r in enumerate(res):
        r.trace = per_chain[i * S]
    return res
