"""StyleGAN-2 generator in plain PyTorch, state-dict compatible with rosinality's ``g_ema``.

One class serves the 1024x1024 FFHQ model (``Generator(1024, 512, 8, 2)``) and the small
embedded Fashion-MNIST model (``channels=...``, ``img_channels=1``).

Layer numbering follows ILO: layer 0 is ``conv1`` (+ ``to_rgb1``) at 4x4, layer j >= 1 is
block j (an upsampling conv, a conv and a ToRGB at 2^(j+2)). ``synthesis`` can stop after
any layer and restart from any layer, carrying a :class:`LayerState` (feature map plus the
RGB skip sum accumulated so far), so that continuing from the state of layer k reproduces
the whole forward pass exactly. The official ILO/SGILO code restarts with an empty skip sum
(dropping the RGB contributions of layers <= k, see the rosinality/NVIDIA StyleGAN-2 code); that behaviour is
available as ``skip_mode="official"`` for faithful comparisons.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bench.priors.ops import fused_leaky_relu, make_kernel, upfirdn2d

SkipMode = Literal["exact", "official"]


# ----------------------------------------------------------------------------- layers
class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with run-time weight scaling (equalised learning rate)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    def __init__(self, kernel: Sequence[int], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor**2)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    def __init__(self, kernel: Sequence[int], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor**2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Modulated (and optionally demodulated) convolution.

    Computed in the batch-shared form: scale the input channels by the style, convolve with
    the shared weight, scale the output channels by the demodulation factor. This equals
    rosinality's per-sample grouped convolution exactly in real arithmetic and is faster on
    CPU (measured on a 2-core CPU); ``grouped_reference`` keeps the literal form for tests.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.modulation(style)  # [B, in]
        weight = self.weight[0] * self.scale  # [out, in, k, k]
        x = x * s[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0)
            out = self.blur(out)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            wsq = weight.pow(2).sum(dim=(2, 3))  # [out, in]
            demod = torch.rsqrt(s.pow(2) @ wsq.t() + 1e-8)  # [B, out]
            out = out * demod[:, :, None, None]
        return out

    def grouped_reference(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """rosinality's literal per-sample grouped convolution (slow; for tests)."""
        b, c, h, w = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.out_channel, 1, 1, 1)
        k = self.kernel_size
        weight = weight.view(b * self.out_channel, c, k, k)
        if self.upsample:
            x = x.view(1, b * c, h, w)
            weight = weight.view(b, self.out_channel, c, k, k).transpose(1, 2).reshape(b * c, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            out = out.view(b, self.out_channel, *out.shape[-2:])
            return self.blur(out)
        out = F.conv2d(x.view(1, b * c, h, w), weight, padding=self.padding, groups=b)
        return out.view(b, self.out_channel, *out.shape[-2:])


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            b, _, h, w = x.shape
            noise = x.new_empty(b, 1, h, w).normal_()
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, style_dim: int, img_channels: int = 3, upsample: bool = True,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        # Attribute order matters for state_dict order: bias, upsample.kernel, conv.*
        self.bias = nn.Parameter(torch.zeros(1, img_channels, 1, 1))
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, style_dim, demodulate=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# ----------------------------------------------------------------------------- generator
@dataclass
class LayerState:
    """What layer ``layer`` hands to the next: its feature map and the RGB skip sum so far.

    For the last layer ``features`` is its feature map and ``skip`` is the image.
    """

    features: torch.Tensor
    skip: torch.Tensor | None
    layer: int

    def detach(self) -> "LayerState":
        return LayerState(self.features.detach(), None if self.skip is None else self.skip.detach(), self.layer)


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """rosinality's resolution -> channel table (the rosinality/NVIDIA StyleGAN-2 code)."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}


class Generator(nn.Module):
    """StyleGAN-2 generator; see the module docstring for the layer numbering."""

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 channels: dict[int, int] | None = None, img_channels: int = 3,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1), lr_mlp: float = 0.01):
        super().__init__()
        self.size, self.style_dim, self.n_mlp, self.img_channels = size, style_dim, n_mlp, img_channels
        self.channel_multiplier = channel_multiplier
        self.channels = dict(channels) if channels is not None else default_channels(channel_multiplier)
        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp)]
        )
        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(ch[4], style_dim, img_channels, upsample=False)

        self.log_size = int(math.log2(size))
        assert 2**self.log_size == size and size >= 8, "size must be a power of two >= 8"
        self.num_layers = (self.log_size - 2) * 2 + 1  # StyledConvs == noise inputs
        self.n_latent = self.log_size * 2 - 2
        self.n_blocks = self.log_size - 2  # ILO layers 1..n_blocks

        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # kept (empty) for key-compatibility with rosinality
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = (i + 5) // 2
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, 2**res, 2**res))
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, img_channels))
            in_ch = out_ch

    # ------------------------------------------------------------------ bookkeeping
    @property
    def last_layer(self) -> int:
        return self.n_blocks

    def layer_resolution(self, layer: int) -> int:
        return 2 ** (layer + 2)

    def layer_shape(self, layer: int) -> tuple[int, int, int]:
        """Shape (C, H, W) of the feature map after ``layer``."""
        r = self.layer_resolution(layer)
        return (self.channels[r], r, r)

    @staticmethod
    def latent_indices(layer: int) -> list[int]:
        """Rows of the W+ latent that ``layer`` uses (its convs and its ToRGB)."""
        return [0, 1] if layer == 0 else [2 * layer - 1, 2 * layer, 2 * layer + 1]

    @staticmethod
    def noise_indices(layer: int) -> list[int]:
        return [0] if layer == 0 else [2 * layer - 1, 2 * layer]

    def make_noise(self, batch: int = 1, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> list[torch.Tensor]:
        """Fresh per-layer noise maps, drawn on the CPU from ``generator`` for device-independence."""
        shapes = [(batch, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(self.num_layers)]
        dev = device if device is not None else self.input.input.device
        return [torch.randn(s, generator=generator).to(dev) for s in shapes]

    def stored_noises(self, batch: int = 1) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}").expand(batch, -1, -1, -1) for i in range(self.num_layers)]

    # ------------------------------------------------------------------ mapping
    def get_latent(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.style_dim, generator=generator).to(self.input.input.device)
        return self.style(z).mean(0, keepdim=True)

    # ------------------------------------------------------------------ synthesis
    def _run_layer(self, layer: int, x: torch.Tensor | None, skip: torch.Tensor | None, w: torch.Tensor,
                   noises: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == 0:
            out = self.input(w.shape[0])
            out = self.conv1(out, w[:, 0], noises[0])
            return out, self.to_rgb1(out, w[:, 1])
        j = layer
        out = self.convs[2 * j - 2](x, w[:, 2 * j - 1], noises[2 * j - 1])
        out = self.convs[2 * j - 1](out, w[:, 2 * j], noises[2 * j])
        return out, self.to_rgbs[j - 1](out, w[:, 2 * j + 1], skip)

    def synthesis(self, w: torch.Tensor, noises: Sequence[torch.Tensor | None] | None = None, *,
                  start: int = 0, end: int | None = None, state: LayerState | None = None,
                  skip_mode: SkipMode = "exact") -> LayerState:
        """Run layers ``start..end`` (inclusive) on a W+ latent ``w`` [B, n_latent, style_dim].

        ``start > 0`` continues from ``state``, the output of layer ``start - 1``; with
        ``skip_mode="official"`` its skip sum is dropped as the official ILO/SGILO code does.
        ``noises=None`` draws fresh noise in every layer (training).
        """
        end = self.last_layer if end is None else end
        if not 0 <= start <= end + 1 or end > self.last_layer:
            raise ValueError(f"need 0 <= start <= end+1 and end <= {self.last_layer}; got start={start}, end={end}")
        if noises is None:
            noises = [None] * self.num_layers
        if start == 0:
            x, skip = None, None
        else:
            if state is None or state.layer != start - 1:
                raise ValueError(f"starting at layer {start} needs the state of layer {start - 1}")
            x = state.features
            skip = state.skip if skip_mode == "exact" else None
        for layer in range(start, end + 1):
            x, skip = self._run_layer(layer, x, skip, w, noises)
        if start > end:  # nothing to run: pass the state through
            return state  # type: ignore[return-value]
        return LayerState(x, skip, end)

    def layer_rgb(self, layer: int, features: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Layer ``layer``'s own ToRGB output for its feature map (the skip sum's term that the layer adds, without
        the upsampled sum of the layers before): all of the image a state determines up to its layer."""
        if layer == 0:
            return self.to_rgb1(features, w[:, 1])
        return self.to_rgbs[layer - 1](features, w[:, 2 * layer + 1])

    def split(self, w: torch.Tensor, noises: Sequence[torch.Tensor | None] | None, layer: int) -> LayerState:
        """The state after ``layer`` (what ILO optimises in the following round)."""
        return self.synthesis(w, noises, start=0, end=layer)

    def resume(self, state: LayerState, w: torch.Tensor, noises: Sequence[torch.Tensor | None] | None,
               skip_mode: SkipMode = "exact") -> torch.Tensor:
        """The image, continuing from the state after layer ``state.layer``."""
        if state.layer == self.last_layer:
            return state.skip
        return self.synthesis(w, noises, start=state.layer + 1, state=state, skip_mode=skip_mode).skip

    def forward(self, styles: Sequence[torch.Tensor] | torch.Tensor, noise: Sequence[torch.Tensor] | None = None,
                input_is_latent: bool = False, randomize_noise: bool = True, truncation: float = 1.0,
                truncation_latent: torch.Tensor | None = None, inject_index: int | None = None,
                return_latents: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """rosinality-style entry point: z (or w with ``input_is_latent``) -> image."""
        if isinstance(styles, torch.Tensor):
            styles = [styles]
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) == 1:
            s = styles[0]
            latent = s if s.ndim == 3 else s.unsqueeze(1).expand(-1, self.n_latent, -1)
        else:
            if inject_index is None:
                inject_index = int(torch.randint(1, self.n_latent, ()).item())
            a = styles[0].unsqueeze(1).expand(-1, inject_index, -1)
            b = styles[1].unsqueeze(1).expand(-1, self.n_latent - inject_index, -1)
            latent = torch.cat([a, b], 1)
        if noise is None and not randomize_noise:
            noise = self.stored_noises(latent.shape[0])
        image = self.synthesis(latent, noise).skip
        return image, (latent if return_latents else None)


def generator_config(g: Generator) -> dict:
    """Constructor arguments that rebuild ``g`` (stored next to checkpoints)."""
    return {
        "size": g.size, "style_dim": g.style_dim, "n_mlp": g.n_mlp, "channel_multiplier": g.channel_multiplier,
        "channels": {int(k): int(v) for k, v in g.channels.items() if k <= g.size}, "img_channels": g.img_channels,
    }
