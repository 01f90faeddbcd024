"""Train the embedded 32x32 Fashion-MNIST StyleGAN-2 as a GAN, resumably, on the CPU or a GPU.

Non-saturating logistic loss, lazy R1 on the discriminator, style mixing, Adam with
betas (0, 0.99) and an EMA generator with ramp-up (StyleGAN2-ADA recipe, without path-length
regularisation, which is too costly for this budget). A checkpoint is written atomically
every ``ckpt_every`` iterations, so a killed run loses minutes; re-running the command
resumes from it. Random draws (batches, latents) come from a seeded CPU generator and are
moved to the device, so the data order does not depend on where the run trains.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.core.device import get_device
from bench.core.io import atomic_torch_save
from bench.data.fashion_mnist import load_tensor
from bench.priors.discriminator import Discriminator
from bench.priors.stylegan2 import Generator

# World v2 (issue 14): narrow 4x4 and 8x8 blocks so that the states ILO/SGILO optimise (after layers 0 and 1:
# 16x4x4 = 256 and 8x8x8 = 512 numbers) are at most n/2 = 512 of the 1024 pixels, and the hardest quick level
# (1/16 of the pixels or measurements, m = 64) has m/p >= 0.125, as FFHQ 1024 has p << n. v1 used 128 channels
# at 4-16 px (p = 2048 and 8192 > n).
EMBEDDED_G = dict(size=32, style_dim=128, n_mlp=4, channels={4: 16, 8: 8, 16: 128, 32: 64}, img_channels=1)
EMBEDDED_D_CHANNELS = {32: 64, 16: 128, 8: 128, 4: 128}


@dataclass
class GanConfig:
    out: str = "runs/embedded/gan"
    minutes: float = 120.0  # wall budget of this invocation (resumed runs get a fresh budget)
    max_kimg: float = 400.0  # stop once this many thousand real images were shown
    batch: int = 32
    lr: float = 0.002
    r1_gamma: float = 0.1
    r1_every: int = 16
    mixing: float = 0.5
    ema_kimg: float = 10.0
    ema_rampup: float = 0.05
    ckpt_every: int = 100
    sample_every: int = 500
    seed: int = 0
    threads: int = 2
    device: str = ""  # cpu, cuda, ... ; empty: $BENCH_DEVICE or auto
    generator: dict = field(default_factory=lambda: dict(EMBEDDED_G))


def make_generator(cfg: dict | None = None) -> Generator:
    return Generator(**(cfg or EMBEDDED_G))


def ema_generator(state: dict) -> Generator:
    """The EMA generator of a loaded training checkpoint, in eval mode (what gets exported and measured)."""
    g = make_generator(state["generator_config"])
    g.load_state_dict(state["g_ema"])
    return g.eval()


def _mixing_latents(g: Generator, batch: int, prob: float, gen: torch.Generator,
                    device: torch.device | str = "cpu") -> list[torch.Tensor]:
    if torch.rand((), generator=gen).item() < prob:
        return list(torch.randn(2, batch, g.style_dim, generator=gen).to(device).unbind(0))
    return [torch.randn(batch, g.style_dim, generator=gen).to(device)]


@dataclass
class _GanRun:
    """Networks, optimisers and counters of one training run (what the checkpoint stores)."""

    cfg: GanConfig
    out: Path
    dev: torch.device
    data: torch.Tensor
    g: Generator
    d: Discriminator
    g_ema: Generator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    gen: torch.Generator  # batches and latents
    it: int = 0
    seconds: float = 0.0

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"


@dataclass
class _StepLosses:
    d_loss: torch.Tensor
    g_loss: torch.Tensor
    r1: torch.Tensor
    nimg: int  # real images shown after this iteration


def train(cfg: GanConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    run = _new_run(cfg, out)
    _resume_or_seed(run)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    log = open(out / "log.jsonl", "a")
    fixed_z = torch.randn(64, run.g.style_dim, generator=torch.Generator().manual_seed(1234))
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    total_iters = int(cfg.max_kimg * 1000 / cfg.batch)
    bar = tqdm(total=total_iters, initial=run.it, desc="GAN", unit="it", mininterval=30) if tqdm else None
    start = time.time()
    seconds0 = run.seconds
    while run.it < total_iters and (time.time() - start) < cfg.minutes * 60:
        losses = _train_iteration(run)
        run.it += 1
        run.seconds = seconds0 + time.time() - start
        if bar:
            bar.update(1)
        _log_and_checkpoint(run, losses, log, bar, fixed_z)
    _save_checkpoint(run)
    save_grid(run.g_ema, fixed_z, out / "samples_latest.png")
    if bar:
        bar.close()
    print(f"stopped at iteration {run.it} ({run.it * cfg.batch / 1000:.1f} kimg, {run.seconds / 60:.1f} min total)")
    return run.ckpt_path


def _new_run(cfg: GanConfig, out: Path) -> _GanRun:
    """Load the data and build seeded networks, the EMA generator and the Adam optimisers (lazy-R1 adjusted)."""
    dev = get_device(cfg.device or None)
    data, _ = load_tensor("train")
    data = data.to(dev)
    torch.manual_seed(cfg.seed)  # seeded initial weights, whatever the process drew before
    g = make_generator(cfg.generator).to(dev)
    d = Discriminator(32, EMBEDDED_D_CHANNELS, img_channels=cfg.generator["img_channels"]).to(dev)
    g_ema = copy.deepcopy(g).eval().requires_grad_(False)
    r1_ratio = cfg.r1_every / (cfg.r1_every + 1)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr * r1_ratio, betas=(0.0, 0.99**r1_ratio))
    gen = torch.Generator().manual_seed(cfg.seed)
    return _GanRun(cfg, out, dev, data, g, d, g_ema, opt_g, opt_d, gen)


def _resume_or_seed(run: _GanRun) -> None:
    """Restore everything (RNG states included) from the checkpoint if there is one, else reseed torch."""
    cfg, dev, ckpt_path = run.cfg, run.dev, run.ckpt_path
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        run.g.load_state_dict(state["g"]); run.d.load_state_dict(state["d"]); run.g_ema.load_state_dict(state["g_ema"])
        run.opt_g.load_state_dict(state["opt_g"]); run.opt_d.load_state_dict(state["opt_d"])
        run.gen.set_state(state["rng"]); torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), dev)
        run.it, run.seconds = state["iter"], state["seconds"]
        it, seconds = run.it, run.seconds
        print(f"resumed from {ckpt_path} at iteration {it} ({it * cfg.batch / 1000:.1f} kimg, {seconds / 60:.1f} min)")
    else:
        torch.manual_seed(cfg.seed)


def _save_checkpoint(run: _GanRun) -> None:
    dev = run.dev
    atomic_torch_save({"g": run.g.state_dict(), "d": run.d.state_dict(), "g_ema": run.g_ema.state_dict(),
                       "opt_g": run.opt_g.state_dict(), "opt_d": run.opt_d.state_dict(), "rng": run.gen.get_state(),
                       "torch_rng": torch.get_rng_state(), "iter": run.it, "seconds": run.seconds, "batch": run.cfg.batch,
                       "generator_config": run.cfg.generator, "device": str(dev),
                       **({"cuda_rng": torch.cuda.get_rng_state(dev)} if dev.type == "cuda" else {})}, run.ckpt_path)


def _train_iteration(run: _GanRun) -> _StepLosses:
    """One iteration: a discriminator step (+ lazy R1), a generator step, the EMA update."""
    cfg, dev = run.cfg, run.dev
    idx = torch.randint(0, len(run.data), (cfg.batch,), generator=run.gen)
    real = run.data[idx.to(dev)]
    d_loss, r1 = _discriminator_step(run, real)
    g_loss = _generator_step(run)
    nimg = (run.it + 1) * cfg.batch
    _update_ema(run, nimg)
    return _StepLosses(d_loss, g_loss, r1, nimg)


def _discriminator_step(run: _GanRun, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logistic loss on fakes and reals, then every ``r1_every`` iterations the R1 penalty; returns (loss, r1)."""
    cfg, g, d, opt_d = run.cfg, run.g, run.d, run.opt_d
    g.requires_grad_(False); d.requires_grad_(True)
    with torch.no_grad():
        fake, _ = g(_mixing_latents(g, cfg.batch, cfg.mixing, run.gen, run.dev))
    d_loss = F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()
    opt_d.zero_grad(set_to_none=True); d_loss.backward(); opt_d.step()
    r1 = torch.zeros((), device=run.dev)
    if run.it % cfg.r1_every == 0:
        real_r = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(d(real_r).sum(), real_r, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        (cfg.r1_gamma / 2 * r1 * cfg.r1_every).backward(); opt_d.step()
    return d_loss, r1


def _generator_step(run: _GanRun) -> torch.Tensor:
    """Non-saturating generator step; returns its loss."""
    cfg, g, d, opt_g = run.cfg, run.g, run.d, run.opt_g
    g.requires_grad_(True); d.requires_grad_(False)
    fake, _ = g(_mixing_latents(g, cfg.batch, cfg.mixing, run.gen, run.dev))
    g_loss = F.softplus(-d(fake)).mean()
    opt_g.zero_grad(set_to_none=True); g_loss.backward(); opt_g.step()
    return g_loss


@torch.no_grad()
def _update_ema(run: _GanRun, nimg: int) -> None:
    """EMA of the generator weights, with the half-life ramped up over the first images."""
    cfg = run.cfg
    ema_nimg = min(cfg.ema_kimg * 1000, nimg * cfg.ema_rampup) if cfg.ema_rampup else cfg.ema_kimg * 1000
    beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
    for pe, p in zip(run.g_ema.parameters(), run.g.parameters()):
        pe.lerp_(p, 1 - beta)


def _log_and_checkpoint(run: _GanRun, losses: _StepLosses, log, bar, fixed_z: torch.Tensor) -> None:
    """After iteration ``run.it``: log every 10th, checkpoint every ``ckpt_every``, sample every ``sample_every``."""
    cfg, it = run.cfg, run.it
    if it % 10 == 0:  # .item() syncs with the device: only every 10th iteration
        d_loss, g_loss = losses.d_loss, losses.g_loss
        if bar:
            bar.set_postfix(d=f"{d_loss.item():.3f}", g=f"{g_loss.item():.3f}", refresh=False)
        log.write(json.dumps({"iter": it, "kimg": losses.nimg / 1000, "seconds": round(run.seconds, 1),
                              "d_loss": d_loss.item(), "g_loss": g_loss.item(), "r1": losses.r1.item()}) + "\n")
        log.flush()
    if it % cfg.ckpt_every == 0:
        _save_checkpoint(run)
    if it % cfg.sample_every == 0:
        save_grid(run.g_ema, fixed_z, run.out / f"samples_{it:06d}.png")


@torch.no_grad()
def save_grid(g: Generator, z: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Write an nrow x nrow PNG grid of generator samples (no torchvision needed)."""
    from PIL import Image

    img, _ = g(z.to(g.input.input.device), noise=None, randomize_noise=False)
    img = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().cpu()
    n, c, h, w = img.shape
    rows = math.ceil(n / nrow)
    canvas = torch.zeros(c, rows * (h + 2) + 2, nrow * (w + 2) + 2, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        canvas[:, 2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + col * (w + 2) : 2 + col * (w + 2) + w] = img[i]
    arr = canvas.permute(1, 2, 0).numpy()
    Image.fromarray(arr[..., 0] if c == 1 else arr).save(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = GanConfig()
    for name in ("out", "minutes", "max_kimg", "batch", "lr", "r1_gamma", "mixing", "ckpt_every", "sample_every", "seed", "threads", "device"):
        val = getattr(defaults, name)
        p.add_argument(f"--{name.replace('_', '-')}", type=type(val), default=val)
    args = p.parse_args(argv)
    train(GanConfig(**vars(args)))


if __name__ == "__main__":
    main()
