"""The SGILO score network: a ViT over an intermediate-layer tensor, one token per position.

A re-implementation of the official ``score/models.py:ViT`` (the official SGILO code) whose
``state_dict()`` has the official names and shapes, so the released ``*.pth`` checkpoints
load with :func:`load_official_state_dict`. What generalises: the channel count C (the
official projector is hard-wired to 512 = C of FFHQ's early layers; here it outputs C, which
is identical for C = 512) and the sizes (dim, depth, heads, dim_head). Only patch size 1 is
supported, because the official output reshape assumes it.

The output is an epsilon (noise) prediction; the score is ``-model(x, t) / std(t)``.
Time enters only as one scalar offset per token: Gaussian Fourier features of t (fixed
random frequencies W ~ 30 N(0, 1)), Linear, swish, Linear, sliced to the token count.
t is passed raw in [0, 1] (the official ``get_score_fn`` does not rescale it).

``time_conditioning="adaln"`` is our named variant (not in the official code): the per-token
offset is removed by the first PreNorm's LayerNorm (it subtracts each token's mean over the
width), so the official network barely sees t (measured on the v1 embedded priors: output change
0.6-1.5% between t = 0.01 and t = 1). The variant feeds the Fourier features through an MLP that
sets a scale and shift of every LayerNorm's output (adaptive LayerNorm, zero-initialised so it
starts as the plain network), the conditioning of DiT-style diffusion transformers.

``gaussian_skip=True`` is another named variant of ours: the output is the exact noise prediction of
a Gaussian fitted to the training states (mean and full covariance, fixed buffers) plus the network's
output, so the network learns only what the data has beyond two moments. Why: the plain networks
did no better than that Gaussian predictor at t >= 0.1 and worse at t = 0.5 (v2 embedded card), and
a linear map with the data's full covariance is hard for a ViT with LayerNorms to represent. The
skip's coefficients use the default VP SDE (beta 0.1 -> 20), the SDE every score model here uses.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ScoreViTConfig:
    """Constructor arguments of :class:`ScoreViT` (stored with saved priors)."""

    channels: int = 512
    height: int = 16
    width: int = 16
    dim: int = 1024
    depth: int = 8
    heads: int = 1
    dim_head: int = 64
    mlp_ratio: int = 4
    patch_size: int = 1
    fourier_scale: float = 30.0
    time_conditioning: str = "official"  # "official": a per-token offset; "adaln": adaptive LayerNorm (ours)
    gaussian_skip: bool = False  # add a fitted Gaussian's exact noise prediction to the output (ours)

    @property
    def num_patches(self) -> int:
        return (self.height // self.patch_size) * (self.width // self.patch_size)

    @property
    def embed_dim(self) -> int:
        """Time-feature width: the token count rounded up to even (Fourier features come in sin/cos pairs)."""
        n = self.num_patches
        return n + (n % 2)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def to_dict(self) -> dict:
        """The constructor arguments; ``gaussian_skip`` only when set, so the dicts stored with models
        trained before it existed (and compared on resume) stay the same."""
        d = asdict(self)
        if not d["gaussian_skip"]:
            d.pop("gaussian_skip")
        return d


def _official(h: int, w: int) -> ScoreViTConfig:
    return ScoreViTConfig(channels=512, height=h, width=w, dim=1024, depth=8, heads=1, dim_head=64, mlp_ratio=4)


# configs/trained_networks/*.yaml: image_shape [512, H, W], N 8, heads 1, d_model 1024, patch 1.
OFFICIAL_CONFIGS: dict[str, ScoreViTConfig] = {
    "latent": _official(18, 1),  # the 18 z-rows of W+ as tokens, [B, 512, 18, 1]
    "layer1": _official(4, 4),
    "layer2": _official(8, 8),
    "layer3": _official(16, 16),
    "syn_layer3": _official(16, 16),
}


# ----------------------------------------------------------------------------- building blocks
# Module nesting (Residual -> PreNorm -> fn) mirrors the official code only to reproduce its
# state-dict names (transformer.layers.L.0.fn.norm.*, ...fn.fn.to_qkv.weight, ...).
class GaussianFourierProjection(nn.Module):
    """[sin(2 pi t W), cos(2 pi t W)] with W fixed at init (a frozen Parameter, as in the official state dict)."""

    def __init__(self, embed_dim: int, scale: float = 30.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(embed_dim // 2) * scale, requires_grad=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        proj = t[:, None] * self.W[None, :] * (2 * math.pi)
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class Dense(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.dense = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        # indices 0 and 3 carry weights, as in the official Sequential with its two Dropouts
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Identity(),
                                 nn.Linear(hidden, dim), nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Multi-head self-attention, softmax(q k^T / sqrt(dim_head)) v; to_out is always present
    (the official version predates vit-pytorch's ``project_out`` shortcut)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # default scale dim_head^-0.5 as in the official code
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Residual(PreNorm(dim, Attention(dim, heads, dim_head))),
                           Residual(PreNorm(dim, FeedForward(dim, mlp_dim)))])
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = ff(attn(x))
        return x


class _PatchEmbed(nn.Sequential):
    """``Rearrange('b c h w -> b (h w) c')`` then Linear (state-dict name ``to_patch_embedding.1``)."""

    def __init__(self, channels: int, dim: int):
        super().__init__(nn.Flatten(2), nn.Linear(channels, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[1](self[0](x).transpose(1, 2))


# ----------------------------------------------------------------------------- the network
class ScoreViT(nn.Module):
    """eps-prediction network eps_theta(x, t) for x [B, C, H, W], t [B] (or a scalar) in [0, 1]."""

    def __init__(self, cfg: ScoreViTConfig):
        super().__init__()
        if cfg.patch_size != 1:
            raise ValueError("only patch_size 1 is supported (the official output reshape assumes it)")
        self.cfg = cfg
        e, n = cfg.embed_dim, cfg.num_patches
        # registration order = official state-dict order
        self.pos_embedding = nn.Parameter(torch.randn(1, n, cfg.dim))
        if cfg.time_conditioning == "official":
            self.dense = Dense(e, e)
            self.embed = nn.Sequential(GaussianFourierProjection(e, cfg.fourier_scale), nn.Linear(e, e))
        self.to_patch_embedding = _PatchEmbed(cfg.channels, cfg.dim)
        self.transformer = Transformer(cfg.dim, cfg.depth, cfg.heads, cfg.dim_head, cfg.mlp_ratio * cfg.dim)
        self.projector = nn.Linear(cfg.dim, cfg.channels)
        if cfg.time_conditioning == "adaln":
            self.time_mod = AdaLNModulation(ADALN_FOURIER_FEATURES, cfg.dim, 2 * cfg.depth, cfg.fourier_scale)
        elif cfg.time_conditioning != "official":
            raise ValueError(f"time_conditioning must be 'official' or 'adaln', got {cfg.time_conditioning!r}")
        if cfg.gaussian_skip:  # fitted by set_gaussian before training; zero eigenvalues until then
            p = cfg.channels * cfg.height * cfg.width
            self.register_buffer("skip_mean", torch.zeros(p))
            self.register_buffer("skip_evecs", torch.eye(p))
            self.register_buffer("skip_evals", torch.zeros(p))

    @torch.no_grad()
    def set_gaussian(self, y: torch.Tensor) -> None:
        """Fit the skip's Gaussian to training states ``y`` [N, C, H, W] (normalised space): mean and the
        eigendecomposition of the full covariance (float64, eigenvalues clipped at 0)."""
        flat = y.flatten(1).double()
        evals, evecs = torch.linalg.eigh(torch.cov(flat.T))
        self.skip_mean.copy_(flat.mean(0))
        self.skip_evecs.copy_(evecs)
        self.skip_evals.copy_(evals.clamp_min(0))

    def gaussian_eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """E[z | y_t = x] for the fitted Gaussian: s V diag(1 / (m^2 lambda + s^2)) V^T (x - m mean), with
        m, s the VP SDE's mean coefficient and std at ``t`` ([1] or [B])."""
        from bench.priors.sde import VPSDE

        sde = VPSDE()
        tt = t.float().reshape(-1, 1)
        m, sd = sde.mean_coeff(tt), sde.marginal_std(tt)
        evecs = self.skip_evecs.to(x.dtype)
        coef = (sd / (m * m * self.skip_evals + sd * sd)).to(x.dtype)
        centred = x.flatten(1) - (m * self.skip_mean).to(x.dtype)
        return (((centred @ evecs) * coef) @ evecs.T).view(x.shape)

    def time_offsets(self, t: torch.Tensor) -> torch.Tensor:
        """One scalar per token [B, n, 1] (broadcast over the token width, as in the official forward)."""
        h = self.embed(t)
        return self.dense(h * torch.sigmoid(h))[:, : self.cfg.num_patches, None]

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        b, c, h, w = x.shape
        if (c, h, w) != self.cfg.shape:
            raise ValueError(f"input shape {(c, h, w)} != configured {self.cfg.shape}")
        # time stays float32 (or float64) when the network runs in bfloat16: bf16's 8 mantissa bits would move
        # t = 0.01 and wreck the Fourier phases 2 pi t W (|W| ~ 30)
        t = torch.as_tensor(t, dtype=x.dtype if x.dtype == torch.float64 else torch.float32, device=x.device)
        # one time for the whole batch (SGILO's fixed t): its conditioning is computed once and broadcast. A
        # scalar, or a vector expanded from one (stride 0, as the samplers pass it), says so without a device sync.
        tb = t.reshape(1) if t.ndim == 0 else t[:1] if t.shape[0] > 1 and t.stride(0) == 0 else t
        tok = self.to_patch_embedding(x) + self.pos_embedding
        if self.cfg.time_conditioning == "adaln":
            tok = self._modulated_transformer(tok, self.time_mod(tb).to(tok.dtype).expand(b, -1, -1, -1))
        else:
            tok = self.transformer(tok + self.time_offsets(tb).to(tok.dtype))
        out = self.projector(tok).transpose(1, 2).reshape(b, c, h, w)
        return out + self.gaussian_eps(x, tb) if self.cfg.gaussian_skip else out

    def _modulated_transformer(self, x: torch.Tensor, mods: torch.Tensor) -> torch.Tensor:
        """The same blocks with each PreNorm's output scaled and shifted by ``mods`` [B, 2 depth, 2, dim]."""
        for i, block in enumerate(r for pair in self.transformer.layers for r in pair):
            scale, shift = mods[:, i, 0, None], mods[:, i, 1, None]
            x = x + block.fn.fn(block.fn.norm(x) * (1 + scale) + shift)
        return x


def bfloat16_copy(model: ScoreViT) -> ScoreViT:
    """A bfloat16 copy of ``model`` for fast inference (the ``score-bf16`` speed setting): every weight stored in
    bf16 once, so no call re-casts them (autocast does, on every call), except the time path (Fourier features and
    the layers after them), which stays float32 and is cast to bf16 only at its output."""
    low = copy.deepcopy(model).eval().requires_grad_(False)
    for name, child in low.named_children():
        if name not in TIME_PATH:  # cast in place of a float32 round trip, which would round the frequencies W
            child.to(torch.bfloat16)
    low.pos_embedding.data = low.pos_embedding.data.to(torch.bfloat16)
    return low


TIME_PATH = ("time_mod", "embed", "dense")  # the submodules that map t to its conditioning (kept float32)


ADALN_FOURIER_FEATURES = 128  # the official width (the token count, 16 at 4x4) is too few frequencies


class AdaLNModulation(nn.Module):
    """t -> (scale, shift) per LayerNorm: Fourier features, Linear, SiLU, Linear; the last layer
    starts at zero so the modulated network starts equal to the unmodulated one."""

    def __init__(self, embed_dim: int, dim: int, n_norms: int, fourier_scale: float):
        super().__init__()
        self.n_norms, self.dim = n_norms, dim
        self.fourier = GaussianFourierProjection(embed_dim, fourier_scale)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, dim), nn.SiLU(), nn.Linear(dim, n_norms * 2 * dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.fourier(t)).view(-1, self.n_norms, 2, self.dim)


def build_official(name: str) -> ScoreViT:
    """An untrained network with the layout of the official checkpoint ``name`` (see OFFICIAL_CONFIGS)."""
    try:
        cfg = OFFICIAL_CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown official score network {name!r}; known: {', '.join(OFFICIAL_CONFIGS)}") from None
    return ScoreViT(cfg)


class StateDictMismatch(RuntimeError):
    """Raised instead of a partial load; the message lists every offending key."""


def strip_module_prefix(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix DataParallel/DDP checkpoints carry (official ``load_dict`` does the same)."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def load_official_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Load ``sd`` into ``model`` all-or-nothing; raises StateDictMismatch naming missing,
    unexpected and mis-shaped keys. A ``{'state_dict': ...}`` / ``{'model': ...}`` wrapper is unwrapped."""
    for wrapper in ("state_dict", "model"):
        if wrapper in sd and isinstance(sd[wrapper], Mapping):
            sd = sd[wrapper]
    sd = strip_module_prefix(sd)
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(sd) if tuple(sd[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
            if items:
                parts.append(f"{label} ({len(items)}): " + ", ".join(items))
        raise StateDictMismatch("state dict does not match the score network; " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)
