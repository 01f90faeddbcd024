"""A small residual StyleGAN-2 discriminator (rosinality layout) for training the embedded prior."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.priors.ops import fused_leaky_relu
from bench.priors.stylegan2 import Blur, EqualLinear


class EqualConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class ConvLayer(nn.Module):
    """[blur + stride-2] conv, optional bias + fused leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False, activate: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        if downsample:
            p = (4 - 2) + (kernel_size - 1)
            layers.append(Blur((1, 3, 3, 1), pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=not activate))
        self.body = nn.Sequential(*layers)
        self.act_bias = nn.Parameter(torch.zeros(out_ch)) if activate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        return fused_leaky_relu(x, self.act_bias) if self.act_bias is not None else x


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    def __init__(self, size: int, channels: dict[int, int], img_channels: int = 1, stddev_group: int = 4):
        super().__init__()
        log_size = int(math.log2(size))
        blocks: list[nn.Module] = [ConvLayer(img_channels, channels[size], 1)]
        in_ch = channels[size]
        for i in range(log_size, 2, -1):
            out_ch = channels[2 ** (i - 1)]
            blocks.append(ResBlock(in_ch, out_ch))
            in_ch = out_ch
        self.convs = nn.Sequential(*blocks)
        self.stddev_group = stddev_group
        self.final_conv = ConvLayer(in_ch + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 16, channels[4], activation=True), EqualLinear(channels[4], 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs(x)
        b, c, h, w = out.shape
        group = min(b, self.stddev_group)
        while b % group:
            group -= 1
        std = out.view(group, -1, 1, c, h, w)
        std = torch.sqrt(std.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        std = std.repeat(group, 1, h, w)
        out = self.final_conv(torch.cat([out, std], 1))
        return self.final_linear(out.view(b, -1))
