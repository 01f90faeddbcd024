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

EMBEDDED_G = dict(size=32, style_dim=128, n_mlp=4, channels={4: 128, 8: 128, 16: 128, 32: 64}, img_channels=1)
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


def _mixing_latents(g: Generator, batch: int, prob: float, gen: torch.Generator,
                    device: torch.device | str = "cpu") -> list[torch.Tensor]:
    if torch.rand((), generator=gen).item() < prob:
        return list(torch.randn(2, batch, g.style_dim, generator=gen).to(device).unbind(0))
    return [torch.randn(batch, g.style_dim, generator=gen).to(device)]


def train(cfg: GanConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
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
    it, seconds = 0, 0.0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        g.load_state_dict(state["g"]); d.load_state_dict(state["d"]); g_ema.load_state_dict(state["g_ema"])
        opt_g.load_state_dict(state["opt_g"]); opt_d.load_state_dict(state["opt_d"])
        gen.set_state(state["rng"]); torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), dev)
        it, seconds = state["iter"], state["seconds"]
        print(f"resumed from {ckpt_path} at iteration {it} ({it * cfg.batch / 1000:.1f} kimg, {seconds / 60:.1f} min)")
    else:
        torch.manual_seed(cfg.seed)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    log = open(out / "log.jsonl", "a")
    fixed_z = torch.randn(64, g.style_dim, generator=torch.Generator().manual_seed(1234))

    def save() -> None:
        atomic_torch_save({"g": g.state_dict(), "d": d.state_dict(), "g_ema": g_ema.state_dict(),
                      "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": gen.get_state(),
                      "torch_rng": torch.get_rng_state(), "iter": it, "seconds": seconds,
                      "generator_config": cfg.generator, "device": str(dev),
                      **({"cuda_rng": torch.cuda.get_rng_state(dev)} if dev.type == "cuda" else {})}, ckpt_path)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    total_iters = int(cfg.max_kimg * 1000 / cfg.batch)
    bar = tqdm(total=total_iters, initial=it, desc="GAN", unit="it", mininterval=30) if tqdm else None
    start = time.time()
    seconds0 = seconds
    while it < total_iters and (time.time() - start) < cfg.minutes * 60:
        idx = torch.randint(0, len(data), (cfg.batch,), generator=gen)
        real = data[idx.to(dev)]
        # --- discriminator
        g.requires_grad_(False); d.requires_grad_(True)
        with torch.no_grad():
            fake, _ = g(_mixing_latents(g, cfg.batch, cfg.mixing, gen, dev))
        d_loss = F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()
        opt_d.zero_grad(set_to_none=True); d_loss.backward(); opt_d.step()
        r1 = torch.zeros((), device=dev)
        if it % cfg.r1_every == 0:
            real_r = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(d(real_r).sum(), real_r, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            opt_d.zero_grad(set_to_none=True)
            (cfg.r1_gamma / 2 * r1 * cfg.r1_every).backward(); opt_d.step()
        # --- generator
        g.requires_grad_(True); d.requires_grad_(False)
        fake, _ = g(_mixing_latents(g, cfg.batch, cfg.mixing, gen, dev))
        g_loss = F.softplus(-d(fake)).mean()
        opt_g.zero_grad(set_to_none=True); g_loss.backward(); opt_g.step()
        # --- EMA with ramp-up
        nimg = (it + 1) * cfg.batch
        ema_nimg = min(cfg.ema_kimg * 1000, nimg * cfg.ema_rampup) if cfg.ema_rampup else cfg.ema_kimg * 1000
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(g_ema.parameters(), g.parameters()):
                pe.lerp_(p, 1 - beta)
        it += 1
        seconds = seconds0 + time.time() - start
        if bar:
            bar.update(1)
        if it % 10 == 0:  # .item() syncs with the device: only every 10th iteration
            if bar:
                bar.set_postfix(d=f"{d_loss.item():.3f}", g=f"{g_loss.item():.3f}", refresh=False)
            log.write(json.dumps({"iter": it, "kimg": nimg / 1000, "seconds": round(seconds, 1), "d_loss": d_loss.item(),
                                  "g_loss": g_loss.item(), "r1": r1.item()}) + "\n"); log.flush()
        if it % cfg.ckpt_every == 0:
            save()
        if it % cfg.sample_every == 0:
            save_grid(g_ema, fixed_z, out / f"samples_{it:06d}.png")
    save()
    save_grid(g_ema, fixed_z, out / "samples_latest.png")
    if bar:
        bar.close()
    print(f"stopped at iteration {it} ({it * cfg.batch / 1000:.1f} kimg, {seconds / 60:.1f} min total)")
    return ckpt_path


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
