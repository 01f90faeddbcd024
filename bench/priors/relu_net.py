"""Random-weight expansive ReLU generators: the setting of SGILO's Theorem 3.1.

G(z) = relu(W_d ... relu(W_1 z)), W_i in R^{n_i x n_{i-1}}, n_0 = k (latent), i.i.d. Gaussian
entries. Why these choices:

* Variance ``weight_var / n_i`` (default 2/n_i, n_i = the layer's *output* width). Hand &
  Voroninski use N(0, 1/n_i); the SGILO appendix "scales the distribution of the weights by
  a factor of 2 at every layer" so that, in the limit it analyses, ||G(z)|| = ||z|| (Section
  B.4). Since E||relu(W z)||^2 = n_i * var * ||z||^2 / 2, only *variance* 2/n_i preserves
  norms; the literal ``relu(2 W z)`` would grow norms by sqrt(2) per layer and contradict
  B.4, so we read "factor 2" as a factor on the variance.
* Widths ``n_i = ceil(c * n_{i-1} * ln n_{i-1})`` (Hand & Voroninski's expansivity
  n_i >= c n_{i-1} log n_{i-1}; the constant c is unspecified in the theory, so it is a
  parameter and :func:`expansivity` reports the achieved ratios). The last width is rounded
  *up* to a perfect square so that G(z) fits the harness's [C, H, W] image convention as a
  1 x s x s "image" (more expansive, never less).
* Everything is batched: weights may carry a leading instance axis [I, n_i, n_{i-1}] and
  latents [I, B, k], so hundreds of (instance, chain) runs are one ``matmul`` per layer.

The expected landscape (the B.4 limit) of f(z) = ||A G(z) - A G(z*)||^2 has three critical
points: z*, 0 and -rho z* with rho = cos(g^{o d}(pi)), g(t) = arccos(((pi - t) cos t +
sin t) / pi) (Lemma B.4). For a finite network the minimiser of f on the ray -z* is exact
(positive homogeneity makes f quadratic in the radius): :func:`saddle_on_ray`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import torch

from bench.core.seeds import derive_seed
from bench.priors.world import PriorSpec, World

DEFAULT_EXPANSION = 2.0  # c in n_i = ceil(c n_{i-1} ln n_{i-1})
DEFAULT_WEIGHT_VAR = 2.0  # entries N(0, weight_var / n_i): norm preserving (see module doc)
NAME_PATTERN = re.compile(r"^relu-k(\d+)-d(\d+)-s(\d+)(?:-c(\d+(?:\.\d+)?))?$")
NAME_HELP = "relu-k<latent dim>-d<depth>-s<seed>[-c<expansion constant, default 2>], e.g. relu-k10-d2-s3"
IMAGE_SETS = {"tune": 8, "test": 30, "fairness": 128}


# ----------------------------------------------------------------------------- architecture
def layer_widths(latent_dim: int, depth: int, expansion: float = DEFAULT_EXPANSION,
                 square_output: bool = True) -> tuple[int, ...]:
    """(n_0 = k, n_1, ..., n_d) from the Hand-Voroninski rule n_i = ceil(c n_{i-1} ln n_{i-1})."""
    if latent_dim < 1 or depth < 1 or expansion <= 0:
        raise ValueError(f"need latent_dim >= 1, depth >= 1, expansion > 0; got {latent_dim}, {depth}, {expansion}")
    widths = [int(latent_dim)]
    for _ in range(depth):
        prev = widths[-1]
        widths.append(max(prev + 1, math.ceil(expansion * prev * max(math.log(prev), 1.0))))
    if square_output:
        widths[-1] = math.ceil(math.sqrt(widths[-1])) ** 2
    return tuple(widths)


@dataclass(frozen=True)
class Expansivity:
    """Achieved expansion per layer: c_i = n_i / (n_{i-1} ln n_{i-1}) and n_i / n_{i-1}."""

    widths: tuple[int, ...]
    log_ratios: tuple[float, ...]  # c_i (Hand & Voroninski's constant, per layer)
    ratios: tuple[float, ...]  # n_i / n_{i-1} (constant expansion, SGILO Thm A.3)
    required: float  # the c asked for
    ok: bool  # every c_i >= required

    def describe(self) -> str:
        cs = ", ".join(f"{c:.2f}" for c in self.log_ratios)
        return (f"widths {list(self.widths)}: n_i/(n_(i-1) ln n_(i-1)) = [{cs}] "
                f"({'>=' if self.ok else 'NOT all >='} {self.required:g})")


def expansivity(widths: Sequence[int], c: float = DEFAULT_EXPANSION) -> Expansivity:
    """Check n_i >= c n_{i-1} log n_{i-1} for every layer (log of 1 counts as 1)."""
    w = tuple(int(x) for x in widths)
    log_ratios = tuple(w[i] / (w[i - 1] * max(math.log(w[i - 1]), 1.0)) for i in range(1, len(w)))
    ratios = tuple(w[i] / w[i - 1] for i in range(1, len(w)))
    return Expansivity(w, log_ratios, ratios, float(c), all(r >= c - 1e-12 for r in log_ratios))


def weight_std(fan_out: int, weight_var: float = DEFAULT_WEIGHT_VAR) -> float:
    return math.sqrt(weight_var / fan_out)


def sample_weights(widths: Sequence[int], seed: int, weight_var: float = DEFAULT_WEIGHT_VAR,
                   dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """[W_1, ..., W_d], W_i [n_i, n_{i-1}] ~ N(0, weight_var / n_i), from one seeded CPU generator."""
    g = torch.Generator().manual_seed(int(seed))
    return [(torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * weight_std(n_out, weight_var)).to(dtype)
            for n_in, n_out in zip(widths[:-1], widths[1:])]


def stack_weights(nets: Sequence[Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """Instances' weight lists -> one list of [I, n_i, n_{i-1}] tensors (for batched runs)."""
    return [torch.stack(layer) for layer in zip(*nets)]


# ----------------------------------------------------------------------------- the maths
def generate(weights: Sequence[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """G(z): z [..., k] -> [..., n_d]; batched weights [I, n, n'] need z [I, B, k]."""
    h = z
    for w in weights:
        h = torch.relu(h @ w.transpose(-1, -2))
    return h


def loss_and_grad(weights: Sequence[torch.Tensor], A: torch.Tensor, y: torch.Tensor,
                  z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(z) = ||A G(z) - y||^2 (a sum, as in the theorem) and its gradient, by hand.

    Shapes: z [..., B, k], A [..., m, n_d], y broadcastable to [..., B, m]. The hand-written
    backward pass (masks of the active ReLUs) avoids autograd's bookkeeping, which dominates
    at these small sizes; tests check it against autograd.
    """
    h, masks = z, []
    for w in weights:
        pre = h @ w.transpose(-1, -2)
        mask = pre > 0
        masks.append(mask)
        h = pre * mask
    r = h @ A.transpose(-1, -2) - y
    f = r.pow(2).sum(-1)
    g = 2.0 * (r @ A)
    for w, mask in zip(reversed(weights), reversed(masks)):
        g = (g * mask) @ w
    return f, g


def langevin_step(z: torch.Tensor, grad: torch.Tensor, eta: float, beta: float | None,
                  noise: torch.Tensor | None) -> torch.Tensor:
    """z - eta grad f(z) + sqrt(2 eta / beta) u  (Theorem 3.1); beta None or inf: gradient descent."""
    z = z - eta * grad
    if beta is None or math.isinf(beta):
        return z
    if noise is None:
        raise ValueError("a Langevin step with finite beta needs noise")
    return z + math.sqrt(2.0 * eta / beta) * noise


def effective_beta(beta: float | None, latent_dim: int, per_dim: bool) -> float | None:
    """The theorem's beta = C n (n = latent dimension) when ``per_dim``; None/inf stays GD."""
    if beta is None or math.isinf(beta):
        return None
    if beta <= 0:
        raise ValueError(f"beta must be positive (or None for gradient descent), got {beta}")
    return beta * latent_dim if per_dim else beta


def angle_map(theta: float) -> float:
    """g(t) = arccos(((pi - t) cos t + sin t) / pi): the angle after one random ReLU layer."""
    c = ((math.pi - theta) * math.cos(theta) + math.sin(theta)) / math.pi
    return math.acos(max(-1.0, min(1.0, c)))


def expected_saddle_rho(depth: int) -> float:
    """rho = cos(g^{o d}(pi)): the expected landscape's critical point -rho z* (Lemma B.4)."""
    t = math.pi
    for _ in range(depth):
        t = angle_map(t)
    return math.cos(t)


def ray_minimiser(v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """argmin_{r >= 0} ||r v - y||^2 = max(<v, y>, 0) / ||v||^2 over the last axis."""
    return ((v * y).sum(-1) / v.pow(2).sum(-1).clamp_min(1e-30)).clamp_min(0.0)


def saddle_on_ray(weights: Sequence[torch.Tensor], A: torch.Tensor, y: torch.Tensor,
                  z_star: torch.Tensor) -> torch.Tensor:
    """rho with -rho z* the exact minimiser of f on the ray {-r z*/||z*||, r >= 0}.

    G(-r u) = r G(-u) (positive homogeneity), so f(-r u) = ||r A G(-u) - y||^2 is a parabola in
    r (:func:`ray_minimiser`); rho = r / ||z*||. For a finite network this point is generally
    *not* a critical point (only its radial derivative vanishes). Shapes as in
    :func:`loss_and_grad` with z* [..., B, k] -> rho [..., B].
    """
    norm = z_star.norm(dim=-1)
    v = generate(weights, -z_star / norm.unsqueeze(-1)) @ A.transpose(-1, -2)
    return ray_minimiser(v, y) / norm


def init_latents(kind: str, noise: torch.Tensor, scale: float, z_star: torch.Tensor | None = None,
                 rho: torch.Tensor | None = None) -> torch.Tensor:
    """Initial latents from standard normal ``noise`` [..., k].

    "randn": scale * u / sqrt(k) (norm about ``scale``; the theorem wants ||z0|| = O(||z*||)).
    "neg_star": -rho z* + scale * u / sqrt(k): near the spurious critical point, where plain
    gradient descent is known to stall (needs z* and rho: an oracle init for experiments).
    """
    k = noise.shape[-1]
    jitter = scale * noise / math.sqrt(k)
    if kind == "randn":
        return jitter
    if kind == "neg_star":
        if z_star is None or rho is None:
            raise ValueError("init 'neg_star' needs z* and rho")
        return -rho.unsqueeze(-1) * z_star + jitter
    raise ValueError(f"unknown init {kind!r}; valid: 'randn', 'neg_star'")


def invert(weights: Sequence[torch.Tensor], x: torch.Tensor, rel_tol: float = 1e-4) -> torch.Tensor:
    """z with G(z) = x for an in-range signal x [B, n_d] (unbatched weights), layer by layer.

    On the active set of a layer (x_j > 0) the ReLU is the identity, so W[active] h = x[active]
    is a linear system with more equations than unknowns for an expansive layer; least squares
    solves it exactly. Recovered zeros come back as round-off of either sign, so a unit counts
    as active only above ``rel_tol`` times the layer's largest value (dropping a truly active
    but tiny unit only drops one of many equations; admitting a zero one would be wrong).
    Used to recover z* from a reference image (oracle inits, tests).
    """
    out = []
    for xb in x.double():
        h = xb
        for w in reversed(weights):
            active = h > rel_tol * h.abs().max().clamp_min(1e-300)
            if int(active.sum()) < w.shape[1]:
                raise ValueError(f"cannot invert: {int(active.sum())} active units < {w.shape[1]} unknowns")
            h = torch.linalg.lstsq(w.double()[active], h[active].unsqueeze(-1)).solution.squeeze(-1)
        out.append(h)
    return torch.stack(out).to(x.dtype)


def unit_latents(n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """n latents uniform on the unit sphere (the appendix's ||z*|| = 1 normalisation), seeded."""
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    return (z / z.norm(dim=1, keepdim=True)).float()


# ----------------------------------------------------------------------------- the prior
@dataclass(frozen=True)
class ReluNetConfig:
    latent_dim: int
    depth: int = 2
    seed: int = 0
    expansion: float = DEFAULT_EXPANSION
    weight_var: float = DEFAULT_WEIGHT_VAR

    @property
    def widths(self) -> tuple[int, ...]:
        return layer_widths(self.latent_dim, self.depth, self.expansion)

    @property
    def name(self) -> str:
        c = "" if self.expansion == DEFAULT_EXPANSION else f"-c{self.expansion:g}"
        return f"relu-k{self.latent_dim}-d{self.depth}-s{self.seed}{c}"


def parse_name(name: str) -> ReluNetConfig:
    m = NAME_PATTERN.match(name)
    if not m:
        raise KeyError(f"bad random ReLU prior name {name!r}; expected {NAME_HELP}")
    k, d, s, c = m.groups()
    return ReluNetConfig(int(k), int(d), int(s), float(c) if c else DEFAULT_EXPANSION)


class ReluNetPrior:
    """A random ReLU generator as a harness prior: ``latent_dim``, ``generate`` and an image shape.

    Methods that only need a differentiable latent -> image map (``methods/langevin.py``) use
    it through ``generate``; G(z) [B, n_d] is viewed as a 1 x s x s image (n_d = s^2).
    """

    def __init__(self, config: ReluNetConfig, device: torch.device | str = "cpu"):
        self.config = config
        self.name = config.name
        self.widths = config.widths
        self.weights = [w.to(device) for w in sample_weights(self.widths, config.seed, config.weight_var)]

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def latent_dim(self) -> int:
        return self.widths[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        s = math.isqrt(self.widths[-1])
        return (1, s, s)

    def to(self, device: torch.device | str) -> "ReluNetPrior":
        self.weights = [w.to(device) for w in self.weights]
        return self

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """[B, k] -> [B, 1, s, s]."""
        return generate(self.weights, z).view(z.shape[0], *self.image_shape)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 1, s, s] in-range images -> their latents [B, k]."""
        return invert(self.weights, x.flatten(1))


def images(config: ReluNetConfig, image_set: str) -> tuple[torch.Tensor, list[str]]:
    """In-range signals G(z*) with z* uniform on the unit sphere, seeded by (prior, set)."""
    if image_set not in IMAGE_SETS:
        raise KeyError(f"unknown image set {image_set!r}; valid: {sorted(IMAGE_SETS)}")
    prior = ReluNetPrior(config)
    z = unit_latents(IMAGE_SETS[image_set], config.latent_dim, derive_seed(config.name, image_set))
    with torch.no_grad():
        x = prior.generate(z)
    return x, [f"{config.name}-{image_set}-{i}" for i in range(len(x))]


def prior_spec(name: str) -> PriorSpec:
    """The catalog entry for a ``relu-...`` name (the catalog's factory hook calls this): a prior
    in a world of its own, whose images are its in-range signals."""
    config = parse_name(name)
    exp = expansivity(config.widths, config.expansion)
    side = math.isqrt(config.widths[-1])
    world = World(name, f"in-range signals G(z*) of {name}, ||z*|| = 1", lambda image_set: images(config, image_set),
                  (1, side, side), grid_key="embedded", ilo_paper_steps_scale=0.075)
    return PriorSpec(
        name, f"random-weight expansive ReLU generator (SGILO Thm 3.1 setting), {exp.describe()}; "
              f"weights N(0, {config.weight_var:g}/n_i); images G(z*), ||z*|| = 1",
        lambda device: ReluNetPrior(config, device), world, n_layers=config.depth)
