"""Speed settings of the generator path, each off by default and each checked against the plain path
(tests/test_acceleration.py; the benchmark reports the reconstruction difference next to the speed-up).

One setting, like the device: ``BENCH_ACCEL`` (comma-separated; empty = plain):

* ``channels_last``: NHWC memory format for the generator's weights and activations (cuDNN's fast layout);
* ``bf16``: autocast of the generator's forward (and so of its backward) to bfloat16; the loss, the optimiser
  and every state stay float32. bfloat16 has float32's range, so StyleGAN's fp16 conv clamp is not needed;
* ``compile``: ``torch.compile`` of the synthesis network (fuses the unfused elementwise work: modulation,
  noise, bias + activation, blur); ``compile-graphs`` uses mode "reduce-overhead" (CUDA graphs on a GPU: for
  the launch-bound small-batch and embedded paths);
* ``score-bf16``: the score networks run from a bfloat16 copy of their weights, made once per network (the
  time path, Fourier features and the MLP after them, stays float32, so t = 0.01 is not rounded; the output is
  cast back to float32). For SGILO on the CPU, where the layer score ViT's matmuls, not the small generator,
  dominate a round's step; fast where the CPU has native bf16 (AVX512-BF16/AMX), slower where it has not.
  An earlier version autocast the float32 network instead; it re-cast every weight on every call, which made
  round 1 (16 tokens) and B = 1 slower than plain (results/perf, 2026-11-30 run). Measured on the 2-core
  AVX512-BF16 CPU, layer-1 network forward alone: B = 2 1.81 -> 1.25 ms, B = 8 5.67 -> 2.89 ms; layer 0 at
  B = 1 slightly slower (0.71 -> 0.77 ms: too small to gain);
* ``score-graphs``: ``torch.compile`` of SGILO's whole hot step (the corrector and predictor with both score
  forwards and the arithmetic between them, its two noises passed in, so the draws are the plain path's) and of
  the score networks elsewhere. On a GPU mode "reduce-overhead" (CUDA graphs: the small ViT is launch-bound at
  B = 1); on a CPU a frozen inductor graph (weights as constants, fused elementwise work, C++ wrapper: one guard
  check per step). Combines with ``score-bf16``. An earlier version compiled the network alone with compile's
  default CPU options: no gain, because the step's time went to per-call overhead around the two forwards.
* ``score-reuse``: SGILO's hot step with one score forward instead of two: the predictor reuses the score the
  corrector computed, since at SGILO's snr (1e-4) the corrector moves the state by about 1e-4 of the noise scale
  (bench/priors/samplers.py hot_pc_step_reuse; an approximation, measured against the plain step in
  tests/test_acceleration.py). It halves the score's share of a step. Combines with the two above.

Measured in SGILO's steps (results/perf/perf.md, 2-core CPU, worst SGILO/ILO over B = 1-16 and rounds 1-2, goal
1.5x on the 95% CI). An earlier run: plain 1.81x (1.71-1.93), score-bf16 1.72x, score-graphs 1.65x, both 1.50x
(1.34-1.61; 8 of 10 settings met, B = 1 round 2 undecided). The latest, on a quiet machine: plain 1.80x
(1.67-1.85), score-bf16,score-graphs 1.45x (1.36-1.57; 9 of 10), score-reuse 1.48x (1.39-1.52; 8 of 10), all three
1.34x (1.19-1.46; 10 of 10: met). SGILO's reconstruction after a short solve moved by 8.7e-6 (mean abs) under
score-reuse and by 4e-2 under score-bf16,score-graphs (a sampler amplifies bf16 rounding). A shorter run of the same sections an hour earlier, on
a quieter host, gave both 1.43x (1.38-1.48, 10 of 10 met): the host's speed drifts by about 20% between runs. At
equal FLOP rates the floor would be 1.38x in round 2 (two 109-MFLOP score forwards next to a 570-MFLOP generator
step); at B <= 2 the small ViT runs below the generator's rate, and inside a step it runs about 1 ms slower than
in a loop of its own (measured; caches or threads shared with the generator's backward are a likely cause, not
a measured one).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

CHOICES = ("channels_last", "bf16", "compile", "compile-graphs", "score-bf16", "score-graphs", "score-reuse")


@dataclass(frozen=True)
class Acceleration:
    channels_last: bool = False
    bf16: bool = False
    compile_mode: str | None = None  # None, "default" or "reduce-overhead"
    score_bf16: bool = False
    score_graphs: bool = False
    score_reuse: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "Acceleration":
        parts = [p.strip() for p in (text or "").split(",") if p.strip()]
        bad = [p for p in parts if p not in CHOICES]
        if bad:
            raise ValueError(f"unknown acceleration setting(s) {bad}; valid: {', '.join(CHOICES)} (comma-separated)")
        mode = "reduce-overhead" if "compile-graphs" in parts else "default" if "compile" in parts else None
        return cls("channels_last" in parts, "bf16" in parts, mode, "score-bf16" in parts, "score-graphs" in parts,
                   "score-reuse" in parts)

    @classmethod
    def from_env(cls) -> "Acceleration":
        return cls.parse(os.environ.get("BENCH_ACCEL", ""))

    @property
    def plain(self) -> bool:
        return self == Acceleration()

    def label(self) -> str:
        parts = (["channels_last"] if self.channels_last else []) + (["bf16"] if self.bf16 else []) + (
            [{"default": "compile", "reduce-overhead": "compile-graphs"}[self.compile_mode]] if self.compile_mode else []
        ) + (["score-bf16"] if self.score_bf16 else []) + (["score-graphs"] if self.score_graphs else []) + (
            ["score-reuse"] if self.score_reuse else [])
        return ",".join(parts) or "plain"


def apply(g, acc: Acceleration):
    """Set the generator up for ``acc`` (in place; returns it)."""
    if acc.channels_last:  # 4-d weights and buffers only (the modulated conv weights are 5-d [1, out, in, k, k])
        for t in list(g.parameters()) + list(g.buffers()):
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    if acc.compile_mode and not getattr(g, "_compiled", False):
        g.synthesis = torch.compile(g.synthesis, mode=acc.compile_mode, dynamic=False)
        g._compiled = True
    return g


def autocast(acc: Acceleration, device: torch.device):
    """The context the generator's forward runs in (a no-op unless ``bf16``)."""
    if not acc.bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def to_input_format(x: torch.Tensor, acc: Acceleration) -> torch.Tensor:
    """A 4-d state in the generator's memory format."""
    return x.contiguous(memory_format=torch.channels_last) if acc.channels_last and x.dim() == 4 else x
