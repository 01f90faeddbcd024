"""How close an optimisation step runs to the hardware's limits: FLOP and byte counts of one image-step of
the generator from layer k, and the device's peak compute and memory bandwidth.

Counts (per image, float32), derived from the architecture alone (``Generator.channels``/``layer_shape``):

* FLOPs: a modulated 3x3 conv producing C_out x H x W from C_in channels costs C_in C_out 9 H W multiply-adds,
  2 FLOPs each; the upsampling conv is a stride-2 transposed conv, one kernel per input pixel (H/2 x W/2); ToRGB
  is a 1x1 conv to the image channels. At 1024 this gives ~150 GFLOP per forward. One optimisation step is the forward plus two conv-sized backward passes: the gradient
  w.r.t. the input, and the one w.r.t. the per-sample modulated weights (the styles depend on the optimised
  latent, so the generator's weights are frozen but its modulated weights are not): 3x the forward.
* Bytes: every unfused elementwise pass reads and writes a full activation. Per StyledConv output we count
  the conv's write, the noise add (read + write), bias + leaky ReLU (read + write), the next layer's read and,
  at upsampling layers, the blur (read + write): 6 (8) passes forward, and twice that backward; weights and
  the small per-layer tensors are ignored. A model of the unfused implementation, not a measurement.

Peaks: for known GPUs, the vendor's dense TF32 rate and HBM bandwidth (table below); on a CPU they are
measured here (a large float32 matmul and a large copy on the threads the benchmark uses).
"""
from __future__ import annotations

import time

import torch

# name fragment -> (dense TF32 FLOP/s, memory bandwidth B/s), vendor data sheets (SXM parts)
GPU_PEAKS = {"H200": (494e12, 4.8e12), "H100": (494e12, 3.35e12), "A100": (156e12, 2.04e12),
             "V100": (15.7e12, 0.9e12)}
BACKWARD_FACTOR = 3.0  # forward + input gradient + modulated-weight gradient (see the module doc)


def step_counts(g, layer: int) -> dict[str, float]:
    """FLOPs and bytes of one optimisation step (per image) of the generator from ``layer`` on."""
    flops = bytes_ = 0.0
    c_img = g.img_channels
    for k in range(layer, g.last_layer + 1):
        c, h, w = g.layer_shape(k)
        c_in = g.layer_shape(k - 1)[0] if k > 0 else c
        convs = 1 if k == 0 else 2  # layer 0: the constant input's conv; then an upsampling conv and a conv
        for j in range(convs):
            cin = c_in if j == 0 else c
            up = k > 0 and j == 0  # a stride-2 transposed conv: one 3x3 kernel per INPUT pixel
            flops += 2 * cin * c * 9 * (h // 2) * (w // 2) if up else 2 * cin * c * 9 * h * w
            passes = 6 + (2 if up else 0)
            bytes_ += passes * c * h * w * 4
        flops += 2 * c * c_img * h * w  # ToRGB
        bytes_ += 4 * c_img * h * w * 4  # RGB write, skip upsample read/write, add
    return {"flops": flops * BACKWARD_FACTOR, "bytes": bytes_ * 3.0}


def score_forward_flops(cfg) -> float:
    """FLOPs of one forward of a score ViT (per image; ``cfg`` a ScoreViTConfig with patch size 1): per token the
    patch embedding, every block's qkv, output, and two MLP matmuls, and the projector; per block the attention
    products q k^T and (softmax) v over all token pairs. Multiply-adds count 2; norms, softmax and the time MLP
    (computed once per batch) are left out."""
    n, d, inner = cfg.num_patches, cfg.dim, cfg.heads * cfg.dim_head
    per_token = cfg.channels * d + cfg.depth * (d * 3 * inner + inner * d + 2 * d * cfg.mlp_ratio * d) + d * cfg.channels
    return 2.0 * (n * per_token + cfg.depth * 2 * n * n * inner)


def sgilo_flop_floor(gen_flops: float, score_flops: float, evaluations: int = 2) -> float:
    """SGILO step / ILO step if every FLOP ran at the same rate: 1 + the score evaluations' FLOPs over the
    generator step's (the official hot sampler evaluates the score twice per step: corrector and predictor)."""
    return 1.0 + evaluations * score_flops / gen_flops


def device_peaks(device: torch.device, threads: int = 2) -> dict:
    """{"flops_per_s", "bytes_per_s", "source"} for ``device``: the table for known GPUs, measured on a CPU."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for frag, (f, b) in GPU_PEAKS.items():
            if frag in name:
                return {"flops_per_s": f, "bytes_per_s": b, "source": f"{name}: data-sheet dense TF32 and HBM bandwidth"}
        return {"flops_per_s": None, "bytes_per_s": None, "source": f"{name}: no data-sheet figures in GPU_PEAKS"}
    return measured_cpu_peaks(threads)


def measured_cpu_peaks(threads: int = 2, n: int = 2048, mb: int = 256) -> dict:
    """Best-of-5 float32 matmul FLOP/s and copy bandwidth (read + write bytes) on ``threads`` threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        src = torch.empty(mb * 2**20 // 4)
        dst = torch.empty_like(src)
        best_mm = min(_time(lambda: torch.mm(a, b)) for _ in range(5))
        best_cp = min(_time(lambda: dst.copy_(src)) for _ in range(5))
    finally:
        torch.set_num_threads(old)
    return {"flops_per_s": 2 * n**3 / best_mm, "bytes_per_s": 2 * src.numel() * 4 / best_cp,
            "source": f"measured on this CPU ({threads} threads): {n}x{n} float32 matmul, {mb} MiB copy"}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def limit_fractions(counts: dict[str, float], image_steps_per_s: float, peaks: dict) -> dict:
    """Achieved FLOP/s and B/s at a measured throughput, and their fractions of the peaks (None if unknown)."""
    f, b = counts["flops"] * image_steps_per_s, counts["bytes"] * image_steps_per_s
    return {"achieved_flops_per_s": f, "achieved_bytes_per_s": b,
            "flops_fraction": f / peaks["flops_per_s"] if peaks.get("flops_per_s") else None,
            "bytes_fraction": b / peaks["bytes_per_s"] if peaks.get("bytes_per_s") else None}
